"""Instance types, measured: one instance of a CPU-bound model with 1 model-server worker beside the same
instance type with one worker per vCPU, in the same run on this machine.

An instance runs one serving process per vCPU of its type (SAGEMAKER_MODEL_SERVER_WORKERS sets another
number), so an ml.c5.xlarge (4 vCPUs) serves a CPU-bound model faster than the same instance held to one
worker, until the host's cores are the limit: the router, the load generator and every worker share them.

    python bench/instance_sizes.py [--requests 1500] [--concurrency 8] [--cpu-ms 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosting_options import Bench  # noqa: E402  (same boto3 set-up and generator)

from sagemaker_emulator.launcher import EmulatorProcess, free_port  # noqa: E402
from sagemaker_rules.instance_catalog import instance_type  # noqa: E402

CPU_BOUND_MODEL = textwrap.dedent("""
    import json, os, time

    CPU_SECONDS = float(os.environ.get("BENCH_CPU_MS", "5")) / 1000

    def model_fn(model_dir):
        return 2

    def transform_fn(model, body, content_type, accept):
        deadline = time.process_time() + CPU_SECONDS  # pure Python: holds the GIL, as model code does
        while time.process_time() < deadline:
            pass
        return json.dumps([v * model for v in json.loads(body)]), "application/json"
""")

# (label, instance type, SAGEMAKER_MODEL_SERVER_WORKERS or None for one worker per vCPU)
SETUPS = [
    ("ml.c5.xlarge, 1 worker", "ml.c5.xlarge", "1"),
    ("ml.c5.large, 2 workers", "ml.c5.large", None),
    ("ml.c5.xlarge, 4 workers", "ml.c5.xlarge", None),
]


def measure(bench: Bench, args: argparse.Namespace) -> dict:
    model_data = bench.upload("cpu-bound/model.tar.gz", CPU_BOUND_MODEL)
    results = {}
    for index, (label, type_name, workers) in enumerate(SETUPS):
        environment = {"BENCH_CPU_MS": str(args.cpu_ms)}
        if workers:
            environment["SAGEMAKER_MODEL_SERVER_WORKERS"] = workers
        url = bench.endpoint(f"size-{index}", {"ModelDataUrl": model_data, "Environment": environment},
                             {"InstanceType": type_name, "InitialInstanceCount": 1})
        figures = bench.throughput(url, args.requests, args.concurrency)
        results[label] = {**figures, "workers": int(workers or instance_type(type_name).vcpus)}
        bench.sm.delete_endpoint(EndpointName=f"size-{index}")  # its processes would compete with the next
    return results


def report(results: dict, args: argparse.Namespace) -> None:
    cores = os.cpu_count()
    print(f"\nOne instance, a model burning {args.cpu_ms} ms of CPU per request, concurrency {args.concurrency}")
    print(f"This host has {cores} CPU cores, shared by the router, the load generator and the workers: "
          f"beyond {cores} workers, more workers cannot add throughput.")
    base = next(iter(results.values()))["rps"]
    print(f"{'instance':<26}{'workers':>8}{'req/s':>8}{'x 1 worker':>12}{'p50 ms':>9}")
    for label, figures in results.items():
        print(f"{label:<26}{figures['workers']:>8}{figures['rps']:>8.0f}{figures['rps'] / base:>12.2f}"
              f"{figures['p50_ms']:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--cpu-ms", type=float, default=5.0, help="CPU milliseconds the model burns per request")
    parser.add_argument("--output", type=Path, default=Path("bench/out/instance_sizes.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with EmulatorProcess(free_port(), log=Path(os.devnull)) as emulator:
        results = measure(Bench(emulator.url), args)
    report(results, args)
    print(f"Load average (1 min) {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after it.")
    if max(load_before, os.getloadavg()[0]) > os.cpu_count():
        print("Other programs were competing for the CPUs: the figures are disturbed, and more worker "
              "processes also win a larger share of a contended machine. Rerun on an idle machine.")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"host_cpus": os.cpu_count(), "cpu_ms": args.cpu_ms, **results}, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
