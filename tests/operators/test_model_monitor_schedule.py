"""EnsureMonitoringScheduleOperator and MonitoringExecutionsOperator against the emulator.

Run twice: one schedule, one job definition. A changed spec: a new definition, the schedule
updated to it, the old one deleted. A one-time (NOW) schedule runs at once, and its execution's
violations are read back.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow.sdk.exceptions import AirflowSkipException
from sagemaker_ops.operators.model_monitor_release import EnsureMonitoringScheduleOperator
from sagemaker_ops.operators.model_monitor_report import MonitoringExecutionsOperator
from tests.operators.conftest import AwsTarget
from tests.operators.test_model_monitor_baseline import BUCKET, ROLE_ARN, aws, baseline  # noqa: F401 - fixture
from tests.operators.test_model_monitor_check import capture_line, iris_rows, put_capture

TERMINAL = ("Completed", "CompletedWithViolations", "Failed", "Stopped")


@pytest.fixture(scope="module")
def monitored(emulator):
    """An endpoint capturing its requests, and a baseline of iris without its label."""
    from tests.emulator.conftest import Deployer
    from tests.emulator.test_data_capture import capture, deploy, destination

    deployer = Deployer(emulator)
    capture_uri = destination()
    endpoint = deploy(deployer, capture(capture_uri))
    target = AwsTarget(conn_id="aws_default", url=emulator.url)
    s3 = target.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    files = baseline(target, f"s3://{BUCKET}/schedule-baseline", mode="local").execute({})
    yield {"endpoint": endpoint, "capture_uri": capture_uri, **files}
    deployer.cleanup()


def ensure(aws: AwsTarget, monitored: dict, name: str, **overrides) -> dict:
    kwargs = dict(task_id="ensure_monitoring_schedule", schedule_name=name, endpoint_name=monitored["endpoint"],
                  statistics_s3_uri=monitored["statistics_s3_uri"], constraints_s3_uri=monitored["constraints_s3_uri"],
                  output_s3_uri=f"s3://{BUCKET}/schedule-reports", role_arn=ROLE_ARN, max_runtime_seconds=1800,
                  waiter_delay=1, aws_conn_id=aws.conn_id)
    kwargs.update(overrides)
    return EnsureMonitoringScheduleOperator(**kwargs).execute({})


def definitions(aws: AwsTarget, endpoint: str) -> list[str]:
    listed = aws.client("sagemaker").list_data_quality_job_definitions(EndpointName=endpoint, MaxResults=100)
    return sorted(item["MonitoringJobDefinitionName"] for item in listed["JobDefinitionSummaries"])


def test_running_twice_keeps_one_schedule_and_one_definition(aws: AwsTarget, monitored: dict):
    name = f"dq-{uuid.uuid4().hex[:8]}"
    first = ensure(aws, monitored, name)
    second = ensure(aws, monitored, name)

    assert first["actions_taken"] == [f"created job definition {first['job_definition_name']}", "created schedule"]
    assert (second["actions_taken"], second["changed"]) == ([], False)
    assert second["job_definition_name"] == first["job_definition_name"]
    assert first["job_definition_name"].startswith(f"{name}-")
    sagemaker = aws.client("sagemaker")
    described = sagemaker.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == first["job_definition_name"]
    assert described["MonitoringScheduleConfig"]["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
    schedules = sagemaker.list_monitoring_schedules(EndpointName=monitored["endpoint"])["MonitoringScheduleSummaries"]
    assert [s["MonitoringScheduleName"] for s in schedules].count(name) == 1
    definition = sagemaker.describe_data_quality_job_definition(JobDefinitionName=first["job_definition_name"])
    assert definition["DataQualityBaselineConfig"]["StatisticsResource"]["S3Uri"] == monitored["statistics_s3_uri"]
    assert json.loads(definition["DataQualityAppSpecification"]["Environment"]["dataset_format"]) == {
        "sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}}


def test_a_changed_spec_updates_the_schedule_and_retires_the_old_definition(aws: AwsTarget, monitored: dict):
    name = f"dq-{uuid.uuid4().hex[:8]}"
    first = ensure(aws, monitored, name)
    changed = ensure(aws, monitored, name, instance_type="ml.m5.2xlarge", schedule_expression="cron(0 6 ? * * *)",
                     max_runtime_seconds=3600)

    new, old = changed["job_definition_name"], first["job_definition_name"]
    assert new != old
    assert changed["actions_taken"] == [f"created job definition {new}", "updated schedule",
                                        f"deleted job definition {old}"]
    described = aws.client("sagemaker").describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == new
    assert described["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 6 ? * * *)"
    assert old not in definitions(aws, monitored["endpoint"]) and new in definitions(aws, monitored["endpoint"])
    assert ensure(aws, monitored, name, instance_type="ml.m5.2xlarge", schedule_expression="cron(0 6 ? * * *)",
                  max_runtime_seconds=3600)["actions_taken"] == []


@pytest.mark.parametrize(("overrides", "message"), [
    ({"schedule_expression": "rate(1 hour)"}, r"Invalid schedule_expression 'rate\(1 hour\)': it must be cron"),
    ({"max_runtime_seconds": 7200}, r"max_runtime_seconds 7200 cannot exceed the frequency of the schedule "
                                   r"cron\(0 \* \? \* \* \*\): at most 3600 seconds"),
    ({"schedule_expression": "NOW"}, "data_analysis_start_time and data_analysis_end_time are required when "
                                    "ScheduleExpression is NOW"),
    ({"statistics_s3_uri": "statistics.json"}, "statistics_s3_uri must be an s3:// URI"),
    ({"schedule_name": "bad_name"}, "schedule_name must be 1-63 letters"),
])
def test_arguments_are_checked_before_any_aws_call(overrides: dict, message: str):
    operator = EnsureMonitoringScheduleOperator(**{
        "task_id": "e", "schedule_name": "s", "endpoint_name": "e", "statistics_s3_uri": "s3://b/s.json",
        "constraints_s3_uri": "s3://b/c.json", "output_s3_uri": "s3://b/o", "role_arn": ROLE_ARN,
        "aws_conn_id": "no-such-connection", **overrides})
    with pytest.raises(ValueError, match=message):
        operator.execute({})


def test_a_missing_schedule_skips_the_executions_report(aws: AwsTarget):
    operator = MonitoringExecutionsOperator(task_id="latest", schedule_name=f"missing-{uuid.uuid4().hex[:8]}",
                                            aws_conn_id=aws.conn_id)
    with pytest.raises(AirflowSkipException, match="does not exist"):
        operator.execute({})


def test_a_one_time_schedule_runs_and_its_violations_are_read_back(aws: AwsTarget, monitored: dict):
    at = datetime.now(timezone.utc) - timedelta(minutes=1)  # inside the window [run - 1 h, run)
    shifted = [capture_line([s, w, p + 3.0, pw], at) for s, w, p, pw in iris_rows()[::2]]
    put_capture(aws, monitored["capture_uri"], monitored["endpoint"], shifted, at)
    name = f"dq-now-{uuid.uuid4().hex[:8]}"
    ensure(aws, monitored, name, schedule_expression="NOW", data_analysis_start_time="-PT1H",
           data_analysis_end_time="-PT0H")

    executions = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        report = MonitoringExecutionsOperator(task_id="latest", schedule_name=name, aws_conn_id=aws.conn_id).execute({})
        executions = report["executions"]
        if executions and executions[0]["status"] in TERMINAL:
            break
        time.sleep(1)

    [execution] = executions
    assert execution["status"] == "CompletedWithViolations", execution
    assert execution["violation_summary"]["baseline_drift_check"] == ["petal_length"]
    assert execution["report_s3_uri"].startswith(f"s3://{BUCKET}/schedule-reports/{monitored['endpoint']}/{name}/")
    assert (report["statistics_s3_uri"], report["constraints_s3_uri"]) == (monitored["statistics_s3_uri"],
                                                                            monitored["constraints_s3_uri"])
    assert report["endpoint_name"] == monitored["endpoint"] and report["schedule_status"] == "Scheduled"
