"""ApplyScalingOperator against the emulator: a spec applied, a re-run that writes nothing (every call is
recorded on the wire), a changed spec updated in place, dropped items deleted, bad specs refused before any
write; ReleaseScalingForUpdateOperator deregistering only what an instance-type change needs."""

from __future__ import annotations

import re

import botocore.client
import pytest
from botocore.exceptions import ClientError

from sagemaker_ops.operators.autoscaling import ApplyScalingOperator, ReleaseScalingForUpdateOperator
from sagemaker_ops.operators.promotion import PromoteEndpointOperator
from sagemaker_ops.operators.sagemaker_endpoint import DeployEndpointOperator
from sagemaker_ops.pipeline import PipelineConfigError
from tests.emulator.conftest import deployer  # noqa: F401 - the fixture

VARIANT = "AllTraffic"
INVOCATIONS = {"metric": "SageMakerVariantInvocationsPerInstance", "target_value": 10,
               "scale_in_cooldown_seconds": 300, "scale_out_cooldown_seconds": 60}
LATENCY_STEP = {"name": "latency-step", "adjustment_type": "ChangeInCapacity",
                "steps": [{"lower_bound": 0, "upper_bound": 100000, "adjustment": 1},
                          {"lower_bound": 100000, "adjustment": 2}],
                "cooldown_seconds": 120,
                "alarm": {"metric": "ModelLatency", "threshold": 500000, "evaluation_periods": 2}}
NIGHTLY = {"name": "nightly", "schedule": "cron(0 20 * * ? *)", "timezone": "Europe/Berlin", "min_capacity": 1,
           "max_capacity": 2}


@pytest.fixture
def endpoint(deployer) -> str:
    return deployer.endpoint(deployer.config(deployer.model(), count=1))


@pytest.fixture
def aws_calls(monkeypatch) -> list[str]:
    """Every AWS operation any client makes (the calls still go through: a spy, not a stub)."""
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        calls.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return calls


def spec(**variant) -> dict:
    return {"variants": [{"name": VARIANT, "min_capacity": 1, "max_capacity": 4, **variant}]}


def apply(endpoint: str, scaling: dict, **kwargs) -> dict:
    return ApplyScalingOperator(task_id="apply_scaling", endpoint_name=endpoint, scaling=scaling,
                                waiter_delay=1, **kwargs).execute({})


def key(endpoint: str) -> dict:
    return {"ServiceNamespace": "sagemaker", "ResourceId": f"endpoint/{endpoint}/variant/{VARIANT}",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}


