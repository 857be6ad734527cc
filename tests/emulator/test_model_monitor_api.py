"""Model Monitor's control plane in the emulator: processing jobs, data-quality job definitions and
monitoring schedules, with AWS's validation. (What executions compute: test_model_monitor_runs.py.)"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import BUCKET, ROLE_ARN
from tests.emulator.test_data_capture import capture, deploy, destination

ANALYZER = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:123456789012"


def job_definition(deployer, endpoint: str, name: str | None = None, **overrides) -> str:
    name = name or deployer.name("dq-def")
    params = {
        "JobDefinitionName": name,
        "DataQualityBaselineConfig": {
            "ConstraintsResource": {"S3Uri": f"s3://{BUCKET}/baseline/constraints.json"},
            "StatisticsResource": {"S3Uri": f"s3://{BUCKET}/baseline/statistics.json"}},
        "DataQualityAppSpecification": {"ImageUri": ANALYZER},
        "DataQualityJobInput": {"EndpointInput": {"EndpointName": endpoint,
                                                  "LocalPath": "/opt/ml/processing/input/endpoint"}},
        "DataQualityJobOutputConfig": {"MonitoringOutputs": [{"S3Output": {
            "S3Uri": f"s3://{BUCKET}/monitoring/reports", "LocalPath": "/opt/ml/processing/output"}}]},
        "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                           "VolumeSizeInGB": 20}},
        "RoleArn": ROLE_ARN,
        "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
        **overrides,
    }
    deployer.sm.create_data_quality_job_definition(**params)
    return name


def schedule(deployer, definition: str, expression: str = "cron(0 * ? * * *)", name: str | None = None,
             **schedule_config) -> str:
    name = name or deployer.name("dq-schedule")
    deployer.sm.create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": expression, **schedule_config},
        "MonitoringJobDefinitionName": definition, "MonitoringType": "DataQuality"})
    return name


@pytest.fixture(scope="module")
def captured_endpoint(emulator):
    from tests.emulator.conftest import Deployer

    helper = Deployer(emulator)
    endpoint = deploy(helper, capture(destination()))
    yield endpoint
    helper.cleanup()


def error_of(call, **params) -> dict:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]


def wait_for_job(deployer, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        described = deployer.sm.describe_processing_job(ProcessingJobName=name)
        if described["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped") or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def processing_job(deployer, image: str = ANALYZER, name: str | None = None) -> str:
    name = name or deployer.name("job")
    deployer.sm.create_processing_job(
        ProcessingJobName=name, RoleArn=ROLE_ARN, AppSpecification={"ImageUri": image},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 20}},
        ProcessingOutputConfig={"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/jobs/{name}", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]})
    return name


# -- processing jobs ------------------------------------------------------------------------------

def test_an_image_the_emulator_cannot_run_fails_the_job_with_the_reason(deployer):
    name = processing_job(deployer, image="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-etl:latest")
    described = wait_for_job(deployer, name)
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: the emulator runs only Model Monitor's analyzer image")
    assert described["ProcessingJobArn"] == f"{ARN_PREFIX}:processing-job/{name}"
    summaries = deployer.sm.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [s["ProcessingJobStatus"] for s in summaries] == ["Failed"]


def test_processing_job_names_are_unique_and_unknown_jobs_are_reported(deployer):
    name = processing_job(deployer)
    error = error_of(processing_job, deployer=deployer, name=name)
    assert error["Code"] == "ResourceInUse"
    assert error["Message"].startswith("Processing job names must be unique within an AWS account and region")
    error = error_of(deployer.sm.describe_processing_job, ProcessingJobName="no-such-job")
    assert (error["Code"], error["Message"]) == ("ValidationException", "Could not find requested job with name no-such-job")


def test_local_paths_must_be_under_opt_ml_processing(deployer):
    error = error_of(deployer.sm.create_processing_job, ProcessingJobName=deployer.name("job"), RoleArn=ROLE_ARN,
                     AppSpecification={"ImageUri": ANALYZER},
                     ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                            "VolumeSizeInGB": 20}},
                     ProcessingInputs=[{"InputName": "data", "S3Input": {
                         "S3Uri": f"s3://{BUCKET}/x", "LocalPath": "/tmp/data", "S3DataType": "S3Prefix",
                         "S3InputMode": "File"}}])
    assert error["Code"] == "ValidationException"
    assert "LocalPath '/tmp/data' must be an absolute path under /opt/ml/processing/" in error["Message"]


# -- job definitions ------------------------------------------------------------------------------

def test_job_definition_round_trip_and_duplicate(deployer, captured_endpoint):
    name = job_definition(deployer, captured_endpoint)
    described = deployer.sm.describe_data_quality_job_definition(JobDefinitionName=name)
    assert described["JobDefinitionArn"] == f"{ARN_PREFIX}:data-quality-job-definition/{name}"
    assert described["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == captured_endpoint
    listed = deployer.sm.list_data_quality_job_definitions(EndpointName=captured_endpoint)["JobDefinitionSummaries"]
    assert name in [d["MonitoringJobDefinitionName"] for d in listed]
    error = error_of(job_definition, deployer=deployer, endpoint=captured_endpoint, name=name)
    assert error["Code"] == "ResourceInUse"
    deployer.sm.delete_data_quality_job_definition(JobDefinitionName=name)
    error = error_of(deployer.sm.describe_data_quality_job_definition, JobDefinitionName=name)
    assert error["Code"] == "ResourceNotFound"


def test_a_job_definition_in_use_cannot_be_deleted(deployer, captured_endpoint):
    definition = job_definition(deployer, captured_endpoint)
    name = schedule(deployer, definition)
    error = error_of(deployer.sm.delete_data_quality_job_definition, JobDefinitionName=definition)
    assert error["Code"] == "ResourceInUse"
    assert name in error["Message"]
    deployer.sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    deployer.sm.delete_data_quality_job_definition(JobDefinitionName=definition)


# -- schedules ------------------------------------------------------------------------------------

def test_schedule_lifecycle(deployer, captured_endpoint):
    definition = job_definition(deployer, captured_endpoint)
    name = schedule(deployer, definition)
    described = deployer.sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["MonitoringScheduleArn"] == f"{ARN_PREFIX}:monitoring-schedule/{name}"
    assert (described["EndpointName"], described["MonitoringType"]) == (captured_endpoint, "DataQuality")
    assert "LastMonitoringExecutionSummary" not in described

    deployer.sm.stop_monitoring_schedule(MonitoringScheduleName=name)
    assert deployer.sm.describe_monitoring_schedule(MonitoringScheduleName=name)["MonitoringScheduleStatus"] == "Stopped"
    deployer.sm.start_monitoring_schedule(MonitoringScheduleName=name)
    deployer.sm.update_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "cron(0 12 ? * * *)"},
        "MonitoringJobDefinitionName": definition, "MonitoringType": "DataQuality"})
    described = deployer.sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 12 ? * * *)"

    listed = deployer.sm.list_monitoring_schedules(EndpointName=captured_endpoint)["MonitoringScheduleSummaries"]
    assert [s["MonitoringJobDefinitionName"] for s in listed if s["MonitoringScheduleName"] == name] == [definition]
    error = error_of(schedule, deployer=deployer, definition=definition, name=name)
    assert error["Code"] == "ResourceInUse"
    deployer.sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    error = error_of(deployer.sm.describe_monitoring_schedule, MonitoringScheduleName=name)
    assert error["Code"] == "ResourceNotFound"


@pytest.mark.parametrize("expression, expected", [
    ("rate(1 hour)", "it must be cron(Minutes Hours Day-of-month Month Day-of-week Year) or NOW"),
    ("cron(30 * ? * * *)", "the Minutes field must be 0"),
    ("cron(0 25 ? * * *)", "hour 25 is not between 0 and 23"),
    ("cron(0 * ? * MON *)", "only hourly and daily schedules are supported"),
])
def test_schedule_expressions_outside_model_monitors_dialect_are_refused(deployer, captured_endpoint, expression,
                                                                          expected):
    definition = job_definition(deployer, captured_endpoint)
    error = error_of(schedule, deployer=deployer, definition=definition, expression=expression)
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(f"Invalid ScheduleExpression '{expression}': ")
    assert expected in error["Message"]


def test_now_needs_an_analysis_window(deployer, captured_endpoint):
    definition = job_definition(deployer, captured_endpoint)
    error = error_of(schedule, deployer=deployer, definition=definition, expression="NOW")
    assert error["Message"] == ("DataAnalysisStartTime and DataAnalysisEndTime are required when ScheduleExpression "
                                "is NOW, e.g. -PT1H and -PT0H.")
    error = error_of(schedule, deployer=deployer, definition=definition, expression="NOW",
                     DataAnalysisStartTime="-PT1H", DataAnalysisEndTime="-PT2H")
    assert error["Message"] == "DataAnalysisStartTime -PT1H must be before DataAnalysisEndTime -PT2H."
    error = error_of(schedule, deployer=deployer, definition=definition, expression="NOW",
                     DataAnalysisStartTime="-P2D", DataAnalysisEndTime="-PT0H")
    assert "may not exceed 24 hours" in error["Message"]


def test_job_runtime_must_fit_the_schedule_frequency(deployer, captured_endpoint):
    definition = job_definition(deployer, captured_endpoint, StoppingCondition={"MaxRuntimeInSeconds": 7200})
    error = error_of(schedule, deployer=deployer, definition=definition)
    assert error["Message"] == ("MaxRuntimeInSeconds 7200 cannot exceed the frequency of the schedule "
                                "cron(0 * ? * * *): at most 3600 seconds.")
    schedule(deployer, definition, expression="cron(0 0/6 ? * * *)")  # every six hours leaves room


def test_only_endpoints_that_capture_data_can_be_monitored(deployer):
    plain = deployer.endpoint(deployer.config(deployer.model()))
    definition = job_definition(deployer, plain)
    error = error_of(schedule, deployer=deployer, definition=definition)
    assert error["Message"] == (f"Endpoint {plain} does not capture data: enable DataCaptureConfig in its endpoint "
                                "configuration before monitoring it.")
    missing = job_definition(deployer, "no-such-endpoint")
    error = error_of(schedule, deployer=deployer, definition=missing)
    assert error["Message"] == f'Could not find endpoint "{ARN_PREFIX}:endpoint/no-such-endpoint".'
