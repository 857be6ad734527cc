"""`make demo`: run a DAG end to end against a fresh emulator, then show the result.

Starts the emulator, runs `airflow dags test` for the release DAG of a pipeline file
(``--pipeline include/pipelines/<name>.yaml``, default iris) or for another DAG (``--dag ab_test``),
prints the endpoint, its status and real predictions (one per smoke test: by TargetModel,
TargetContainerHostname or TargetVariant, or asynchronously through S3; for the A/B test, how 200
requests split over the variants), and stops everything it started.

``--dag model_monitoring`` releases iris-tree (baseline and monitoring schedule included), sends
requests like the training data, then the same requests with petal_length + 3 cm, and runs the
monitoring DAG over each window: the first passes, the second fails on purpose (policy ``fail``)
with a baseline_drift_check on petal_length. The drift report is saved under ``.airflow/``.

``--dag promote_variant`` releases iris, then promotes a bad version (rolled back by its 5XX alarm)
and a good one (canary) while a client invokes the endpoint; see ``scripts/demo_promotion.py``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
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


def clients(emulator_url: str) -> dict:
    import boto3

    kwargs = dict(endpoint_url=emulator_url, region_name=REGION,
                  aws_access_key_id="emulator", aws_secret_access_key="emulator")
    return {service: boto3.client(service, **kwargs) for service in ("sagemaker", "sagemaker-runtime", "s3")}


def show_variants(endpoint: dict) -> None:
    print(f"endpoint       {endpoint['EndpointName']}  ({endpoint['EndpointArn']})")
    print(f"status         {endpoint['EndpointStatus']}")
    print(f"config         {endpoint['EndpointConfigName']}")
    for variant in endpoint["ProductionVariants"]:
        serverless = variant.get("CurrentServerlessConfig")
        capacity = (f"serverless {serverless['MemorySizeInMB']} MB, up to {serverless['MaxConcurrency']} concurrent"
                    if serverless else f"{variant.get('CurrentInstanceCount')} instance(s)")
        print(f"variant        {variant['VariantName']}: {capacity}, weight {variant['CurrentWeight']:g}")
    capture = endpoint.get("DataCaptureConfig")
    if capture:
        print(f"data capture   {capture['CurrentSamplingPercentage']}% to {capture['DestinationS3Uri']} "
              f"({capture['CaptureStatus']}; files appear within about a minute)")


def show_endpoint(emulator_url: str, pipeline) -> None:
    aws = clients(emulator_url)
    print("\n=== Release result ===")
    show_variants(aws["sagemaker"].describe_endpoint(EndpointName=pipeline.endpoint.name))
    for smoke in pipeline.smoke_tests:
        started = time.perf_counter()
        prediction, served_by = invoke(aws, pipeline, smoke)
        latency_ms = (time.perf_counter() - started) * 1000
        targets = [f"{label} {value}" for label, value in (("TargetModel", smoke.target_model),
                   ("TargetContainerHostname", smoke.target_container_hostname),
                   ("TargetVariant", smoke.target_variant)) if value]
        print(f"request        {smoke.content_type}: {smoke.payload.strip()!r}"
              + (f"  ({', '.join(targets)})" if targets else ""))
        print(f"prediction     {prediction}  ({served_by}, {latency_ms:.1f} ms)")


def invoke(aws: dict, pipeline, smoke) -> tuple[str, str]:
    """One smoke-test request, real-time or asynchronous; return (answer, who served it)."""
    runtime, name = aws["sagemaker-runtime"], pipeline.endpoint.name
    if not smoke.asynchronous:
        targets = {key: value for key, value in (("TargetModel", smoke.target_model),
                   ("TargetContainerHostname", smoke.target_container_hostname),
                   ("TargetVariant", smoke.target_variant)) if value}
        response = runtime.invoke_endpoint(EndpointName=name, Body=smoke.payload.encode(),
                                           ContentType=smoke.content_type, Accept=smoke.accept, **targets)
        return response["Body"].read().decode(), f"variant {response['InvokedProductionVariant']}"
    digest = hashlib.sha256(smoke.payload.encode()).hexdigest()
    bucket, key = pipeline.artifacts.bucket, f"async-inputs/{pipeline.name}/demo-{digest}"
    aws["s3"].put_object(Bucket=bucket, Key=key, Body=smoke.payload.encode())
    queued = runtime.invoke_endpoint_async(EndpointName=name, InputLocation=f"s3://{bucket}/{key}",
                                           ContentType=smoke.content_type, Accept=smoke.accept)
    out_bucket, _, out_key = queued["OutputLocation"].removeprefix("s3://").partition("/")
    for _ in range(120):
        try:
            answer = aws["s3"].get_object(Bucket=out_bucket, Key=out_key)["Body"].read().decode()
            return answer, f"asynchronously, written to {queued['OutputLocation']}"
        except aws["s3"].exceptions.NoSuchKey:
            time.sleep(0.5)
    return "<no answer within 60 s>", f"asynchronously, expected at {queued['OutputLocation']}"


def show_ab_test(emulator_url: str, endpoint_name: str, requests: int = 200) -> None:
    aws = clients(emulator_url)
    endpoint = aws["sagemaker"].describe_endpoint(EndpointName=endpoint_name)
    print("\n=== A/B test result ===")
    show_variants(endpoint)
    payload = (REPO / "include/data/iris_sample.csv").read_bytes()
    counts = Counter(aws["sagemaker-runtime"].invoke_endpoint(EndpointName=endpoint_name, Body=payload,
                                                               ContentType="text/csv")["InvokedProductionVariant"]
                     for _ in range(requests))
    total = sum(v["CurrentWeight"] for v in endpoint["ProductionVariants"])
    for variant in endpoint["ProductionVariants"]:
        name = variant["VariantName"]
        print(f"split          {name}: {counts[name]} of {requests} requests ({counts[name] / requests:.0%}; "
              f"weight share {variant['CurrentWeight'] / total:.0%})")


TASK_EVENT = re.compile(r"\[DAG TEST\] (starting|end task) task_id=(\S+)|Marking run .* (successful|failed)")


def run_dag_test(dag_id: str, env: dict[str, str], log_path: Path, conf: dict | None = None,
                 show_failure: bool = True) -> int:
    """Run `airflow dags test`, keeping its full log in a file and showing one line per task."""
    command = [str(Path(sys.executable).with_name("airflow")), "dags", "test", dag_id]
    if conf:
        command[3:3] = ["-c", json.dumps(conf)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    if returncode != 0 and show_failure:
        print("".join(log_path.read_text().splitlines(keepends=True)[-60:]), file=sys.stderr)
    return returncode


AB_TEST_DAG = "ab_test"
AB_TEST_ENDPOINT = "iris-ab"  # the DAG's default endpoint_name Param
MONITORING_DAG = "model_monitoring"
PROMOTION_DAG = "promote_variant"  # scripts/demo_promotion.py: one rollback, one canary promotion
MONITORING_PIPELINE = REPO / "include/pipelines/iris-tree.yaml"
# The monitoring demo runs the emulator's clock 20x faster: captured requests reach S3 in 3 s, not 60.
MONITORING_TIME_SCALE = 20
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def send_traffic(emulator_url: str, endpoint: str, petal_shift: float) -> tuple[datetime, datetime]:
    """One request per second row of the training data (petal_length shifted); return the window holding them."""
    with (REPO / "include/data/iris.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))[::2]
    runtime = clients(emulator_url)["sagemaker-runtime"]
    start = datetime.now(timezone.utc).replace(microsecond=0)
    for row in rows:
        values = [float(row[f]) + (petal_shift if f == "petal_length" else 0.0) for f in FEATURES]
        runtime.invoke_endpoint(EndpointName=endpoint, Body=",".join(f"{v:g}" for v in values),
                                ContentType="text/csv")
    end = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    print(f"sent           {len(rows)} requests, petal_length {petal_shift:+g} cm, {start:%H:%M:%S}..{end:%H:%M:%S}")
    time.sleep(1.1)  # the next window starts in a later second
    return start, end


def wait_for_capture(emulator_url: str, pipeline, end: datetime, attempts: int = 60) -> None:
    """Captured requests are written on a timer: wait (bounded) until one written at or after ``end`` is there."""
    s3 = clients(emulator_url)["s3"]
    bucket, _, prefix = pipeline.endpoint.data_capture.destination_s3_uri.removeprefix("s3://").partition("/")
    for _ in range(attempts):
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{pipeline.endpoint.name}/").get("Contents", [])
        if any(item["LastModified"] >= end for item in listed):
            return
        time.sleep(0.5)


def show_check(emulator_url: str, pipeline, start: datetime, end: datetime, report_path: Path) -> None:
    """The check's violations and drift report, read from S3 where the monitoring DAG wrote them."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from sagemaker_ops.model_monitor_jobs import s3_join, window_id

    s3, monitoring, endpoint = clients(emulator_url)["s3"], pipeline.monitoring, pipeline.endpoint.name
    window = window_id(start, end)
    violations_uri = s3_join(monitoring.check.output_s3_uri, endpoint, window, "constraint_violations.json")
    bucket, key = S3Hook.parse_s3_url(violations_uri)
    violations = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["violations"]
    for violation in violations or [{"feature_name": "-", "constraint_check_type": "no violations",
                                     "description": ""}]:
        print(f"violation      {violation['feature_name']}: {violation['constraint_check_type']} "
              f"{violation['description']}".rstrip())
    bucket, key = S3Hook.parse_s3_url(s3_join(monitoring.report_s3_uri, endpoint, window, "drift_report.html"))
    report_path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    print(f"drift report   s3://{bucket}/{key}\n               saved as {report_path.relative_to(REPO)}")


