"""The client-side check and the emulator's CreateMonitoringSchedule agree on every schedule.

Each case goes through EnsureMonitoringScheduleOperator's argument check (before any AWS call) and,
independently, through boto3 CreateMonitoringSchedule against the emulator. Both accept it, or both
refuse it with the same message (field names aside: ``schedule_expression`` is ``ScheduleExpression``
on the wire). Both sides check with ``sagemaker_rules.monitor_schedule``; this test keeps it so.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sagemaker_ops.operators.model_monitor_release import EnsureMonitoringScheduleOperator
from tests.emulator.test_model_monitor_api import job_definition

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerRole"
WIRE_NAMES = {"schedule_expression": "ScheduleExpression", "data_analysis_start_time": "DataAnalysisStartTime",
              "data_analysis_end_time": "DataAnalysisEndTime", "max_runtime_seconds": "MaxRuntimeInSeconds"}

CASES = [  # expression, start offset, end offset, MaxRuntimeInSeconds, accepted?
    ("cron(0 * ? * * *)", None, None, 3600, True),
    ("cron(0 * ? * * *)", None, None, 3601, False),
    ("cron(0 12 ? * * *)", None, None, 86400, True),
    ("cron(0 0/7 ? * * *)", None, None, 3 * 3600, True),  # 0, 7, 14, 21: three hours from 21:00 to 00:00
    ("cron(0 0/7 ? * * *)", None, None, 7 * 3600, False),
    ("cron(0 17/12 ? * * *)", None, None, 12 * 3600, True),  # AWS: every 12 hours from 17:00, so 05:00 too
    ("cron(0 17/12 ? * * *)", None, None, 12 * 3600 + 1, False),
    ("cron(0 * ? * * *)", "-PT2H", "-PT1H", 3600, True),  # a window shifted back on a recurring schedule
    ("cron(0 * ? * * *)", "-PT1H", None, 3600, False),
    ("NOW", None, None, 1800, False),
    ("NOW", "-P1D", "-PT0H", 1800, True),  # a day-long window written in days
    ("NOW", "-P2D", "-PT0H", 1800, False),
    ("NOW", "-PT1H", "-PT2H", 1800, False),
    ("NOW", "PT1H", "PT2H", 1800, False),
    ("NOW", "-1H", "-PT0H", 1800, False),
    ("NOW", "-P", "-PT0H", 1800, False),
    ("rate(1 hour)", None, None, 1800, False),
    ("cron(30 * ? * * *)", None, None, 1800, False),
    ("cron(0 25 ? * * *)", None, None, 1800, False),
    ("cron(0 0/0 ? * * *)", None, None, 1800, False),
    ("cron(0 * ? * MON *)", None, None, 1800, False),
]


def client_verdict(expression: str, start: str | None, end: str | None, max_runtime: int) -> str | None:
    """None if the operator accepts the arguments, else its message with the wire's field names."""
    operator = EnsureMonitoringScheduleOperator(
        task_id="ensure", schedule_name="parity", endpoint_name="parity", statistics_s3_uri="s3://b/s.json",
        constraints_s3_uri="s3://b/c.json", output_s3_uri="s3://b/o", role_arn=ROLE_ARN,
        schedule_expression=expression, data_analysis_start_time=start, data_analysis_end_time=end,
        max_runtime_seconds=max_runtime)
    try:
        operator._validate()
    except ValueError as error:
        message = str(error)
        for field, wire_name in WIRE_NAMES.items():
            message = message.replace(field, wire_name)
        return message
    return None


@pytest.fixture(scope="module")
def definitions(emulator):
    """A capturing endpoint and one data-quality job definition per MaxRuntimeInSeconds."""
    from tests.emulator.conftest import Deployer
    from tests.emulator.test_data_capture import capture, deploy, destination

    deployer = Deployer(emulator)
    endpoint = deploy(deployer, capture(destination()))
    runtimes = sorted({case[3] for case in CASES})
    yield deployer, {runtime: job_definition(deployer, endpoint, StoppingCondition={"MaxRuntimeInSeconds": runtime})
                     for runtime in runtimes}
    deployer.cleanup()


def emulator_verdict(deployer, definition: str, expression: str, start: str | None, end: str | None) -> str | None:
    """None if CreateMonitoringSchedule accepts the schedule (then it is deleted), else its error message."""
    window = {key: value for key, value in (("DataAnalysisStartTime", start), ("DataAnalysisEndTime", end)) if value}
    name = deployer.name("parity")
    try:
        deployer.sm.create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig={
            "ScheduleConfig": {"ScheduleExpression": expression, **window},
            "MonitoringJobDefinitionName": definition, "MonitoringType": "DataQuality"})
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ValidationException"
        return error.response["Error"]["Message"]
    deployer.sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    return None


@pytest.mark.parametrize(("expression", "start", "end", "max_runtime", "accepted"), CASES)
def test_the_operator_and_the_service_agree(definitions, expression, start, end, max_runtime, accepted):
    deployer, by_runtime = definitions
    client = client_verdict(expression, start, end, max_runtime)
    service = emulator_verdict(deployer, by_runtime[max_runtime], expression, start, end)
    assert client == service
    assert (client is None) == accepted, client
