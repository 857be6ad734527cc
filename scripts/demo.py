"""`make demo`: run the release DAG end to end against a fresh emulator, then show the result.

Starts the emulator, runs `airflow dags test release_<name>` for the pipeline file, prints the
endpoint, its status and a real prediction, and stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from airflow_env import REGION, REPO, airflow, airflow_env, migrate

from sagemaker_emulator.launcher import EmulatorProcess, free_port, port_in_use


def choose_port() -> int:
    wanted = int(os.environ.get("EMULATOR_PORT", "4566"))
    if not port_in_use(wanted):
        return wanted
    port = free_port()
    print(f"port {wanted} is busy; the demo's emulator uses {port} instead")
    return port


def show_endpoint(emulator_url: str, pipeline) -> None:
    import boto3

    kwargs = dict(endpoint_url=emulator_url, region_name=REGION,
                  aws_access_key_id="emulator", aws_secret_access_key="emulator")
    sagemaker = boto3.client("sagemaker", **kwargs)
    runtime = boto3.client("sagemaker-runtime", **kwargs)
    endpoint = sagemaker.describe_endpoint(EndpointName=pipeline.endpoint.name)
    smoke = pipeline.smoke_test
    started = time.perf_counter()
    response = runtime.invoke_endpoint(EndpointName=pipeline.endpoint.name, Body=smoke.payload.encode(),
                                       ContentType=smoke.content_type, Accept=smoke.accept)
    latency_ms = (time.perf_counter() - started) * 1000
    prediction = response["Body"].read().decode()
    print("\n=== Release result ===")
    print(f"endpoint       {endpoint['EndpointName']}  ({endpoint['EndpointArn']})")
    print(f"status         {endpoint['EndpointStatus']}")
    print(f"config         {endpoint['EndpointConfigName']}")
    for variant in endpoint["ProductionVariants"]:
        print(f"variant        {variant['VariantName']}: {variant['CurrentInstanceCount']} instance(s), "
              f"weight {variant['CurrentWeight']:g}")
    print(f"request        {smoke.content_type}: {smoke.payload.strip()!r}")
    print(f"prediction     {prediction}  (variant {response['InvokedProductionVariant']}, {latency_ms:.1f} ms)")


TASK_EVENT = re.compile(r"\[DAG TEST\] (starting|end task) task_id=(\S+)|Marking run .* (successful|failed)")


def run_dag_test(dag_id: str, env: dict[str, str], log_path: Path) -> int:
    """Run `airflow dags test`, keeping its full log in a file and showing one line per task."""
    with log_path.open("w") as log:
        process = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "dags", "test", dag_id],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started: dict[str, float] = {}
        for line in process.stdout:
            log.write(line)
            match = TASK_EVENT.search(line)
            if not match:
                continue
            event, task, outcome = match.groups()
            if event == "starting":
                started[task] = time.monotonic()
            elif event == "end task":
                print(f"  {task:<24} done in {time.monotonic() - started.get(task, time.monotonic()):5.1f} s", flush=True)
            else:
                print(f"  DAG run {outcome}", flush=True)
        returncode = process.wait()
    if returncode != 0:
        print("".join(log_path.read_text().splitlines(keepends=True)[-60:]), file=sys.stderr)
    return returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", type=Path, default=REPO / "include/pipelines/iris.yaml")
    args = parser.parse_args()

    from sagemaker_ops.pipeline_config import load_pipeline

    pipeline = load_pipeline(args.pipeline)
    log_path = REPO / ".airflow" / "emulator.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with EmulatorProcess(choose_port(), log=log_path) as emulator:
        print(f"emulator running at {emulator.url} (log: {log_path.relative_to(REPO)})")
        env = airflow_env(emulator.url)
        migrate(env)
        dag_log = REPO / ".airflow" / "dags-test.log"
        print(f"running `airflow dags test {pipeline.dag_id}` (full log: {dag_log.relative_to(REPO)})", flush=True)
        returncode = run_dag_test(pipeline.dag_id, env, dag_log)
        if returncode != 0:
            print(f"\nthe release DAG failed (exit code {returncode}); see {dag_log} and {log_path}",
                  file=sys.stderr)
            return returncode
        show_endpoint(emulator.url, pipeline)
    print("\nemulator stopped; demo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
