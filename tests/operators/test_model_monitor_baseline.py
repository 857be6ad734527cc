"""CreateDataQualityBaselineOperator against the emulator: locally or as a processing job, the same files."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from airflow.sdk.exceptions import TaskDeferred
from sagemaker_ops.hooks.sagemaker import ProcessingJobFailed
from sagemaker_ops.operators.model_monitor_release import CreateDataQualityBaselineOperator
from tests.operators.conftest import AwsTarget

REPO = Path(__file__).resolve().parents[2]
BUCKET = "model-monitor-operator-tests"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker-ops-execution"
IRIS = REPO / "include" / "data" / "iris.csv"


@pytest.fixture
def aws(emulator_aws: AwsTarget) -> AwsTarget:
    s3 = emulator_aws.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    return emulator_aws


def unique_prefix(name: str) -> str:
    return f"s3://{BUCKET}/{name}-{uuid.uuid4().hex[:8]}"


def baseline(aws: AwsTarget, output_s3_uri: str, **overrides) -> CreateDataQualityBaselineOperator:
    kwargs = dict(task_id="create_baseline", dataset=str(IRIS), exclude_columns=["species"],
                  output_s3_uri=output_s3_uri, role_arn=ROLE_ARN, job_name_prefix="iris-baseline",
                  waiter_delay=1, waiter_max_attempts=120, aws_conn_id=aws.conn_id)
    kwargs.update(overrides)
    return CreateDataQualityBaselineOperator(**kwargs)


def wait_for_job(aws: AwsTarget, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = aws.client("sagemaker").describe_processing_job(ProcessingJobName=name)
        if job["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"processing job {name} did not end in {timeout} s")


def read_json(aws: AwsTarget, uri: str) -> dict:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def test_local_and_processing_baselines_write_the_same_files(aws: AwsTarget):
    local = baseline(aws, unique_prefix("local"), mode="local").execute({})
    processed = baseline(aws, unique_prefix("processing"), mode="processing").execute({})

    assert local["digest"] == processed["digest"]
    assert (local["item_count"], local["features"]) == (150, ["sepal_length", "sepal_width", "petal_length",
                                                               "petal_width"])
    assert re.fullmatch(r"iris-baseline-[0-9a-f]{12}", processed["job_name"])  # named after its request
    job = aws.client("sagemaker").describe_processing_job(ProcessingJobName=processed["job_name"])
    assert job["AppSpecification"]["ImageUri"] == \
        "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    assert job["Environment"]["dataset_source"] == "/opt/ml/processing/input/baseline_dataset_input"
    local_stats, processed_stats = read_json(aws, local["statistics_s3_uri"]), read_json(aws,
                                                                                         processed["statistics_s3_uri"])
    assert local_stats["dataset"] == processed_stats["dataset"] == {"item_count": 150}
    for ours, theirs in zip(local_stats["features"], processed_stats["features"], strict=True):
        assert (ours["name"], ours["inferred_type"]) == (theirs["name"], theirs["inferred_type"])
        mine, other = ours["numerical_statistics"], theirs["numerical_statistics"]
        for key in ("common", "min", "max", "sum"):
            assert mine[key] == other[key], (ours["name"], key)
        for key in ("mean", "std_dev"):
            assert mine[key] == pytest.approx(other[key], rel=1e-9)
        # 150 rows fit in one KLL compactor (k=2048): both sketches hold every value, so the buckets agree.
        assert mine["distribution"]["kll"]["buckets"] == other["distribution"]["kll"]["buckets"]
    assert read_json(aws, local["constraints_s3_uri"]) == read_json(aws, processed["constraints_s3_uri"])
    dataset = aws.client("s3").get_object(Bucket=BUCKET, Key=local["dataset_s3_uri"].split("/", 3)[3])
    assert dataset["Body"].read().decode().splitlines()[0] == "sepal_length,sepal_width,petal_length,petal_width"


def test_a_rerun_uploads_and_computes_nothing(aws: AwsTarget):
    output = unique_prefix("rerun")
    first = baseline(aws, output, mode="processing").execute({})
    jobs_before = aws.client("sagemaker").list_processing_jobs(MaxResults=100)["ProcessingJobSummaries"]

    second = baseline(aws, output, mode="processing").execute({})

    assert (first["uploaded"], first["computed"]) == (True, True)
    assert second == {**first, "uploaded": False, "computed": False}
    jobs_after = aws.client("sagemaker").list_processing_jobs(MaxResults=100)["ProcessingJobSummaries"]
    assert len(jobs_after) == len(jobs_before)
    assert first["statistics_s3_uri"] == f"{output}/{first['digest']}/statistics.json"


def test_a_failed_job_fails_the_task_with_its_reason_and_a_retry_starts_the_next_attempt(aws: AwsTarget):
    other_image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-profiler:1"
    operator = baseline(aws, unique_prefix("failing"), mode="processing", image_uri=other_image)

    with pytest.raises(ProcessingJobFailed, match=r"ended Failed: ClientError: the emulator runs only Model "
                                                  r"Monitor's analyzer image") as first:
        operator.execute({})
    with pytest.raises(ProcessingJobFailed) as retry:
        operator.execute({})

    digest = str(first.value).split("iris-baseline-", 1)[1][:12]
    assert f"iris-baseline-{digest} ended Failed" in str(first.value)
    assert f"iris-baseline-{digest}-2 ended Failed" in str(retry.value)


def test_a_deferred_baseline_resumes_from_the_trigger_event(aws: AwsTarget):
    operator = baseline(aws, unique_prefix("deferred"), mode="processing", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    trigger = deferred.value.trigger
    assert (type(trigger).__name__, trigger.job_type, deferred.value.method_name) == (
        "SageMakerTrigger", "processing", "execute_complete")
    assert wait_for_job(aws, trigger.job_name)["ProcessingJobStatus"] == "Completed"

    result = operator.execute_complete({}, event={"status": "success", "job_name": trigger.job_name})

    assert result["job_name"] == trigger.job_name and result["computed"] is True
    assert read_json(aws, result["constraints_s3_uri"])["features"][0]["name"] == "sepal_length"


def test_a_failed_deferred_job_fails_with_its_failure_reason(aws: AwsTarget):
    operator = baseline(aws, unique_prefix("deferred-failing"), mode="processing", deferrable=True,
                        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/other:1")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    name = deferred.value.trigger.job_name
    assert wait_for_job(aws, name)["ProcessingJobStatus"] == "Failed"
    with pytest.raises(ProcessingJobFailed, match=f"{name} ended Failed: ClientError: the emulator runs only"):
        operator.execute_complete({}, event={"status": "failed", "job_name": name, "message": "Waiter failed"})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"dataset": "/no/such.csv"}, "dataset must be a file on this worker"),
    ({"output_s3_uri": "bucket/prefix"}, "output_s3_uri must be an s3:// URI"),
    ({"dataset_format": "xlsx"}, "dataset_format must be one of csv, json, parquet"),
    ({"mode": "spark"}, "mode must be one of local, processing"),
    ({"mode": "processing", "role_arn": None}, "role_arn is required with mode='processing'"),
    ({"exclude_columns": ["label"]}, r"exclude_columns \['label'\] are not columns of"),
])
def test_arguments_are_checked_before_any_aws_call(overrides: dict, message: str):
    operator = CreateDataQualityBaselineOperator(
        task_id="b", **{"dataset": str(IRIS), "output_s3_uri": "s3://b/p", "aws_conn_id": "no-such-connection",
                        **overrides})
    with pytest.raises(ValueError, match=message):
        operator.execute({})
