"""Data-quality monitoring end to end: release iris-tree with its baseline and schedule, then send three
kinds of traffic and check each window with the model_monitoring DAG (dag.test()) and with the
emulator's own execution of the monitoring schedule.

1. rows drawn from the training data: no violations;
2. the same rows with petal_length + 3 cm: baseline_drift_check on petal_length only;
3. JSON rows without petal_length (still answered: the model imputes it): missing_column_check.
"""

from __future__ import annotations

import csv
import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.e2e.test_release_dag import asset_events, returned

REPO = Path(__file__).resolve().parents[2]
BUCKET = "sagemaker-ops-artifacts"
ENDPOINT = "iris-tree"
SCHEDULE = "iris-tree-data-quality"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def released(dags, emulator) -> dict:
    dag_run = dags["release_iris_tree"].test()
    assert dag_run.state == "success", f"release_iris_tree ended {dag_run.state}"
    return {"baseline": returned(dag_run, "create_baseline"), "schedule": returned(dag_run, "ensure_monitoring_schedule")}


def iris_rows() -> list[dict[str, float]]:
    with (REPO / "include/data/iris.csv").open(newline="") as handle:
        return [{name: float(row[name]) for name in FEATURES} for row in csv.DictReader(handle)]


def send(emulator, bodies: list[str], content_type: str) -> tuple[datetime, datetime]:
    """Invoke the endpoint once per body; return the window [start, end) that holds their capture."""
    runtime = emulator.client("sagemaker-runtime")
    # Start on a fresh whole second (the windows' resolution), so no earlier request shares it.
    now = datetime.now(timezone.utc)
    time.sleep(1 - now.microsecond / 1e6)
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    for body in bodies:
        answer = json.loads(runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType=content_type,
                                                    Accept="application/json")["Body"].read())
        assert len(answer) == 1 and answer[0] in ("setosa", "versicolor", "virginica"), answer
    end = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(1.1)  # the next phase starts in a later second: windows never share a record
    return start, end


def wait_for_capture(emulator, start: datetime, end: datetime, count: int, attempts: int = 120) -> None:
    """Capture is buffered and written on a timer: wait (bounded) until the window's records are in S3."""
    s3 = emulator.client("s3")
    found = 0
    for _ in range(attempts):
        keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"data-capture/{ENDPOINT}/") for item in page.get("Contents", [])]
        times = [json.loads(line)["eventMetadata"]["inferenceTime"] for key in keys
                 for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()]
        found = sum(start <= datetime.fromisoformat(t.replace("Z", "+00:00")) < end for t in times)
        if found >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"{found} of {count} captured records arrived in {attempts} looks")


def monitor(dags, start: datetime, end: datetime):
    """One model_monitoring run over [start, end); return (run state, check result, report result, task states)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    dag_run = dags["model_monitoring"].test(run_conf={"window_start": start.isoformat(),
                                                      "window_end": end.isoformat()})
    with create_session() as session:
        states = {ti.task_id: ti.state for ti in session.query(TaskInstance).filter(
            TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)}
    return dag_run.state, returned(dag_run, "iris_tree.check"), returned(dag_run, "iris_tree.drift_report"), states


def fire_schedule(emulator) -> dict:
    """Run the monitoring schedule now (the emulator's test control) and wait for its processing job."""
    request = urllib.request.Request(f"{emulator.url}/_emulator/monitoring-schedules/{SCHEDULE}/executions",
                                     method="POST")
    with urllib.request.urlopen(request) as response:
        job_name = json.loads(response.read())["ProcessingJobArn"].rsplit("/", 1)[1]
    sagemaker, s3 = emulator.client("sagemaker"), emulator.client("s3")
    for _ in range(240):
        job = sagemaker.describe_processing_job(ProcessingJobName=job_name)
        if job["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(0.5)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    report = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, _, prefix = report.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/constraint_violations.json")["Body"].read())


def clear_capture(emulator) -> None:
    """Remove what the endpoint captured so far (other tests' traffic too): the schedule's hourly window
    then holds only what the next phase sends."""
    s3 = emulator.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"data-capture/{ENDPOINT}/"):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])


def summary(violations: list[dict]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for violation in violations:
        found.setdefault(violation["constraint_check_type"], []).append(violation["feature_name"])
    return found


def test_release_creates_the_baseline_and_schedule_before_publishing(released, emulator):
    baseline, schedule = released["baseline"], released["schedule"]
    assert baseline["features"] == list(FEATURES) and baseline["item_count"] == 150
    assert baseline["statistics_s3_uri"].startswith(f"s3://{BUCKET}/monitoring/{ENDPOINT}/baseline/")
    assert (schedule["schedule_name"], schedule["schedule_status"]) == (SCHEDULE, "Scheduled")
    described = emulator.client("sagemaker").describe_monitoring_schedule(MonitoringScheduleName=SCHEDULE)
    assert described["EndpointName"] == ENDPOINT
    assert asset_events(f"sagemaker://endpoint/{ENDPOINT}")[-1]["endpoint_name"] == ENDPOINT


def test_each_kind_of_traffic_gets_its_own_verdict(dags, released, emulator):
    rows = iris_rows()
    clear_capture(emulator)

    normal = [",".join(str(row[f]) for f in FEATURES) for row in rows[::2]]
    window = send(emulator, normal, "text/csv")
    wait_for_capture(emulator, *window, count=len(normal))
    state, check, report, states = monitor(dags, *window)
    assert state == "success", states
    assert (check["records"], check["violations"], check["unparseable_records"]) == (len(normal), [], 0)
    assert report["drifted_features"] == []
    assert fire_schedule(emulator) == {"violations": []}  # the last hour: this traffic
    clear_capture(emulator)

    shifted = [",".join(str(round(row[f] + (3.0 if f == "petal_length" else 0.0), 2)) for f in FEATURES)
               for row in rows[::2]]
    window = send(emulator, shifted, "text/csv")
    wait_for_capture(emulator, *window, count=len(shifted))
    state, check, report, states = monitor(dags, *window)
    assert state == "failed"
    assert (states["iris_tree.check"], states["iris_tree.drift_report"], states["iris_tree.enforce_policy"]) == (
        "success", "success", "failed")
    assert check["violation_summary"] == {"baseline_drift_check": ["petal_length"]}
    assert report["drifted_features"] == ["petal_length"]
    assert report["report_s3_uri"].startswith(f"s3://{BUCKET}/monitoring/drift-reports/{ENDPOINT}/")
    assert summary(fire_schedule(emulator)["violations"])["baseline_drift_check"] == ["petal_length"]

    missing = [json.dumps([{f: row[f] for f in FEATURES if f != "petal_length"}]) for row in rows[::3]]
    window = send(emulator, missing, "application/json")
    wait_for_capture(emulator, *window, count=len(missing))
    state, check, report, states = monitor(dags, *window)
    assert state == "failed" and states["iris_tree.enforce_policy"] == "failed"
    assert check["violation_summary"] == {"missing_column_check": ["petal_length"]}
    assert check["records"] == len(missing) and check["unparseable_records"] == 0
    executions = emulator.client("sagemaker").list_monitoring_executions(MonitoringScheduleName=SCHEDULE)
    assert len(executions["MonitoringExecutionSummaries"]) >= 2