def described(emulator, endpoint: str) -> dict:
    autoscaling = emulator.client("application-autoscaling")
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker",
                                                    ResourceIds=[key(endpoint)["ResourceId"]])["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(**key(endpoint))["ScalingPolicies"]
    actions = autoscaling.describe_scheduled_actions(**key(endpoint))["ScheduledActions"]
    alarms = emulator.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{endpoint}-{VARIANT}-scaling-")
    return {"targets": targets, "policies": {p["PolicyName"]: p for p in policies},
            "actions": {a["ScheduledActionName"]: a for a in actions},
            "alarms": {a["AlarmName"]: a for a in alarms["MetricAlarms"]}}


def writes(calls: list[str]) -> list[str]:
    return [call for call in calls if not call.startswith(("Describe", "List", "Get"))]


def test_a_spec_is_applied_and_a_rerun_writes_nothing(emulator, endpoint, aws_calls):
    scaling = spec(target_tracking=[INVOCATIONS], step_scaling=[LATENCY_STEP], scheduled_actions=[NIGHTLY])
    first = apply(endpoint, scaling)

    state = described(emulator, endpoint)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in state["targets"]] == [(1, 4)]
    tracking = state["policies"]["target-tracking-SageMakerVariantInvocationsPerInstance"]
    configuration = tracking["TargetTrackingScalingPolicyConfiguration"]
    assert (configuration["TargetValue"], configuration["ScaleInCooldown"], configuration["ScaleOutCooldown"]) == \
        (10.0, 300, 60)
    step = state["policies"]["latency-step"]["StepScalingPolicyConfiguration"]
    assert [s["ScalingAdjustment"] for s in step["StepAdjustments"]] == [1, 2]
    alarm = state["alarms"][f"{endpoint}-{VARIANT}-scaling-latency-step"]
    assert alarm["AlarmActions"] == [state["policies"]["latency-step"]["PolicyARN"]]
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"EndpointName": endpoint, "VariantName": VARIANT}
    assert state["actions"]["nightly"]["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 2}
    assert first["changed"] and first["alarm_names"] == [alarm["AlarmName"]]
    assert writes(aws_calls) == ["RegisterScalableTarget", "PutScalingPolicy", "PutScalingPolicy", "PutMetricAlarm",
                                 "PutScheduledAction"]

    aws_calls.clear()
    again = apply(endpoint, scaling)
    assert (again["changed"], again["changes"], writes(aws_calls)) == (False, [], [])
    assert again["policy_arns"] == first["policy_arns"]


def test_a_changed_spec_updates_in_place_and_dropped_items_are_deleted(emulator, endpoint, aws_calls):
    apply(endpoint, spec(target_tracking=[INVOCATIONS], step_scaling=[LATENCY_STEP], scheduled_actions=[NIGHTLY]))
    before = described(emulator, endpoint)["policies"]["target-tracking-SageMakerVariantInvocationsPerInstance"]
    aws_calls.clear()

    result = apply(endpoint, spec(max_capacity=3, target_tracking=[{**INVOCATIONS, "target_value": 25}]))

    state = described(emulator, endpoint)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in state["targets"]] == [(1, 3)]
    tracking = state["policies"]["target-tracking-SageMakerVariantInvocationsPerInstance"]
    assert tracking["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 25.0
    assert tracking["PolicyName"] == before["PolicyName"]
    assert "updated policy target-tracking-SageMakerVariantInvocationsPerInstance" in result["changes"][1]
    assert (list(state["policies"]), state["actions"], state["alarms"]) == (
        ["target-tracking-SageMakerVariantInvocationsPerInstance"], {}, {})
    assert sorted(writes(aws_calls)) == ["DeleteAlarms", "DeleteScalingPolicy", "DeleteScheduledAction",
                                         "PutScalingPolicy", "RegisterScalableTarget"]
    assert any("deleted policy latency-step" in change for change in result["changes"])


def test_the_target_value_parameter_overrides_the_invocations_target(emulator, endpoint):
    apply(endpoint, spec(target_tracking=[INVOCATIONS]), target_value="42.5")
    policy = described(emulator, endpoint)["policies"]["target-tracking-SageMakerVariantInvocationsPerInstance"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 42.5


@pytest.mark.parametrize(("variant", "message"), [
    ({"min_capacity": 5}, "scaling.variants[0].min_capacity must be at most max_capacity (4)"),
    ({"target_tracking": [{"metric": "CPUUtilization", "target_value": 50}]},
     "target_tracking[0].metric must be a predefined metric"),
    ({"target_tracking": [{"customized_metric": {"metric": "Invocationz"}, "target_value": 5}]},
     "customized_metric.metric is not a metric SageMaker publishes in AWS/SageMaker"),
    ({"step_scaling": [{**LATENCY_STEP, "steps": [{"upper_bound": 0, "adjustment": -1},
                                                  {"lower_bound": 10, "adjustment": 1}]}]},
     "must not leave a gap: one step ends at 0, the next starts at 10"),
    ({"scheduled_actions": [{**NIGHTLY, "schedule": "every night"}]},
     "schedule must be a schedule expression: at(yyyy-mm-ddThh:mm:ss)"),
], ids=["min-above-max", "not-predefined", "unknown-metric", "step-gap", "bad-schedule"])
def test_a_bad_spec_is_refused_before_any_aws_call(endpoint, aws_calls, variant, message):
    aws_calls.clear()
    with pytest.raises(PipelineConfigError, match=re.escape(message)):
        apply(endpoint, spec(**variant))
    assert aws_calls == []


def test_a_real_time_variant_may_not_scale_to_zero_nor_on_an_async_metric(endpoint, aws_calls):
    aws_calls.clear()
    with pytest.raises(PipelineConfigError) as raised:
        apply(endpoint, spec(min_capacity=0, target_tracking=[
            {"customized_metric": {"metric": "ApproximateBacklogSizePerInstance"}, "target_value": 5}]))
    text = str(raised.value)
    assert "min_capacity must be >= 1: only asynchronous endpoints scale to zero" in text
    assert "is published by asynchronous endpoints only" in text
    assert writes(aws_calls) == []


def test_an_instance_type_change_goes_through_deregister_update_register(emulator, deployer, endpoint):
    apply(endpoint, spec(target_tracking=[INVOCATIONS]))
    same_type = deployer.config(deployer.model(factor=3), count=1)
    kept = ReleaseScalingForUpdateOperator(task_id="release", endpoint_name=endpoint,
                                           endpoint_config_name=same_type).execute({})
    assert (kept["deregistered"], len(described(emulator, endpoint)["targets"])) == ([], 1)

    other_type = deployer.name("config")
    deployer.sm.create_endpoint_config(EndpointConfigName=other_type, ProductionVariants=[{
        "VariantName": VARIANT, "ModelName": deployer.model(), "InstanceType": "ml.c5.large",
        "InitialInstanceCount": 1}])
    deploy = DeployEndpointOperator(task_id="deploy", endpoint_name=endpoint, endpoint_config_name=other_type,
                                    update_endpoint_kwargs={"RetainAllVariantProperties": True}, waiter_delay=1)
    with pytest.raises(ClientError) as refused:  # what AWS answers while the target is registered
        deploy.execute({})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "changes the instance type of variant AllTraffic from ml.m5.large to ml.c5.large" in str(refused.value)

    released = ReleaseScalingForUpdateOperator(task_id="release", endpoint_name=endpoint,
                                               endpoint_config_name=other_type).execute({})
    assert released["deregistered"] == [key(endpoint)["ResourceId"]]
    assert deploy.execute({})["endpoint_config_name"] == other_type
    again = apply(endpoint, spec(target_tracking=[INVOCATIONS]))
    assert again["changes"][0].startswith("registered") and len(described(emulator, endpoint)["targets"]) == 1


def test_a_guarded_promotion_keeps_the_scaled_instance_count(emulator, deployer, endpoint):
    deployer.sm.update_endpoint_weights_and_capacities(  # what the autoscaler does on a scale-out
        EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": VARIANT, "DesiredInstanceCount": 2}])
    deployer.wait(endpoint)
    new_config = deployer.config(deployer.model(factor=3), count=1)

    PromoteEndpointOperator(task_id="promote", endpoint_name=endpoint, endpoint_config_name=new_config,
                            promotion={"strategy": "all_at_once", "wait_interval_seconds": 0,
                                       "alarms": [{"metric": "Invocation5XXErrors", "threshold": 0.05}]},
                            alarm_names=[], waiter_delay=1, waiter_max_attempts=3600).execute({})

    variant = deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 2)
    assert deployer.invoke(endpoint, {"values": [1]})["result"] == [3.0]


def test_a_serverless_variant_scales_its_provisioned_concurrency(emulator, deployer):
    config = deployer.name("config")
    deployer.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": VARIANT, "ModelName": deployer.model(),
        "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 5, "ProvisionedConcurrency": 1}}])
    serverless = deployer.endpoint(config)
    with pytest.raises(PipelineConfigError, match=re.escape(
            "target_tracking[0].metric does not fit a serverless variant (use "
            "SageMakerVariantProvisionedConcurrencyUtilization), got 'SageMakerVariantInvocationsPerInstance' "
            f"(endpoint {serverless})")):
        apply(serverless, spec(max_capacity=3, target_tracking=[INVOCATIONS]))

    apply(serverless, spec(max_capacity=3, target_tracking=[
        {"metric": "SageMakerVariantProvisionedConcurrencyUtilization", "target_value": 0.5}]))
    [target] = emulator.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{serverless}/variant/{VARIANT}"])["ScalableTargets"]
    assert (target["ScalableDimension"], target["MinCapacity"], target["MaxCapacity"]) == (
        "sagemaker:variant:DesiredProvisionedConcurrency", 1, 3)
