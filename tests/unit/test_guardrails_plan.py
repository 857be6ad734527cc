"""The traffic steps a DeploymentConfig turns into: green's share = active green / active capacity."""

from __future__ import annotations

from sagemaker_emulator.sagemaker.guardrails import plan_deployment
from sagemaker_emulator.sagemaker.typed_requests import DeploymentConfig, ProductionVariant


def plan(routing: dict, blue: int, green: int, termination: int = 0):
    config = DeploymentConfig.from_aws({"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": termination}})
    variant = ProductionVariant(variant_name="AllTraffic", initial_instance_count=green)
    return plan_deployment(config, {"AllTraffic": blue}, [variant], lambda names: set(names))


def shares(result) -> list[tuple[int, float, int, bool]]:
    return [(s.green_active, round(s.green_share, 3), s.bake_seconds, s.final) for s in result.steps]


def test_canary_keeps_all_of_blue_active_while_it_bakes():
    result = plan({"Type": "CANARY", "WaitIntervalInSeconds": 60,
                   "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}}, blue=4, green=4, termination=30)
    assert shares(result) == [(1, 0.2, 60, False), (4, 1.0, 30, True)]


def test_linear_moves_a_step_of_capacity_at_a_time_and_rounds_up_to_one_instance():
    result = plan({"Type": "LINEAR", "WaitIntervalInSeconds": 10,
                   "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 40}}, blue=2, green=3)
    # 40% of 3 instances is 1.2: one instance per step.
    assert shares(result) == [(1, 0.333, 10, False), (2, 0.667, 10, False), (3, 1.0, 10, False), (3, 1.0, 0, True)]


def test_all_at_once_is_one_final_bake():
    result = plan({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}, blue=1, green=2, termination=600)
    assert shares(result) == [(2, 1.0, 600, True)]