def demo_monitoring(emulator_url: str, env: dict[str, str], dag_log: Path) -> int:
    """Release iris-tree, then check a window of normal traffic (passes) and one of shifted traffic (fails)."""
    from sagemaker_ops.pipeline import load_pipeline

    pipeline = load_pipeline(MONITORING_PIPELINE)
    print(f"running `airflow dags test {pipeline.dag_id}` (baseline and monitoring schedule included)", flush=True)
    if run_dag_test(pipeline.dag_id, env, dag_log) != 0:
        return 1
    for label, shift, expected in (("normal", 0.0, 0), ("shifted", 3.0, 1)):
        print(f"\n=== {label} traffic ===")
        start, end = send_traffic(emulator_url, pipeline.endpoint.name, shift)
        wait_for_capture(emulator_url, pipeline, end)
        conf = {"window_start": start.isoformat(), "window_end": end.isoformat()}
        print(f"running `airflow dags test {MONITORING_DAG}` over that window", flush=True)
        returncode = run_dag_test(MONITORING_DAG, env, dag_log.with_name(f"monitoring-{label}.log"), conf,
                                  show_failure=not expected)
        if bool(returncode) != bool(expected):
            print(f"unexpected: the monitoring run exited {returncode}; see {dag_log.parent}", file=sys.stderr)
            return 1
        if expected:
            print(f"the run failed as it should: policy {pipeline.monitoring.check.policy} and drifted data")
        show_check(emulator_url, pipeline, start, end, REPO / ".airflow" / f"drift-report-{label}.html")
    return 0


