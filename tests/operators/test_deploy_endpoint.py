"""DeployEndpointOperator: create, converge on re-run, replace a Failed endpoint, update, defer.

moto covers create/describe/delete (instantly InService). UpdateEndpoint, Failed endpoints and
slow transitions are scripted with a fake hook; the emulator tests cover them for real.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest import mock

import pytest

from airflow.sdk.exceptions import AirflowException, TaskDeferred
from sagemaker_ops.operators.sagemaker_endpoint import DeployEndpointOperator, EndpointDeploymentError
from sagemaker_ops.triggers.sagemaker import EndpointDeletedTrigger, EndpointSettledTrigger
from tests.operators.conftest import AwsTarget

ROLE = "arn:aws:iam::123456789012:role/sagemaker-ops-execution"
TARGET = "iris-config-new"
OLD = "iris-config-old"


def deploy_operator(conn_id: str = "aws_default", **overrides: Any) -> DeployEndpointOperator:
    kwargs = {
        "task_id": "deploy_endpoint",
        "endpoint_name": "iris",
        "endpoint_config_name": TARGET,
        "aws_conn_id": conn_id,
        "waiter_delay": 1,
        "waiter_max_attempts": 5,
        **overrides,
    }
    return DeployEndpointOperator(**kwargs)


def create_config(target: AwsTarget, name: str = TARGET) -> None:
    client = target.client("sagemaker")
    client.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "img:1", "ModelDataUrl": "s3://bucket/model.tar.gz"},
    )
    client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )


async def first_event(trigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("trigger ended without an event")


# -- against moto --------------------------------------------------------------------------------


class TestAgainstMoto:
    def test_creates_the_endpoint_then_a_rerun_changes_nothing(self, moto: AwsTarget):
        create_config(moto)
        first = deploy_operator(moto.conn_id).execute({})
        second = deploy_operator(moto.conn_id).execute({})

        assert first["actions_taken"] == ["create"] and first["changed"] is True
        assert (first["endpoint_status"], first["endpoint_config_name"]) == ("InService", TARGET)
        assert second["actions_taken"] == [] and second["changed"] is False
        assert len(moto.client("sagemaker").list_endpoints()["Endpoints"]) == 1
        assert json.loads(json.dumps(second)) == second

    def test_deferrable_create_defers_then_completes_from_the_event(self, moto: AwsTarget):
        create_config(moto)
        operator = deploy_operator(moto.conn_id, deferrable=True)

        with pytest.raises(TaskDeferred) as deferred:
            operator.execute({})

        trigger = deferred.value.trigger
        assert isinstance(trigger, EndpointSettledTrigger)
        assert deferred.value.method_name == "execute_complete"
        classpath, kwargs = trigger.serialize()
        assert classpath == "sagemaker_ops.triggers.sagemaker.EndpointSettledTrigger"
        assert kwargs == {
            "endpoint_name": "iris",
            "actions_taken": ["create"],
            "waiter_delay": 1,
            "waiter_max_attempts": 5,
            "aws_conn_id": moto.conn_id,
        }

        # The trigger really waits (aiobotocore against the server), then the task resumes from the event.
        event = asyncio.run(first_event(EndpointSettledTrigger(**kwargs)))
        assert event == {"status": "success", "deployment": {"endpoint_name": "iris", "actions_taken": ["create"]}}
        result = deploy_operator(moto.conn_id, deferrable=True).execute_complete({}, event)
        assert (result["endpoint_status"], result["actions_taken"]) == ("InService", ["create"])

    def test_a_deferrable_rerun_on_a_converged_endpoint_does_not_defer(self, moto: AwsTarget):
        create_config(moto)
        deploy_operator(moto.conn_id).execute({})
        assert deploy_operator(moto.conn_id, deferrable=True).execute({})["changed"] is False

    def test_deletion_trigger_reports_success_once_the_endpoint_is_gone(self, moto: AwsTarget):
        trigger = EndpointDeletedTrigger(
            endpoint_name="never-existed", aws_conn_id=moto.conn_id, waiter_delay=1, waiter_max_attempts=2
        )
        assert asyncio.run(first_event(trigger))["status"] == "success"

    def test_settled_trigger_reports_an_error_event_for_a_missing_endpoint(self, moto: AwsTarget):
        trigger = EndpointSettledTrigger(
            endpoint_name="never-existed", aws_conn_id=moto.conn_id, waiter_delay=1, waiter_max_attempts=2
        )
        event = asyncio.run(first_event(trigger))
        assert event["status"] == "error"
        assert "never-existed" in event["message"]


# -- scripted states -------------------------------------------------------------------------------


def described(status: str, config: str = TARGET, reason: str | None = None) -> dict:
    response = {
        "EndpointName": "iris",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/iris",
        "EndpointConfigName": config,
        "EndpointStatus": status,
    }
    if reason:
        response["FailureReason"] = reason
    return response


class ScriptedHook:
    """Answers DescribeEndpoint from a script (the last answer repeats) and records calls."""

    def __init__(self, *answers: dict | None) -> None:
        self.answers = list(answers)
        self.conn = mock.MagicMock()
        self.deleted: list[str] = []

    def describe_or_none(self, kind: str, name: str) -> dict | None:
        assert kind == "endpoint", kind
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def delete_endpoint(self, endpoint_name: str) -> None:
        self.deleted.append(endpoint_name)


def scripted(hook: ScriptedHook, waits: list[str | None] | None = None, **overrides: Any) -> DeployEndpointOperator:
    """An operator wired to ``hook``; each synchronous wait returns the next of ``waits`` (None = success)."""
    operator = deploy_operator(**overrides)
    operator.__dict__["hook"] = hook  # the hook is a cached_property
    outcomes = list(waits or [])
    operator._wait = lambda waiter_name: outcomes.pop(0) if outcomes else None
    return operator


class TestConvergence:
    def test_failed_endpoint_is_deleted_and_created_again(self, caplog):
        hook = ScriptedHook(described("Failed", OLD, "image pull failed"), None, described("InService"))
        result = scripted(hook).execute({})

        assert result["actions_taken"] == ["delete", "create"]
        assert hook.deleted == ["iris"]
        hook.conn.create_endpoint.assert_called_once_with(EndpointName="iris", EndpointConfigName=TARGET, Tags=[])

    def test_failed_endpoint_without_replace_failed_fails_with_the_reason(self):
        hook = ScriptedHook(described("Failed", OLD, "image pull failed"))
        with pytest.raises(EndpointDeploymentError, match="Failed: image pull failed. Delete it, or set replace_failed=True"):
            scripted(hook, replace_failed=False).execute({})
        assert hook.deleted == []

    def test_in_service_on_another_config_is_updated(self):
        hook = ScriptedHook(described("InService", OLD), described("InService"))
        result = scripted(hook, update_endpoint_kwargs={"RetainAllVariantProperties": True}).execute({})

        assert result["actions_taken"] == ["update"]
        hook.conn.update_endpoint.assert_called_once_with(
            EndpointName="iris", EndpointConfigName=TARGET, RetainAllVariantProperties=True
        )

    def test_an_update_in_progress_is_waited_out_then_judged(self):
        hook = ScriptedHook(described("Updating", OLD), described("InService", OLD), described("InService"))
        result = scripted(hook).execute({})
        assert result["actions_taken"] == ["update"]

    def test_a_rolled_back_update_is_a_failure(self):
        hook = ScriptedHook(described("InService", OLD), described("InService", OLD, "alarm fired"))
        with pytest.raises(EndpointDeploymentError, match="InService on iris-config-old, not on the target iris-config-new"):
            scripted(hook).execute({})

    def test_our_create_ending_failed_reports_the_failure_reason(self):
        hook = ScriptedHook(None, described("Failed", reason="model_fn raised ImportError"))
        expected = "ended Failed while deploying iris-config-new: model_fn raised ImportError"
        with pytest.raises(EndpointDeploymentError, match=expected):
            scripted(hook, waits=["EndpointSettled: terminal failure"]).execute({})

    def test_a_wait_that_times_out_fails_with_the_waiter_message(self):
        hook = ScriptedHook(None, described("Creating"))
        with pytest.raises(EndpointDeploymentError, match="Gave up waiting: Waiter error: max attempts reached"):
            scripted(hook, waits=["Waiter error: max attempts reached"]).execute({})

    def test_without_wait_for_completion_the_create_is_only_started(self):
        hook = ScriptedHook(None, described("Creating"))
        result = scripted(hook, wait_for_completion=False).execute({})
        assert (result["endpoint_status"], result["actions_taken"]) == ("Creating", ["create"])

    def test_a_lost_create_race_is_described_again(self):
        from botocore.exceptions import ClientError

        hook = ScriptedHook(None, described("InService"))
        hook.conn.create_endpoint.side_effect = ClientError(
            {"Error": {"Code": "ValidationException", "Message": 'Cannot create already existing endpoint "arn".'}},
            "CreateEndpoint",
        )
        assert scripted(hook).execute({})["actions_taken"] == []


class TestDeferredConvergence:
    def test_replacing_a_failed_endpoint_defers_twice(self):
        hook = ScriptedHook(described("Failed", OLD, "bad image"))
        with pytest.raises(TaskDeferred) as deferred:
            scripted(hook, deferrable=True).execute({})
        assert isinstance(deferred.value.trigger, EndpointDeletedTrigger)
        assert deferred.value.trigger.serialize()[1]["actions_taken"] == ["delete"]

        hook.answers = [None]
        event = {"status": "success", "deployment": {"endpoint_name": "iris", "actions_taken": ["delete"]}}
        with pytest.raises(TaskDeferred) as deferred:
            scripted(hook, deferrable=True).execute_complete({}, event)
        assert isinstance(deferred.value.trigger, EndpointSettledTrigger)
        assert deferred.value.trigger.serialize()[1]["actions_taken"] == ["delete", "create"]

        hook.answers = [described("InService")]
        event = {"status": "success", "deployment": {"endpoint_name": "iris", "actions_taken": ["delete", "create"]}}
        result = scripted(hook, deferrable=True).execute_complete({}, event)
        assert result["actions_taken"] == ["delete", "create"]

    def test_an_error_event_after_our_create_fails_with_the_failure_reason(self):
        hook = ScriptedHook(described("Failed", reason="ping timed out"))
        event = {
            "status": "error",
            "message": "terminal failure",
            "deployment": {"endpoint_name": "iris", "actions_taken": ["create"]},
        }
        with pytest.raises(EndpointDeploymentError, match="ping timed out"):
            scripted(hook, deferrable=True).execute_complete({}, event)

    def test_an_error_event_while_still_creating_is_a_timeout(self):
        hook = ScriptedHook(described("Creating"))
        event = {
            "status": "error",
            "message": "Waiter error: max attempts reached",
            "deployment": {"actions_taken": ["create"]},
        }
        with pytest.raises(EndpointDeploymentError, match="Gave up waiting: Waiter error: max attempts reached"):
            scripted(hook, deferrable=True).execute_complete({}, event)

    def test_a_missing_event_is_rejected(self):
        with pytest.raises(AirflowException, match="event is None"):
            scripted(ScriptedHook(None)).execute_complete({}, None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"endpoint_name": "bad_name"}, "endpoint_name must be 1-63"),
        ({"endpoint_config_name": "{{ not rendered }}"}, "endpoint_config_name must be 1-63"),
        ({"waiter_delay": 0}, "waiter_delay must be an integer >= 1"),
        ({"waiter_max_attempts": "10"}, "waiter_max_attempts must be an integer >= 1"),
        ({"update_endpoint_kwargs": ["x"]}, "update_endpoint_kwargs must be a dict"),
    ],
)
def test_templated_arguments_are_validated_in_execute(overrides: dict, message: str):
    with pytest.raises((ValueError, TypeError), match=message):
        scripted(ScriptedHook(None), **overrides).execute({})
