"""How much does the emulator's router add? Trivial model, three targets, one run, one machine.

  bare     a bare aiohttp server doing the same work in-line (the floor for any Python HTTP hop)
  worker   the model worker process, called directly (the "container", no router)
  emulator POST /endpoints/<name>/invocations through the emulator (router -> worker)

Router added latency = emulator - worker, per percentile. Load comes from an aiohttp client in this
process (closed loop), so on a 2-core machine the client competes with the servers for CPU:
compare the columns with each other, not with numbers from other machines.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path
from statistics import quantiles

import aiohttp

from sagemaker_emulator.launcher import EmulatorProcess, free_port

TRIVIAL_MODEL = textwrap.dedent("""
    import json

    def model_fn(model_dir):
        return 2

    def transform_fn(model, body, content_type, accept):
        values = json.loads(body)
        return json.dumps([v * model for v in values]), "application/json"
""")

BARE_SERVER = textwrap.dedent("""
    import json, sys
    from aiohttp import web

    async def invocations(request):
        values = json.loads(await request.read())
        return web.Response(body=json.dumps([v * 2 for v in values]), content_type="application/json")

    app = web.Application()
    app.router.add_post("/invocations", invocations)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
""")

PAYLOAD = json.dumps([1, 2, 3, 4]).encode()


def model_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = TRIVIAL_MODEL.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def load(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """Closed-loop load: ``concurrency`` clients send ``requests`` in total; return (req/s, latencies ms)."""
    latencies: list[float] = []
    remaining = requests
    headers = {"Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.post(url, data=PAYLOAD, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(min(concurrency, 4))))  # warm-up connections
        latencies.clear()
        remaining = requests
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies


def percentiles(latencies: list[float]) -> dict[str, float]:
    cuts = quantiles(latencies, n=100, method="inclusive")
    return {"p50": cuts[49], "p99": cuts[98]}


def wait_for(url: str, timeout: float = 30) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=PAYLOAD, method="POST"), timeout=1)
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_worker(emulator_url: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    """Start a model worker directly (the container without the router), from the emulator's S3."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=emulator_url, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "trivial/model.tar.gz"})
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "sagemaker_emulator.runtime.worker", "--model-dir", str(workdir),
         "--model-data-url", url, "--status-fd", str(write_fd)], pass_fds=(write_fd,))
    os.close(write_fd)
    with os.fdopen(read_fd) as status_pipe:
        status = json.loads(status_pipe.readline())
    if status.get("status") != "ready":
        raise RuntimeError(f"worker failed: {status}")
    return process, int(status["port"])


def deploy(emulator_url: str) -> str:
    import boto3

    kwargs = dict(endpoint_url=emulator_url, region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench")
    s3, sm = boto3.client("s3", **kwargs), boto3.client("sagemaker", **kwargs)
    s3.create_bucket(Bucket="bench")
    s3.put_object(Bucket="bench", Key="trivial/model.tar.gz", Body=model_archive())
    sm.create_model(ModelName="trivial", ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                    PrimaryContainer={"Image": "bench", "ModelDataUrl": "s3://bench/trivial/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="trivial", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "trivial", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="trivial", EndpointConfigName="trivial")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="trivial", WaiterConfig={"Delay": 0.2})
    return f"{emulator_url}/endpoints/trivial/invocations"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests per target and phase")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in the throughput phase")
    parser.add_argument("--output", type=Path, default=Path("bench/out/router_overhead.json"))
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)])
    with tempfile.TemporaryDirectory() as workdir, EmulatorProcess(free_port(), log=subprocess.DEVNULL) as emulator:
        worker = None
        try:
            targets = {"bare": f"http://127.0.0.1:{bare_port}/invocations"}
            targets["emulator"] = deploy(emulator.url)
            worker, worker_port = start_worker(emulator.url, Path(workdir))
            targets["worker"] = f"http://127.0.0.1:{worker_port}/invocations"
            wait_for(targets["bare"])
            for name in ("bare", "worker", "emulator"):
                _, serial = asyncio.run(load(targets[name], args.requests, 1))
                throughput, _ = asyncio.run(load(targets[name], args.requests, args.concurrency))
                results[name] = {**percentiles(serial), "rps": throughput}
        finally:
            bare.terminate()
            if worker is not None:
                worker.terminate()

    added = {p: results["emulator"][p] - results["worker"][p] for p in ("p50", "p99")}
    print(f"\nTrivial model, {args.requests} requests per phase; latency at concurrency 1, "
          f"throughput at concurrency {args.concurrency}; {os.cpu_count()} CPUs\n")
    print(f"{'target':<10}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}")
    for name in ("bare", "worker", "emulator"):
        r = results[name]
        print(f"{name:<10}{r['p50']:>10.3f}{r['p99']:>10.3f}{r['rps']:>10.0f}")
    print(f"\nrouter added latency: p50 {added['p50']:.3f} ms, p99 {added['p99']:.3f} ms "
          f"(emulator minus worker)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"results": results, "router_added_ms": added,
                                       "requests": args.requests, "concurrency": args.concurrency}, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
