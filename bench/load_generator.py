"""Is our load generator ever what limits a measured capacity? Locust (ours) beside wrk, same endpoint, same run.

One emulator, one trivial model (the router bench's: one serving process), one endpoint. Each round
loads it twice for ``--seconds`` at ``--connections`` concurrent connections:

  wrk    wrk 4 (C, one thread), POST with the same body through a Lua script: the reference, a
         generator that costs ~10-20 us of CPU per request;
  ours   the LoadTestOperator's generator (sagemaker_ops.load_test: Locust FastHttpUser in its own
         process, closed model, as many users as wrk's connections, every request SigV4-signed).

Printed: requests/s of each per round, our share of wrk's (goal: at least 80%, the median over
rounds), and each generator's CPU per request (from the kernel's accounting of the child process),
which shows how much of the two shared cores the generator takes away from the endpoint.
Targets are interleaved (wrk, ours, wrk, ours, ...) so background noise hits both.

    python bench/load_generator.py [--seconds 5] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from router_overhead import PAYLOAD, deploy

from sagemaker_emulator.launcher import EmulatorProcess, free_port
from sagemaker_ops.load_test.plan import LoadTestPlan, Stage
from sagemaker_ops.load_test.runner import run_load_test

GOAL_SHARE = 0.8
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
"""


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url: str, args: argparse.Namespace, script: Path) -> dict:
    cpu = children_cpu_seconds()
    output = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds:g}s", "-s", str(script), url],
                            check=True, capture_output=True, text=True, timeout=args.seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        raise RuntimeError(f"wrk got {non_2xx.group(1)} error answers:\n{output}")
    return {"rps": rps, "cpu_us": (children_cpu_seconds() - cpu) * 1e6 / max(rps * args.seconds, 1)}


def run_ours(emulator_url: str, args: argparse.Namespace) -> dict:
    plan = LoadTestPlan(runtime_url=emulator_url, region="us-east-1", endpoint_name="trivial",
                        payload=PAYLOAD.decode(), content_type="application/json", accept="application/json",
                        model="users", stages=(Stage("load", args.seconds, args.connections),),
                        report_interval_seconds=max(1.0, args.seconds))
    result = run_load_test(plan, {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"},
                           logging.getLogger("quiet"))
    totals = result["totals"]
    if totals["errors"]:
        raise RuntimeError(f"our generator got {totals['errors']} errors: {totals['error_samples']}")
    # The generator's own CPU during the test, from inside (its start-up imports excluded).
    return {"rps": totals["throughput_rps"], "cpu_us": result["generator"]["cpu_us_per_request"],
            "p50": totals["latency_ms"]["p50"], "p99": totals["latency_ms"]["p99"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is NOT installed (Debian/Ubuntu: apt-get install -y wrk): the reference is missing, so only our "
              "generator is measured and no share of wrk's can be given.", flush=True)
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory() as folder, EmulatorProcess(free_port(), log=subprocess.DEVNULL) as emulator:
        url = deploy(emulator.url)
        script = Path(folder, "post.lua")
        script.write_text(WRK_SCRIPT.format(body=PAYLOAD.decode()), encoding="utf-8")
        for number in range(args.rounds):
            measured = {"wrk": run_wrk(url, args, script) if wrk else None, "ours": run_ours(emulator.url, args)}
            rounds.append(measured)
            print(f"round {number + 1}/{args.rounds}: wrk {measured['wrk']['rps'] if wrk else float('nan'):.0f} "
                  f"req/s, ours {measured['ours']['rps']:.0f} req/s", file=sys.stderr, flush=True)
            time.sleep(0.5)
    return report(rounds, args, wrk is not None)


def report(rounds: list[dict], args: argparse.Namespace, with_wrk: bool) -> int:
    print(f"\nTrivial model through the emulator, {args.connections} connections, {args.seconds:g} s per run, "
          f"{args.rounds} rounds, {os.cpu_count()} cores shared by generator, emulator and model worker")
    print(f"{'round':<7}{'wrk req/s':>11}{'ours req/s':>12}{'ours/wrk':>10}{'wrk CPU us/req':>16}"
          f"{'ours CPU us/req':>17}")
    shares = []
    for number, measured in enumerate(rounds, 1):
        ours, reference = measured["ours"], measured["wrk"]
        share = ours["rps"] / reference["rps"] if reference else float("nan")
        shares.append(share)
        print(f"{number:<7}{reference['rps'] if reference else float('nan'):>11.0f}{ours['rps']:>12.0f}"
              f"{share:>10.2f}{reference['cpu_us'] if reference else float('nan'):>16.1f}{ours['cpu_us']:>17.1f}")
    ours_p50 = median(r["ours"]["p50"] for r in rounds)
    ours_p99 = median(r["ours"]["p99"] for r in rounds)
    print(f"ours: latency p50 {ours_p50:.1f} ms, p99 {ours_p99:.1f} ms (closed model, {args.connections} users)")
    if not with_wrk:
        print("wrk missing: no comparison made.")
        return 2
    share = median(shares)
    verdict = "met" if share >= GOAL_SHARE else "NOT met"
    print(f"\nours / wrk, median over rounds: {share:.2f} (goal >= {GOAL_SHARE:.2f}: {verdict})")
    return 0 if share >= GOAL_SHARE else 1


if __name__ == "__main__":
    sys.exit(main())
