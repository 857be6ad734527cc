"""The deploy operator's decisions, state by state (no AWS: DescribeEndpoint responses as dicts)."""

from __future__ import annotations

import pytest

from sagemaker_ops.endpoint_plan import MAX_ACTIONS, Action, plan_next_step

TARGET = "iris-config-new"


def endpoint(status: str, config: str = TARGET, reason: str | None = None) -> dict:
    described = {"EndpointName": "iris", "EndpointStatus": status, "EndpointConfigName": config}
    if reason:
        described["FailureReason"] = reason
    return described


def plan(described, actions=(), replace_failed=True):
    return plan_next_step(
        described, endpoint_name="iris", target_config=TARGET, replace_failed=replace_failed, actions_taken=list(actions)
    )


@pytest.mark.parametrize(
    ("described", "actions", "expected"),
    [
        (None, [], Action.CREATE),
        (None, ["delete"], Action.CREATE),
        (endpoint("InService"), [], Action.DONE),
        (endpoint("InService"), ["update"], Action.DONE),
        (endpoint("InService", "iris-config-old"), [], Action.UPDATE),
        (endpoint("UpdateRollbackFailed", "iris-config-old"), [], Action.UPDATE),
        (endpoint("Creating"), [], Action.WAIT_SETTLED),
        (endpoint("Updating", "iris-config-old"), [], Action.WAIT_SETTLED),
        (endpoint("SystemUpdating"), [], Action.WAIT_SETTLED),
        (endpoint("RollingBack"), [], Action.WAIT_SETTLED),
        (endpoint("Deleting"), ["delete"], Action.WAIT_DELETED),
        (endpoint("Failed", "iris-config-old", "image pull failed"), [], Action.DELETE),
    ],
)
def test_next_step(described, actions, expected):
    assert plan(described, actions).action is expected


def test_a_failed_endpoint_is_left_alone_without_replace_failed():
    step = plan(endpoint("Failed", reason="model_fn raised"), replace_failed=False)
    assert step.action is Action.FAIL
    assert "model_fn raised" in step.reason and "replace_failed=True" in step.reason


def test_our_own_create_ending_failed_is_a_failure_with_the_reason():
    step = plan(endpoint("Failed", reason="ping never succeeded"), ["delete", "create"])
    assert step.action is Action.FAIL
    assert "ended Failed while deploying iris-config-new: ping never succeeded" in step.reason


def test_an_update_rolled_back_to_the_old_config_is_a_failure():
    step = plan(endpoint("InService", "iris-config-old", "alarm fired"), ["update"])
    assert step.action is Action.FAIL
    assert "InService on iris-config-old, not on the target iris-config-new" in step.reason


def test_out_of_service_is_not_deployed_over():
    step = plan(endpoint("OutOfService", "iris-config-old"))
    assert step.action is Action.FAIL and "OutOfService" in step.reason


def test_too_many_actions_stop_the_loop():
    assert plan(None, ["create"] * MAX_ACTIONS).action is Action.FAIL
