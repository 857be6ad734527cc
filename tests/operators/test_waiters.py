"""The custom SageMaker waiters: every acceptor is valid, and each state lands where it should."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import WaiterError
from botocore.stub import Stubber

from sagemaker_ops.hooks.sagemaker import WAITERS_FILE, SageMakerOpsHook

SETTLED_SUCCESS = ["InService"]
SETTLED_FAILURE = ["Failed", "UpdateRollbackFailed", "OutOfService"]
SETTLED_PENDING = ["Creating", "Updating", "SystemUpdating", "RollingBack"]
TESTED_WAITERS = {"EndpointSettled", "EndpointDeletionComplete", "MonitoringScheduleSettled",
                  "InferenceRecommendationsJobDone"}


@pytest.fixture
def hook() -> SageMakerOpsHook:
    return SageMakerOpsHook(aws_conn_id=None, region_name="us-east-1")


@pytest.fixture
def client():
    return boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def describe_response(status: str) -> dict:
    return {
        "EndpointName": "iris",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/iris",
        "EndpointConfigName": "iris-config",
        "EndpointStatus": status,
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
    }


def wait_once(hook, client, waiter_name: str, response: dict | None = None, error_code: str | None = None, *,
              operation: str = "describe_endpoint", arguments: dict | None = None):
    """One look of ``waiter_name`` at a stubbed ``operation`` answer (or error)."""
    with Stubber(client) as stubber:
        if error_code:
            stubber.add_client_error(operation, service_error_code=error_code, http_status_code=400)
        else:
            stubber.add_response(operation, response)
        hook.get_waiter(waiter_name, client=client).wait(**(arguments or {"EndpointName": "iris"}),
                                                         WaiterConfig={"MaxAttempts": 1, "Delay": 0})


def test_every_custom_waiter_is_tested_and_every_acceptor_has_an_argument(hook):
    model = json.loads(WAITERS_FILE.read_text())["waiters"]
    assert set(model) == TESTED_WAITERS == set(hook._list_custom_waiters())
    for waiter in model.values():
        # AwsGenericHook renders each acceptor's "argument": a missing one is a KeyError at wait time.
        assert all("argument" in acceptor for acceptor in waiter["acceptors"])


def test_boto_official_waiters_stay_available(hook):
    assert "endpoint_in_service" in hook.list_waiters()


@pytest.mark.parametrize("status", SETTLED_SUCCESS)
def test_settled_succeeds_in_service(hook, client, status):
    wait_once(hook, client, "EndpointSettled", describe_response(status))


@pytest.mark.parametrize("status", SETTLED_FAILURE)
def test_settled_fails_fast_on_broken_states(hook, client, status):
    with pytest.raises(WaiterError, match="terminal failure"):
        wait_once(hook, client, "EndpointSettled", describe_response(status))


@pytest.mark.parametrize("status", SETTLED_PENDING)
def test_settled_keeps_waiting_through_transitions(hook, client, status):
    with pytest.raises(WaiterError, match="Max attempts exceeded"):
        wait_once(hook, client, "EndpointSettled", describe_response(status))


def test_settled_fails_when_the_endpoint_does_not_exist(hook, client):
    with pytest.raises(WaiterError, match="terminal failure"):
        wait_once(hook, client, "EndpointSettled", error_code="ValidationException")


def test_deletion_complete_succeeds_once_describe_says_not_found(hook, client):
    wait_once(hook, client, "EndpointDeletionComplete", error_code="ValidationException")


@pytest.mark.parametrize("status", ["Deleting", "Failed"])
def test_deletion_complete_waits_while_the_endpoint_is_still_there(hook, client, status):
    with pytest.raises(WaiterError, match="Max attempts exceeded"):
        wait_once(hook, client, "EndpointDeletionComplete", describe_response(status))


@pytest.mark.parametrize("status", ["InService", "Creating"])
def test_deletion_complete_fails_if_the_endpoint_came_back(hook, client, status):
    with pytest.raises(WaiterError, match="terminal failure"):
        wait_once(hook, client, "EndpointDeletionComplete", describe_response(status))


def schedule_response(status: str) -> dict:
    return {
        "MonitoringScheduleArn": "arn:aws:sagemaker:us-east-1:123456789012:monitoring-schedule/dq",
        "MonitoringScheduleName": "dq",
        "MonitoringScheduleStatus": status,
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
        "MonitoringScheduleConfig": {"MonitoringJobDefinitionName": "dq-def", "MonitoringType": "DataQuality"},
    }


def wait_for_schedule_once(hook, client, response: dict | None = None, error_code: str | None = None):
    wait_once(hook, client, "MonitoringScheduleSettled", response, error_code,
              operation="describe_monitoring_schedule", arguments={"MonitoringScheduleName": "dq"})


@pytest.mark.parametrize("status", ["Scheduled", "Stopped"])
def test_schedule_settled_succeeds_once_the_schedule_is_set_up(hook, client, status):
    wait_for_schedule_once(hook, client, schedule_response(status))


def test_schedule_settled_keeps_waiting_while_pending(hook, client):
    with pytest.raises(WaiterError, match="Max attempts exceeded"):
        wait_for_schedule_once(hook, client, schedule_response("Pending"))


def test_schedule_settled_fails_on_a_failed_or_missing_schedule(hook, client):
    with pytest.raises(WaiterError, match="terminal failure"):
        wait_for_schedule_once(hook, client, schedule_response("Failed"))
    with pytest.raises(WaiterError, match="terminal failure"):
        wait_for_schedule_once(hook, client, error_code="ResourceNotFound")


def recommendations_job(status: str) -> dict:
    return {"JobName": "ir", "JobType": "Advanced", "JobArn": "arn:aws:sagemaker:us-east-1:123456789012:"
            "inference-recommendations-job/ir", "RoleArn": "arn:aws:iam::123456789012:role/r", "Status": status,
            "CreationTime": "2026-01-01T00:00:00Z", "LastModifiedTime": "2026-01-01T00:00:00Z",
            "InputConfig": {"ModelName": "m"}}


def wait_for_job_once(hook, client, response: dict | None = None, error_code: str | None = None):
    wait_once(hook, client, "InferenceRecommendationsJobDone", response, error_code,
              operation="describe_inference_recommendations_job", arguments={"JobName": "ir"})


def test_recommendations_job_done_succeeds_on_completed_and_waits_while_running(hook, client):
    wait_for_job_once(hook, client, recommendations_job("COMPLETED"))
    for status in ("PENDING", "IN_PROGRESS", "STOPPING"):
        with pytest.raises(WaiterError, match="Max attempts exceeded"):
            wait_for_job_once(hook, client, recommendations_job(status))


@pytest.mark.parametrize("status", ["FAILED", "STOPPED"])
def test_recommendations_job_done_fails_on_a_failed_stopped_or_missing_job(hook, client, status):
    with pytest.raises(WaiterError, match="terminal failure"):
        wait_for_job_once(hook, client, recommendations_job(status))
    with pytest.raises(WaiterError, match="terminal failure"):
        wait_for_job_once(hook, client, error_code="ResourceNotFound")
