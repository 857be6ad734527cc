"""DataQualityCheckOperator and DriftReportOperator against the emulator, on capture files written to its S3.

Capture records are written in Data Capture's layout and format (what the emulator's endpoints
write), so a window's contents are exact: iris rows as sent, the same rows with petal_length
+3 cm, JSON rows without petal_length, and lines that are not capture records at all.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow.sdk.exceptions import TaskDeferred
from sagemaker_ops.operators.model_monitor_check import DataQualityCheckOperator, DataQualityViolations, apply_policy
from sagemaker_ops.operators.model_monitor_report import DriftReportOperator
from tests.operators.conftest import AwsTarget
from tests.operators.test_model_monitor_baseline import (  # noqa: F401 - aws is a fixture
    BUCKET,
    ROLE_ARN,
    aws,
    baseline,
    wait_for_job,
)

REPO = Path(__file__).resolve().parents[2]
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"


def iris_rows() -> list[list[float]]:
    with (REPO / "include/data/iris.csv").open(newline="") as handle:
        return [[float(row[name]) for name in FEATURES] for row in csv.DictReader(handle)]


def capture_line(values: list[float] | dict, at: datetime) -> str:
    """One Data Capture record of an InvokeEndpoint with a CSV row, or a JSON object row."""
    if isinstance(values, dict):
        request = {"observedContentType": "application/json", "mode": "INPUT", "data": json.dumps([values]),
                   "encoding": "JSON"}
    else:
        request = {"observedContentType": "text/csv", "mode": "INPUT", "data": ",".join(map(str, values)),
                   "encoding": "CSV"}
    return json.dumps({"captureData": {"endpointInput": request, "endpointOutput": {
        "observedContentType": "application/json", "mode": "OUTPUT", "data": '["setosa"]', "encoding": "JSON"}},
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "eventVersion": "0"})


def put_capture(aws: AwsTarget, capture_uri: str, endpoint: str, lines: list[str], at: datetime,
                variant: str = "AllTraffic") -> str:
    bucket, _, prefix = capture_uri.removeprefix("s3://").partition("/")
    key = f"{prefix}/{endpoint}/{variant}/{at:%Y/%m/%d/%H}/{at:%M-%S}-000-{uuid.uuid4()}.jsonl"
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
    return key


@pytest.fixture(scope="module")
def iris_baseline(emulator) -> dict:
    target = AwsTarget(conn_id="aws_default", url=emulator.url)
    s3 = target.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    return baseline(target, f"s3://{BUCKET}/check-baseline", mode="local").execute({})


@pytest.fixture
def window(aws: AwsTarget) -> dict:
    """A fresh endpoint name and capture destination; the window is the 10 minutes up to now."""
    end = datetime.now(timezone.utc).replace(microsecond=0)
    return {"endpoint": f"ep-{uuid.uuid4().hex[:8]}", "capture_uri": f"s3://{BUCKET}/capture-{uuid.uuid4().hex[:6]}",
            "start": end - timedelta(minutes=10), "end": end, "at": end - timedelta(minutes=2)}


def check(aws: AwsTarget, baseline_files: dict, window: dict, **overrides) -> DataQualityCheckOperator:
    kwargs = dict(task_id="check", endpoint_name=window["endpoint"], capture_s3_uri=window["capture_uri"],
                  statistics_s3_uri=baseline_files["statistics_s3_uri"],
                  constraints_s3_uri=baseline_files["constraints_s3_uri"], output_s3_uri=f"s3://{BUCKET}/checks",
                  window_start=window["start"].isoformat(), window_end=window["end"].isoformat(), policy="fail",
                  role_arn=ROLE_ARN, waiter_delay=1, aws_conn_id=aws.conn_id)
    kwargs.update(overrides)
    return DataQualityCheckOperator(**kwargs)


def drifted(window: dict) -> list[str]:
    return [capture_line([s, w, p + 3.0, pw], window["at"]) for s, w, p, pw in iris_rows()[::2]]


def test_traffic_like_the_training_data_passes_and_publishes_metrics(aws: AwsTarget, iris_baseline: dict,
                                                                     window: dict):
    put_capture(aws, window["capture_uri"], window["endpoint"],
                [capture_line(row, window["at"]) for row in iris_rows()[1::2]], window["at"])
    result = check(aws, iris_baseline, window).execute({})

    assert (result["records"], result["violation_count"], result["violations"]) == (75, 0, [])
    assert result["window_start"] == window["start"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result["capture_objects"] == 1 and result["unparseable_records"] == 0
    assert set(result["drift_distances"]) == set(FEATURES) and max(result["drift_distances"].values()) < 0.1
    prefix = f"checks/{window['endpoint']}/{window['start']:%Y%m%dT%H%M%SZ}-{window['end']:%Y%m%dT%H%M%SZ}"
    assert result["statistics_s3_uri"] == f"s3://{BUCKET}/{prefix}/statistics.json"
    s3 = aws.client("s3")
    violations = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}/constraint_violations.json")["Body"].read())
    assert violations == {"violations": []}
    metrics = aws.client("cloudwatch").list_metrics(Namespace=NAMESPACE, Dimensions=[
        {"Name": "EndpointName", "Value": window["endpoint"]}])["Metrics"]
    names = {metric["MetricName"] for metric in metrics}
    assert {f"feature_baseline_drift_{f}" for f in FEATURES} | {f"feature_non_null_{f}" for f in FEATURES} <= names
    assert result["metrics_published"] == len(names)
    dimensions = {d["Name"]: d["Value"] for d in metrics[0]["Dimensions"]}
    assert dimensions == {"EndpointName": window["endpoint"], "ScheduleName": f"{window['endpoint']}-airflow-check"}


def test_a_shifted_feature_fails_the_check_listing_the_violation(aws: AwsTarget, iris_baseline: dict, window: dict):
    put_capture(aws, window["capture_uri"], window["endpoint"], drifted(window), window["at"])
    with pytest.raises(DataQualityViolations) as raised:
        check(aws, iris_baseline, window, policy="fail").execute({})
    message = str(raised.value)
    assert "1 data-quality violation(s)" in message
    assert "petal_length  baseline_drift_check  Baseline drift distance:" in message
    assert f"endpoint {window['endpoint']}, window" in message


@pytest.mark.parametrize("policy", ["warn", "ignore"])
def test_warn_and_ignore_succeed_with_the_violations_in_the_result(aws: AwsTarget, iris_baseline: dict, window: dict,
                                                                   policy: str):
    put_capture(aws, window["capture_uri"], window["endpoint"], drifted(window), window["at"])
    result = check(aws, iris_baseline, window, policy=policy).execute({})
    assert result["violation_summary"] == {"baseline_drift_check": ["petal_length"]}
    assert result["drift_distances"]["petal_length"] > 0.3 and result["policy"] == policy


def test_a_missing_column_and_unparseable_records_are_reported(aws: AwsTarget, iris_baseline: dict, window: dict):
    rows = [dict(zip(FEATURES, row, strict=True)) for row in iris_rows()[::3]]
    lines = [capture_line({k: v for k, v in row.items() if k != "petal_length"}, window["at"]) for row in rows]
    put_capture(aws, window["capture_uri"], window["endpoint"], lines + ["this is not JSON"], window["at"])

    result = check(aws, iris_baseline, window, policy="warn").execute({})

    assert result["violation_summary"]["missing_column_check"] == ["petal_length"]
    assert result["unparseable_records"] == 1 and "this is not JSON" in result["unparseable_samples"][0]


def test_processing_mode_finds_the_same_violations(aws: AwsTarget, iris_baseline: dict, window: dict):
    put_capture(aws, window["capture_uri"], window["endpoint"], drifted(window), window["at"])
    local = check(aws, iris_baseline, window, policy="ignore").execute({})
    processed = check(aws, iris_baseline, window, policy="ignore", mode="processing",
                      output_s3_uri=f"s3://{BUCKET}/processing-checks").execute({})

    assert processed["violations"] == local["violations"] and processed["records"] == local["records"] == 75
    assert processed["job_name"].startswith(f"{window['endpoint']}-dq-check-")
    job = aws.client("sagemaker").describe_processing_job(ProcessingJobName=processed["job_name"])
    assert job["Environment"]["start_time"] == local["window_start"]
    assert job["Environment"]["baseline_constraints"] == "/opt/ml/processing/baseline/constraints/constraints.json"
    again = check(aws, iris_baseline, window, policy="ignore", mode="processing",
                  output_s3_uri=f"s3://{BUCKET}/processing-checks").execute({})
    assert again["job_name"] == processed["job_name"]  # a retry finds its job


def test_a_deferred_processing_check_resumes_and_applies_its_policy(aws: AwsTarget, iris_baseline: dict,
                                                                   window: dict):
    put_capture(aws, window["capture_uri"], window["endpoint"], drifted(window), window["at"])
    operator = check(aws, iris_baseline, window, mode="processing", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    name = deferred.value.trigger.job_name
    assert wait_for_job(aws, name)["ProcessingJobStatus"] == "Completed"

    with pytest.raises(DataQualityViolations, match="petal_length +baseline_drift_check"):
        operator.execute_complete({}, event={"status": "success", "job_name": name})


def test_an_empty_window_has_nothing_to_check(aws: AwsTarget, iris_baseline: dict, window: dict):
    put_capture(aws, window["capture_uri"], window["endpoint"], [capture_line(iris_rows()[0], window["at"])],
                window["at"] - timedelta(hours=2))
    result = check(aws, iris_baseline, window).execute({})
    assert (result["records"], result["violation_count"], result["statistics_s3_uri"]) == (0, 0, None)


def test_the_window_ends_at_the_runs_time_by_default(aws: AwsTarget, iris_baseline: dict, window: dict):
    run_after = window["end"] - timedelta(minutes=1)
    put_capture(aws, window["capture_uri"], window["endpoint"], drifted(window), window["at"])
    operator = check(aws, iris_baseline, window, policy="ignore", window_start=None, window_end=None,
                     window_minutes=5)
    result = operator.execute({"dag_run": SimpleNamespace(run_after=run_after)})
    assert result["window_end"] == run_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result["window_start"] == (run_after - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result["violation_summary"] == {"baseline_drift_check": ["petal_length"]}


def test_the_drift_report_is_written_next_to_the_check(aws: AwsTarget, iris_baseline: dict, window: dict):
    put_capture(aws, window["capture_uri"], window["endpoint"], drifted(window), window["at"])
    result = check(aws, iris_baseline, window, policy="ignore").execute({})
    report = DriftReportOperator(task_id="drift_report", check=result, report_s3_uri=f"s3://{BUCKET}/reports",
                                 aws_conn_id=aws.conn_id).execute({})

    key = f"reports/{window['endpoint']}/{window['start']:%Y%m%dT%H%M%SZ}-{window['end']:%Y%m%dT%H%M%SZ}/" \
          "drift_report.html"
    assert report == {"report_s3_uri": f"s3://{BUCKET}/{key}", "features": list(FEATURES),
                      "drifted_features": ["petal_length"], "violation_count": 1}
    page = aws.client("s3").get_object(Bucket=BUCKET, Key=key)
    assert page["ContentType"] == "text/html; charset=utf-8"
    body = page["Body"].read().decode()
    assert body.count("data:image/png;base64,") == len(FEATURES) and "baseline_drift_check" in body


class RecordingLog:
    def __init__(self):
        self.records: list[tuple[str, str]] = []

    def __getattr__(self, level):
        return lambda message, *args: self.records.append((level, message % args))


@pytest.mark.parametrize(("policy", "level"), [("warn", "warning"), ("ignore", "info")])
def test_policies_log_or_ignore_what_fail_raises(policy: str, level: str):
    result = {"endpoint_name": "iris", "window_start": "a", "window_end": "b", "records": 5, "violation_count": 1,
              "violations": [{"feature_name": "x", "constraint_check_type": "data_type_check", "description": "d"}]}
    log = RecordingLog()
    apply_policy(result, policy, log)
    assert [entry[0] for entry in log.records] == [level]
    assert bool(re.search(r"\nx +data_type_check +d", log.records[0][1])) == (policy == "warn")
    with pytest.raises(DataQualityViolations, match=r"\nx +data_type_check +d"):
        apply_policy(result, "fail", log)
    with pytest.raises(ValueError, match="policy must be one of fail, warn, ignore"):
        apply_policy(result, "page", log)
