"""Hosting options, measured: throughput with 1, 2 and 4 instances, MME cache miss vs hit, serverless
cold start vs warm. Every figure is measured in this run on this machine, beside the trivial-model
reference (one instance, a model that does no work), which shows what the router alone allows.

The scaling model burns a fixed amount of CPU per request, so instances add throughput until the
machine's cores are busy: on 2 cores, 4 instances cannot beat 2 by much, and that is the point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from router_overhead import PAYLOAD, TRIVIAL_MODEL, run_generator  # noqa: E402  (same load generator)

from sagemaker_emulator.launcher import EmulatorProcess, free_port  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/bench"
REPO = Path(__file__).resolve().parents[1]
BUSY_MODEL = textwrap.dedent("""
    import json, time

    def model_fn(model_dir):
        return 2

    def transform_fn(model, body, content_type, accept):
        deadline = time.process_time() + 0.002  # 2 ms of CPU per request, like a small real model
        while time.process_time() < deadline:
            pass
        return json.dumps([v * model for v in json.loads(body)]), "application/json"
""")


class Bench:
    def __init__(self, emulator_url: str):
        import boto3

        kwargs = dict(endpoint_url=emulator_url, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
        self.url = emulator_url
        self.s3 = boto3.client("s3", **kwargs)
        self.sm = boto3.client("sagemaker", **kwargs)
        self.runtime = boto3.client("sagemaker-runtime", **kwargs)
        self.s3.create_bucket(Bucket="bench")

    def upload(self, key: str, code: str) -> str:
        import io
        import tarfile

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            data = code.encode()
            info = tarfile.TarInfo("code/inference.py")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        self.s3.put_object(Bucket="bench", Key=key, Body=buffer.getvalue())
        return f"s3://bench/{key}"

    def endpoint(self, name: str, container: dict, variant: dict) -> str:
        self.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "bench", **container})
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, **variant}])
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        self.sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2,
                                                                                         "MaxAttempts": 600})
        return f"{self.url}/endpoints/{name}/invocations"

    def throughput(self, url: str, requests: int, concurrency: int) -> dict:
        run_generator(url, requests // 5, concurrency, 30)  # warm-up
        result = run_generator(url, requests, concurrency, 60)
        return {"rps": result["count"] / result["elapsed"],
                "p50_ms": median(result["latencies_ms"])}

    def timed_invoke(self, endpoint: str, body: bytes = PAYLOAD, **kwargs) -> float:
        kwargs.setdefault("ContentType", "application/json")
        started = time.perf_counter()
        response = self.runtime.invoke_endpoint(EndpointName=endpoint, Body=body, **kwargs)
        response["Body"].read()
        return (time.perf_counter() - started) * 1000


def scaling(bench: Bench, args: argparse.Namespace) -> dict:
    results = {"trivial x1": bench.throughput(bench.endpoint("trivial", {
        "ModelDataUrl": bench.upload("trivial/model.tar.gz", TRIVIAL_MODEL)},
        {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}), args.requests, args.concurrency)}
    busy = bench.upload("busy/model.tar.gz", BUSY_MODEL)
    for count in (1, 2, 4):
        url = bench.endpoint(f"busy-{count}", {"ModelDataUrl": busy},
                             {"InstanceType": "ml.m5.large", "InitialInstanceCount": count})
        results[f"2ms-CPU x{count}"] = bench.throughput(url, args.requests, args.concurrency)
    return results


def multi_model(bench: Bench, workdir: Path, repeats: int = 50) -> dict:
    """The chapter's English and German sentiment models behind one MME: first call vs cached calls."""
    from sagemaker_ops.packaging import build_model_archive

    for name in ("sentiment_en", "sentiment_de"):
        archive = build_model_archive(REPO / "include" / "models" / name, Path(tempfile.mkdtemp(dir=workdir)))
        bench.s3.upload_file(str(archive.path), "bench", f"multi-model/{name}.tar.gz")
    bench.endpoint("sentiment", {"Mode": "MultiModel", "ModelDataUrl": "s3://bench/multi-model/"},
                   {"InstanceType": "ml.m5.4xlarge", "InitialInstanceCount": 1})
    sentence = json.dumps("Der Test verlief positiv.").encode()
    results = {}
    for name in ("sentiment_en", "sentiment_de"):  # the first pays for importing scikit-learn too
        call = lambda: bench.timed_invoke("sentiment", TargetModel=f"{name}.tar.gz", body=sentence)  # noqa: E731
        miss = call()
        hits = sorted(call() for _ in range(repeats))
        results[name] = {"miss_ms": miss, "hit_p50_ms": median(hits), "hit_p90_ms": hits[int(0.9 * len(hits))]}
    return results


def serverless(bench: Bench, workdir: Path, repeats: int = 20) -> dict:
    """The iris model on a 1024 MB serverless variant: the first call pays a real cold start."""
    from sagemaker_ops.packaging import build_model_archive

    archive = build_model_archive(REPO / "include" / "models" / "iris", Path(tempfile.mkdtemp(dir=workdir)))
    bench.s3.upload_file(str(archive.path), "bench", "iris/model.tar.gz")
    bench.endpoint("iris-serverless", {"ModelDataUrl": "s3://bench/iris/model.tar.gz"},
                   {"ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 5}})
    row = b"5.1,3.5,1.4,0.2"
    call = lambda: bench.timed_invoke("iris-serverless", body=row, ContentType="text/csv")  # noqa: E731
    cold = call()
    warm = sorted(call() for _ in range(repeats))
    return {"cold_ms": cold, "warm_p50_ms": median(warm), "warm_p90_ms": warm[int(0.9 * len(warm))]}


def report_serverless(results: dict) -> None:
    print("\nServerless (iris, 1024 MB), boto3 InvokeEndpoint round trip")
    print(f"cold start {results['cold_ms']:.0f} ms (process start + model load); "
          f"warm p50 {results['warm_p50_ms']:.2f} ms, p90 {results['warm_p90_ms']:.2f} ms")


def report_multi_model(results: dict) -> None:
    print("\nMulti-model endpoint (one ml.m5.4xlarge instance), boto3 InvokeEndpoint round trip")
    print(f"{'target model':<16}{'miss ms':>9}{'hit p50 ms':>12}{'hit p90 ms':>12}")
    for name, figures in results.items():
        print(f"{name:<16}{figures['miss_ms']:>9.1f}{figures['hit_p50_ms']:>12.2f}{figures['hit_p90_ms']:>12.2f}")


def report_scaling(results: dict, concurrency: int) -> None:
    print(f"\nThroughput at concurrency {concurrency} ({os.cpu_count()} CPUs)")
    print(f"{'model x instances':<20}{'req/s':>8}{'p50 ms':>9}")
    for name, figures in results.items():
        print(f"{name:<20}{figures['rps']:>8.0f}{figures['p50_ms']:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output", type=Path, default=Path("bench/out/hosting_options.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, EmulatorProcess(free_port(), log=Path(os.devnull)) as emulator:
        bench = Bench(emulator.url)
        results = {"scaling": scaling(bench, args), "multi_model": multi_model(bench, Path(workdir)),
                   "serverless": serverless(bench, Path(workdir))}
    report_scaling(results["scaling"], args.concurrency)
    report_multi_model(results["multi_model"])
    report_serverless(results["serverless"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