def show_benchmark(emulator_url: str, pipeline, report_path: Path) -> None:
    """The release's benchmark: the choice and its reasons (benchmark.json), the report saved locally."""
    s3 = clients(emulator_url)["s3"]
    bucket, _, prefix = pipeline.benchmark.report_s3_uri.removeprefix("s3://").partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", [])
    latest = max((item for item in listed if item["Key"].endswith("/benchmark.json")),
                 key=lambda item: item["LastModified"], default=None)
    if latest is None:
        print("benchmark      no benchmark.json found")
        return
    document = json.loads(s3.get_object(Bucket=bucket, Key=latest["Key"])["Body"].read())
    report_path.with_suffix(".json").write_text(json.dumps(document, indent=2))
    for candidate in document["candidates"]:
        latency = candidate["latency_ms"].get(document["percentile"].lower(), float("nan"))
        print(f"benchmarked    {candidate['name']:<18} {candidate['max_rps']:7.1f} req/s  {document['percentile']} "
              f"{latency:6.1f} ms  ${(candidate['cost_per_inference'] or 0) * 1e6:.2f}/million")
    selection = document["selection"]
    print(f"chosen         {selection['option']} on {selection['candidate']}; autoscaling target "
          f"{document['autoscaling_target']} invocations per instance per minute")
    for reason in selection["reasons"]:
        print(f"  because      {reason}")
    key = latest["Key"].removesuffix("benchmark.json") + "report.html"
    report_path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    print(f"benchmark report s3://{bucket}/{key}\n               saved as {report_path.relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--pipeline", type=Path, default=REPO / "include/pipelines/iris.yaml",
                        help="run the release DAG of this pipeline file (default: iris)")
    target.add_argument("--dag", choices=[AB_TEST_DAG, MONITORING_DAG, PROMOTION_DAG],
                        help="run this DAG instead of a release DAG (model_monitoring: after releasing iris-tree)")
    args = parser.parse_args()

    from sagemaker_ops.pipeline import load_pipeline

    pipeline = None if args.dag else load_pipeline(args.pipeline)
    dag_id = args.dag or pipeline.dag_id
    log_path = REPO / ".airflow" / "emulator.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    time_scale = MONITORING_TIME_SCALE if args.dag in (MONITORING_DAG, PROMOTION_DAG) else 1.0
    with EmulatorProcess(choose_port(), log=log_path, time_scale=time_scale) as emulator:
        print(f"emulator running at {emulator.url} (log: {log_path.relative_to(REPO)})")
        env = airflow_env(emulator.url)
        migrate(env)
        dag_log = REPO / ".airflow" / "dags-test.log"
        if args.dag == MONITORING_DAG:
            returncode = demo_monitoring(emulator.url, env, dag_log)
        elif args.dag == PROMOTION_DAG:
            from demo_promotion import demo_promotion

            returncode = demo_promotion(emulator.url, env, dag_log, clients, run_dag_test)
        else:
            print(f"running `airflow dags test {dag_id}` (full log: {dag_log.relative_to(REPO)})", flush=True)
            returncode = run_dag_test(dag_id, env, dag_log)
        if returncode != 0:
            print(f"\nthe demo failed (exit code {returncode}); see {dag_log.parent} and {log_path}", file=sys.stderr)
            return returncode
        if args.dag == AB_TEST_DAG:
            show_ab_test(emulator.url, AB_TEST_ENDPOINT)
        elif pipeline is not None and args.dag != PROMOTION_DAG:
            show_endpoint(emulator.url, pipeline)
            if pipeline.benchmark is not None:
                show_benchmark(emulator.url, pipeline, REPO / ".airflow" / "benchmark-report.html")
    print("\nemulator stopped; demo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
