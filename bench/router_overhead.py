"""How much does the emulator's router add? Trivial model, three targets, one run, one machine.

  bare     one bare aiohttp process doing the same work in-line (the floor for any Python HTTP hop)
  worker   the model worker process, called directly (the "container", no router)
  emulator POST /endpoints/<name>/invocations through the emulator (client -> emulator -> router ->
           HTTP to the model worker -> back), one instance with one serving process, like ``bare``

The figures that matter, all from the same run:

* throughput through the emulator at ``--concurrency`` connections as a fraction of the bare server's
  (goal: at least 0.5x), the ratio taken within each round and then the median over rounds;
* latency at concurrency 1 (below saturation): the emulator's p50 minus the bare server's (goal: at most
  1 ms added) and its p99 (goal: at most 5 ms);
* the router's CPU per request: CPU time (user + system, all threads) of the emulator process, read
  from /proc/<pid>/stat before and after each phase, divided by the requests of the phase.

How the load is made, and why the figures are fair:

* The load generator runs in a process of its own (one per phase), so it never shares an event
  loop or the GIL with the servers. It is a minimal HTTP/1.1 keep-alive client on asyncio streams
  (one pre-encoded request, Content-Length framing), several times cheaper per request than an
  aiohttp client, so it takes as little CPU as possible away from the servers.
* It is closed-loop: ``--concurrency`` connections each send the next request when the previous
  answer arrives. Latency is measured at concurrency 1 (no queueing); throughput at
  ``--concurrency``. A closed loop under-reports tail latency when the server stalls (coordinated
  omission), so read p99 at concurrency 1 as "service time", not as a latency SLO.
* Every phase is bounded: ``--requests`` requests or ``--max-seconds``, whichever comes first, after
  ``--warmup`` unmeasured requests on the same server.
* Targets are interleaved over ``--rounds`` rounds and each figure is the median over rounds, so a
  burst of background noise hurts one round, not one target.
* On a machine with few cores the generator still competes with the servers for CPU (the
  emulator path runs three processes: generator, emulator, worker). The CPU time each server
  process spent per request (from the OS, user + system) depends much less on that competition
  (it still grows when other programs crowd the cores) and is the figure to compare across changes; the generator's own CPU use is printed so you can
  see when it, rather than the server, is the bottleneck (above ~70 % of a core).

    python bench/router_overhead.py [--requests 3000] [--concurrency 8] [--rounds 5]
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
from statistics import median, quantiles
from urllib.parse import urlsplit

import psutil

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
EXPECTED = json.dumps([2, 4, 6, 8]).encode()
TARGETS = ("bare", "worker", "emulator")
GOAL_RATIO = 0.5  # emulator throughput / bare server throughput
GOAL_ADDED_P50_MS = 1.0  # emulator p50 minus bare p50 at concurrency 1
GOAL_P99_MS = 5.0  # emulator p99 at concurrency 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GENERATOR_BOUND = 0.7  # generator CPU share of one core above which it, not the server, may limit
OTHER_LOAD_WARNING = 0.25  # cores used by other programs during a phase above which figures are disturbed


def model_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = TRIVIAL_MODEL.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- The load generator (runs in its own process: ``--loadgen``) ------------------------------


async def generate(url: str, requests: int, concurrency: int, max_seconds: float) -> dict:
    """Closed-loop keep-alive load; every answer must be 200 with the expected body."""
    parts = urlsplit(url)
    request = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(PAYLOAD)}\r\n\r\n").encode() + PAYLOAD
    latencies: list[float] = []
    budget = requests
    deadline = time.perf_counter() + max_seconds

    async def connection() -> None:
        nonlocal budget
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while budget > 0 and time.perf_counter() < deadline:
                budget -= 1
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = _content_length(head)
                body = await reader.readexactly(length)
                latencies.append((time.perf_counter() - started) * 1000)
                if head[9:12] != b"200" or body != EXPECTED:
                    raise RuntimeError(f"{url} answered {head[:12]!r} {body[:200]!r}")
        finally:
            writer.close()

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"count": len(latencies), "elapsed": elapsed, "latencies_ms": latencies,
            "cpu_share": (time.process_time() - cpu) / elapsed,
            "process_cpu": time.process_time()}  # including the interpreter's start-up


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise RuntimeError(f"no Content-Length in {head!r}")


def run_generator(url: str, requests: int, concurrency: int, max_seconds: float) -> dict:
    """Start a generator process and return what it measured."""
    output = subprocess.run(
        [sys.executable, __file__, "--loadgen", url, str(requests), str(concurrency), str(max_seconds)],
        check=True, capture_output=True, text=True, timeout=max_seconds + 60).stdout
    return json.loads(output)


# --- The measured targets ---------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    """utime + stime of the process (all its threads) and of its descendants still running, from /proc."""
    total = 0.0
    for member in (process, *process.children(recursive=True)):
        try:
            with open(f"/proc/{member.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rpartition(")")[2].split()  # after "pid (comm)"
        except OSError:  # it exited in between
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)
    return total


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used so far (all CPUs)."""
    times = psutil.cpu_times()
    return sum(getattr(times, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq", "steal"))


def measure(url: str, servers: dict[str, psutil.Process], args: argparse.Namespace, concurrency: int) -> dict:
    """One bounded phase: warm-up, then ``args.requests`` requests; latency, rate and server CPU.

    ``other_load`` is the CPU that neither the servers nor the generator used during the phase
    (other programs, the kernel), in cores: high values mean the figures were disturbed.
    """
    run_generator(url, args.warmup, concurrency, args.max_seconds)
    before = {name: cpu_seconds(process) for name, process in servers.items()}
    machine_before, started = machine_busy_seconds(), time.perf_counter()
    result = run_generator(url, args.requests, concurrency, args.max_seconds)
    wall, machine = time.perf_counter() - started, machine_busy_seconds() - machine_before
    count = result["count"]
    server_cpu = {name: cpu_seconds(p) - before[name] for name, p in servers.items()}
    ours = sum(server_cpu.values()) + result["process_cpu"]
    cuts = quantiles(result["latencies_ms"], n=100, method="inclusive")
    return {"p50": cuts[49], "p99": cuts[98], "rps": count / result["elapsed"], "requests": count,
            "generator_cpu": result["cpu_share"], "other_load": max(machine - ours, 0.0) / wall,
            **{f"{name}_cpu_us": seconds / count * 1e6 for name, seconds in server_cpu.items()}}


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
    status: dict = {}
    with os.fdopen(read_fd) as status_pipe:
        for line in status_pipe:  # "downloaded", then "ready" or "failed"
            status = json.loads(line)
            if status.get("status") in ("ready", "failed"):
                break
    if status.get("status") != "ready":
        process.terminate()
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
                    PrimaryContainer={"Image": "bench", "ModelDataUrl": "s3://bench/trivial/model.tar.gz",
                                      # one serving process, as the bare server is one process
                                      "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}})
    sm.create_endpoint_config(EndpointConfigName="trivial", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "trivial", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="trivial", EndpointConfigName="trivial")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="trivial", WaiterConfig={"Delay": 0.2})
    return f"{emulator_url}/endpoints/trivial/invocations"


def run(args: argparse.Namespace) -> dict:
    """Every round measures every target at concurrency 1 and at ``args.concurrency``."""
    rounds: dict[str, list[dict]] = {name: [] for name in TARGETS}
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)])
    with tempfile.TemporaryDirectory() as workdir, EmulatorProcess(free_port(), log=subprocess.DEVNULL) as emulator:
        worker = None
        try:
            url = deploy(emulator.url)
            emulator_process = psutil.Process(emulator.process.pid)
            (endpoint_worker,) = emulator_process.children()  # the endpoint's one instance
            worker, worker_port = start_worker(emulator.url, Path(workdir))
            targets = {
                "bare": (f"http://127.0.0.1:{bare_port}/invocations", {"server": psutil.Process(bare.pid)}),
                "worker": (f"http://127.0.0.1:{worker_port}/invocations", {"server": psutil.Process(worker.pid)}),
                # "server" is the emulator process alone (the router): its instance is measured apart
                "emulator": (url, {"server": _ProcessAlone(emulator_process), "worker": endpoint_worker}),
            }
            wait_for(targets["bare"][0])
            for number in range(args.rounds):
                for name in TARGETS:
                    target, servers = targets[name]
                    serial = measure(target, servers, args, 1)
                    loaded = measure(target, servers, args, args.concurrency)
                    rounds[name].append({"serial": serial, "loaded": loaded})
                print(f"round {number + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            bare.terminate()
            if worker is not None:
                worker.terminate()
    medians = {name: {phase: {key: median(r[phase][key] for r in runs) for key in runs[0][phase]}
                      for phase in ("serial", "loaded")}
               for name, runs in rounds.items()}
    other = [r[phase]["other_load"] for runs in rounds.values() for r in runs for phase in ("serial", "loaded")]
    # Paired within each round, so a noisy round moves both sides of the ratio.
    ratios = [e["loaded"]["rps"] / b["loaded"]["rps"] for e, b in zip(rounds["emulator"], rounds["bare"])]
    added_p50 = [e["serial"]["p50"] - b["serial"]["p50"] for e, b in zip(rounds["emulator"], rounds["bare"])]
    router_cpu = [e["loaded"]["server_cpu_us"] for e in rounds["emulator"]]
    return {"targets": medians, "other_load": {"median": median(other), "max": max(other)},
            "per_round": {"ratio": ratios, "added_p50_ms": added_p50, "router_cpu_us": router_cpu}}


class _ProcessAlone:
    """A process whose CPU is counted without its children (the emulator's workers are measured apart)."""

    def __init__(self, process: psutil.Process):
        self.pid = process.pid

    def children(self, recursive: bool = False) -> list:
        return []


def report(results: dict, args: argparse.Namespace) -> dict:
    c, targets, per_round = args.concurrency, results["targets"], results["per_round"]
    print(f"\nTrivial model; median of {args.rounds} rounds of {args.requests} requests per phase "
          f"(after {args.warmup} warm-up); {os.cpu_count()} CPUs; load generator in its own process.\n"
          f"Latency at concurrency 1 (below saturation); req/s and the second latency pair at concurrency {c} "
          f"(closed loop).\nCPU = CPU time (user + system, from /proc/<pid>/stat) each server process spent per "
          f"request; for 'emulator' it is router (emulator process) + endpoint worker.\n")
    print(f"{'target':<10}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>8}{'p50 c=' + str(c):>10}{'p99 c=' + str(c):>10}"
          f"{'CPU µs/req c=1':>17}{'CPU µs/req c=' + str(c):>18}{'generator':>11}")
    for name in TARGETS:
        serial, loaded = targets[name]["serial"], targets[name]["loaded"]
        cpu = " + ".join(f"{serial[k]:.0f}" for k in serial if k.endswith("_cpu_us"))
        cpu_loaded = " + ".join(f"{loaded[k]:.0f}" for k in loaded if k.endswith("_cpu_us"))
        bound = " *" if loaded["generator_cpu"] > GENERATOR_BOUND else ""
        print(f"{name:<10}{serial['p50']:>8.3f}{serial['p99']:>8.3f}{loaded['rps']:>8.0f}{loaded['p50']:>10.2f}"
              f"{loaded['p99']:>10.2f}{cpu:>17}{cpu_loaded:>18}{loaded['generator_cpu']:>10.0%}{bound}")
    emulator, bare, worker = targets["emulator"], targets["bare"], targets["worker"]
    summary = {
        "throughput_ratio": median(per_round["ratio"]),
        "added_p50_ms": median(per_round["added_p50_ms"]),
        "emulator_p99_ms": emulator["serial"]["p99"],
        "added_p99_ms": emulator["serial"]["p99"] - bare["serial"]["p99"],
        "router_hop_p50_ms": emulator["serial"]["p50"] - worker["serial"]["p50"],
        "router_cpu_us_c1": emulator["serial"]["server_cpu_us"],
        f"router_cpu_us_c{c}": emulator["loaded"]["server_cpu_us"],
    }

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    spread = lambda values, unit="": f"{min(values):.2f}{unit} to {max(values):.2f}{unit}"  # noqa: E731
    print(f"\nemulator vs bare, same run:\n"
          f"  throughput at c={c}: {emulator['loaded']['rps']:.0f} vs {bare['loaded']['rps']:.0f} req/s = "
          f"{summary['throughput_ratio']:.2f}x (rounds: {spread(per_round['ratio'], 'x')}); goal >= {GOAL_RATIO}x: "
          f"{verdict(summary['throughput_ratio'] >= GOAL_RATIO)}\n"
          f"  added p50 at c=1: {summary['added_p50_ms']:+.3f} ms ({emulator['serial']['p50']:.3f} vs "
          f"{bare['serial']['p50']:.3f}; rounds: {spread(per_round['added_p50_ms'], ' ms')}); goal <= "
          f"{GOAL_ADDED_P50_MS} ms: {verdict(summary['added_p50_ms'] <= GOAL_ADDED_P50_MS)}\n"
          f"  p99 at c=1: {summary['emulator_p99_ms']:.3f} ms ({summary['added_p99_ms']:+.3f} ms over bare); goal <= "
          f"{GOAL_P99_MS} ms: {verdict(summary['emulator_p99_ms'] <= GOAL_P99_MS)}\n"
          f"  the router hop alone (emulator minus worker called directly): p50 {summary['router_hop_p50_ms']:+.3f} ms\n"
          f"router CPU per request (emulator process, /proc): {summary['router_cpu_us_c1']:.0f} µs at c=1, "
          f"{summary[f'router_cpu_us_c{c}']:.0f} µs at c={c} (rounds: {spread(per_round['router_cpu_us'], ' µs')})")
    other = results["other_load"]
    print(f"other load on the machine during the phases: median {other['median']:.2f}, max {other['max']:.2f} cores"
          + (" -- something else was running: latency and req/s are disturbed, CPU/req much less so"
             if other["max"] > OTHER_LOAD_WARNING else ""))
    if any(targets[name]["loaded"]["generator_cpu"] > GENERATOR_BOUND for name in TARGETS):
        print(f"* the generator used more than {GENERATOR_BOUND:.0%} of a core: that req/s may be generator-bound")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per target and phase")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured requests before each phase")
    parser.add_argument("--concurrency", type=int, default=8, help="connections in the throughput phase")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over all targets; figures are medians")
    parser.add_argument("--max-seconds", type=float, default=30, help="time limit of one phase")
    parser.add_argument("--output", type=Path, default=Path("bench/out/router_overhead.json"))
    parser.add_argument("--loadgen", nargs=4, metavar=("URL", "REQUESTS", "CONCURRENCY", "MAX_SECONDS"),
                        help=argparse.SUPPRESS)  # internal: the generator process
    args = parser.parse_args()
    if args.loadgen:
        url, requests, concurrency, max_seconds = args.loadgen
        print(json.dumps(asyncio.run(generate(url, int(requests), int(concurrency), float(max_seconds)))))
        return

    results = run(args)
    summary = report(results, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "results": results["targets"], "summary": summary, "per_round": results["per_round"],
        "other_load_cores": results["other_load"], "requests": args.requests, "warmup": args.warmup,
        "concurrency": args.concurrency, "rounds": args.rounds, "cpus": os.cpu_count()}, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
