"""UpdateVariantWeightsOperator and TrafficSplitCheckOperator on a real two-variant emulator endpoint."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest import mock

import pytest

from airflow.sdk.exceptions import TaskDeferred
from sagemaker_ops.operators.sagemaker_endpoint import UpdateVariantWeightsOperator, VariantWeightsError
from sagemaker_ops.operators.sagemaker_runtime import TrafficSplitCheckOperator, TrafficSplitMismatch
from sagemaker_ops.triggers.sagemaker import EndpointSettledTrigger
from tests.emulator.conftest import Deployer
from tests.operators.conftest import AwsTarget

PAYLOAD = json.dumps({"values": [1, 2]})


@pytest.fixture(scope="module")
def ab_endpoint(emulator) -> str:
    """One endpoint, variants A and B at 1:1, each serving the echo model (two cheap workers)."""
    deployer = Deployer(emulator)
    config = deployer.name("ab-config")
    deployer.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": name, "ModelName": deployer.model(factor=factor), "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1, "InitialVariantWeight": 1.0} for name, factor in (("A", 2), ("B", 3))])
    yield deployer.endpoint(config)
    deployer.cleanup()


def update(target: AwsTarget, endpoint: str, **kwargs: Any) -> dict:
    kwargs = {"task_id": "shift", "endpoint_name": endpoint, "aws_conn_id": target.conn_id, "waiter_delay": 1,
              "waiter_max_attempts": 60, **kwargs}
    return UpdateVariantWeightsOperator(**kwargs).execute({})


def check(target: AwsTarget, endpoint: str, **kwargs: Any) -> dict:
    kwargs = {"task_id": "check", "endpoint_name": endpoint, "payload": PAYLOAD, "content_type": "application/json",
              "invocations": 200, "significance": 0.001, "aws_conn_id": target.conn_id, **kwargs}
    return TrafficSplitCheckOperator(**kwargs).execute({})


def test_weights_shift_in_place_and_the_split_follows(emulator_aws, ab_endpoint):
    even = update(emulator_aws, ab_endpoint, weights={"A": 1, "B": 1})
    assert (even["actions_taken"], even["traffic_shares"]) == ([], {"A": 0.5, "B": 0.5})
    assert check(emulator_aws, ab_endpoint)["consistent"] is True

    shifted = update(emulator_aws, ab_endpoint, weights={"A": 1, "B": 9})
    assert shifted["actions_taken"] == ["weights B=9"] and shifted["changed"] is True
    assert shifted["weights"] == {"A": 1.0, "B": 9.0} and shifted["traffic_shares"] == {"A": 0.1, "B": 0.9}
    split = check(emulator_aws, ab_endpoint)
    assert split["expected_shares"] == {"A": 0.1, "B": 0.9} and split["consistent"] is True
    assert json.loads(json.dumps(split)) == split

    again = update(emulator_aws, ab_endpoint, weights={"A": 1, "B": 9})
    assert (again["actions_taken"], again["changed"]) == ([], False)

    # Claim the old 1:1 split: 200 requests at 1:9 contradict it far beyond the significance.
    with pytest.raises(TrafficSplitMismatch, match=r"inconsistent with weights \{'A': 1, 'B': 1\}"):
        check(emulator_aws, ab_endpoint, expected_weights={"A": 1, "B": 1})
    update(emulator_aws, ab_endpoint, weights={"A": 1, "B": 1})


def test_instance_counts_change_one_variant_per_call(emulator_aws, ab_endpoint):
    grown = update(emulator_aws, ab_endpoint, instance_counts={"A": 2, "B": 2})
    assert grown["actions_taken"] == ["instances A=2", "instances B=2"]
    assert grown["instance_counts"] == {"A": 2, "B": 2}
    shrunk = update(emulator_aws, ab_endpoint, instance_counts={"A": 1, "B": 1})
    assert shrunk["instance_counts"] == {"A": 1, "B": 1}


def test_the_deferred_wait_resumes_and_converges(emulator_aws, ab_endpoint):
    operator = UpdateVariantWeightsOperator(task_id="shift", endpoint_name=ab_endpoint, weights={"A": 3, "B": 1},
                                            aws_conn_id=emulator_aws.conn_id, deferrable=True, waiter_delay=1)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    _, kwargs = deferred.value.trigger.serialize()

    async def first_event():
        async for event in EndpointSettledTrigger(**kwargs).run():
            return event.payload

    result = operator.execute_complete({}, asyncio.run(first_event()))
    assert result["actions_taken"] == ["weights A=3"] and result["weights"] == {"A": 3.0, "B": 1.0}
    update(emulator_aws, ab_endpoint, weights={"A": 1, "B": 1})


def test_unknown_variants_and_missing_endpoints_fail_clearly(emulator_aws, ab_endpoint):
    with pytest.raises(ValueError, match=f"Endpoint {ab_endpoint} has no variant 'C'; its variants are A, B"):
        update(emulator_aws, ab_endpoint, weights={"C": 1})
    with pytest.raises(VariantWeightsError, match="Endpoint no-such-endpoint does not exist; deploy it first"):
        update(emulator_aws, "no-such-endpoint", weights={"A": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Pass weights and/or instance_counts"),
        ({"weights": {"A": -1}}, "weights['A'] must be a number >= 0, got -1"),
        ({"instance_counts": {"A": 0}}, "instance_counts['A'] must be an integer >= 1, got 0"),
        ({"weights": {"A": 1}, "waiter_delay": 0}, "waiter_delay must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_are_refused_before_any_aws_call(kwargs, message):
    operator = UpdateVariantWeightsOperator(task_id="shift", endpoint_name="ab", aws_conn_id="no-such-connection",
                                            **kwargs)
    with pytest.raises(ValueError) as raised:
        operator.execute({})
    assert message in str(raised.value)


def test_an_update_that_does_not_take_effect_fails_with_the_reason():
    at_one_to_one = {"EndpointName": "ab", "EndpointStatus": "InService", "FailureReason": "Not enough capacity.",
                     "ProductionVariants": [{"VariantName": "A", "CurrentWeight": 1.0, "CurrentInstanceCount": 1},
                                            {"VariantName": "B", "CurrentWeight": 1.0, "CurrentInstanceCount": 1}]}
    operator = UpdateVariantWeightsOperator(task_id="shift", endpoint_name="ab", weights={"B": 9})
    hook = mock.MagicMock()
    hook.describe_or_none.return_value = at_one_to_one
    with mock.patch.object(UpdateVariantWeightsOperator, "hook", hook), \
            mock.patch.object(UpdateVariantWeightsOperator, "_wait", return_value=None):
        with pytest.raises(VariantWeightsError, match=r"\(weights B=9\) did not take effect on endpoint ab: "
                                                      r"Not enough capacity"):
            operator.execute({})
    hook.conn.update_endpoint_weights_and_capacities.assert_called_once_with(
        EndpointName="ab", DesiredWeightsAndCapacities=[{"VariantName": "B", "DesiredWeight": 9.0}])


def test_the_split_check_needs_one_request_body(tmp_path):
    with pytest.raises(ValueError, match="Pass payload or payload_file"):
        TrafficSplitCheckOperator(task_id="check", endpoint_name="ab", payload="x", payload_file="y").execute({})
    with pytest.raises(ValueError, match="payload_file '.*missing.csv' cannot be read"):
        TrafficSplitCheckOperator(task_id="check", endpoint_name="ab",
                                  payload_file=str(tmp_path / "missing.csv")).execute({})
