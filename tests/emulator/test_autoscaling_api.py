"""Application Auto Scaling's API for SageMaker variants through boto3: AWS's errors for what it
refuses, the target tracking alarms it creates in CloudWatch, and what endpoints do to their targets."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import wait_until

DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def resource(endpoint: str, variant: str = "AllTraffic") -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def aas(emulator):
    return emulator.client("application-autoscaling")


@pytest.fixture
def served(deployer):
    return deployer.endpoint(deployer.config(deployer.model()))


def register(aas, endpoint: str, low: int = 1, high: int = 3, **extra) -> dict:
    return aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                        ScalableDimension=DIMENSION, MinCapacity=low, MaxCapacity=high, **extra)


def tracking(target: float = 10.0, **extra) -> dict:
    return {"TargetValue": target, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}, **extra}


def put_tracking(aas, endpoint: str, name: str = "track", **config) -> dict:
    return aas.put_scaling_policy(PolicyName=name, ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                  ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
                                  TargetTrackingScalingPolicyConfiguration=tracking(**config))


def test_registration_waits_for_in_service_and_checks_the_resource(aas, deployer):
    config = deployer.config(deployer.model())
    creating = deployer.endpoint(config, wait=False)
    assert error_of(register, aas=aas, endpoint=creating) == (
        "ValidationException", "The status should be in 'InService' to register it as a scalable target")
    deployer.wait(creating)
    assert error_of(register, aas=aas, endpoint=creating, low=3, high=2) == (
        "ValidationException", "Minimum capacity (3) cannot be greater than maximum capacity (2).")
    code, message = error_of(register, aas=aas, endpoint=creating, low=0)
    assert code == "ValidationException" and "only asynchronous endpoints scale to zero" in message
    code, message = error_of(aas.register_scalable_target, ServiceNamespace="sagemaker",
                             ResourceId=f"endpoint/{creating}", ScalableDimension=DIMENSION, MinCapacity=1,
                             MaxCapacity=2)
    assert code == "ValidationException" and "endpoint/<endpoint name>/variant/<variant name>" in message
    code, message = error_of(aas.register_scalable_target, ServiceNamespace="sagemaker",
                             ResourceId=resource(creating), MinCapacity=1, MaxCapacity=2,
                             ScalableDimension="sagemaker:variant:DesiredProvisionedConcurrency")
    assert code == "ValidationException" and "fits only a serverless variant with ProvisionedConcurrency" in message
    code, message = error_of(register, aas=aas, endpoint="no-such-endpoint")
    assert code == "ValidationException" and "Could not find endpoint" in message
    code, message = error_of(aas.register_scalable_target, ServiceNamespace="sagemaker",
                             ResourceId=resource(creating, "Nope"), ScalableDimension=DIMENSION,
                             MinCapacity=1, MaxCapacity=2)
    assert code == "ValidationException" and 'The variant name "Nope" is not present' in message
    code, message = error_of(aas.register_scalable_target, ServiceNamespace="sagemaker",
                             ResourceId=resource(creating), ScalableDimension=DIMENSION)
    assert (code, message) == ("ValidationException",
                               "MinCapacity and MaxCapacity are required when registering a new scalable target.")
    arn = register(aas, creating)["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/")


def test_unknown_targets_policies_and_actions_are_object_not_found(aas, served):
    where = f"service namespace: sagemaker, resource ID: {resource(served)}, scalable dimension: {DIMENSION}"
    assert error_of(put_tracking, aas=aas, endpoint=served) == (
        "ObjectNotFoundException", f"No scalable target registered for {where}")
    assert error_of(aas.deregister_scalable_target, ServiceNamespace="sagemaker", ResourceId=resource(served),
                    ScalableDimension=DIMENSION) == (
        "ObjectNotFoundException", f"No scalable target registered for {where}")
    register(aas, served)
    assert error_of(aas.delete_scaling_policy, PolicyName="ghost", ServiceNamespace="sagemaker",
                    ResourceId=resource(served), ScalableDimension=DIMENSION) == (
        "ObjectNotFoundException", f"No scaling policy found for {where}, policy name: ghost")
    assert error_of(aas.delete_scheduled_action, ScheduledActionName="ghost", ServiceNamespace="sagemaker",
                    ResourceId=resource(served), ScalableDimension=DIMENSION) == (
        "ObjectNotFoundException", f"No scheduled action found for {where}, scheduled action name: ghost")


def policy_error(aas, endpoint: str, kind: str, config: dict) -> tuple[str, str]:
    member = "TargetTrackingScalingPolicyConfiguration" if kind == "TargetTrackingScaling" else \
        "StepScalingPolicyConfiguration"
    return error_of(aas.put_scaling_policy, PolicyName="refused", ServiceNamespace="sagemaker",
                    ResourceId=resource(endpoint), ScalableDimension=DIMENSION, PolicyType=kind, **{member: config})


def test_policies_the_emulator_cannot_run_are_refused_clearly(aas, served):
    register(aas, served)
    hires = {"PredefinedMetricType": "SageMakerVariantConcurrentRequestsPerModelHighResolution"}
    code, message = policy_error(aas, served, "TargetTrackingScaling",
                                 {"TargetValue": 5, "PredefinedMetricSpecification": hires})
    assert code == "ValidationException" and "publishes no per-model concurrency" in message
    math = {"Metrics": [{"Id": "m1", "Expression": "SUM(METRICS())", "ReturnData": True}]}
    code, message = policy_error(aas, served, "TargetTrackingScaling",
                                 {"TargetValue": 5, "CustomizedMetricSpecification": math})
    assert code == "ValidationException" and "metric math" in message
    overlapping = [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                   {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}]
    code, message = policy_error(aas, served, "StepScaling",
                                 {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": overlapping})
    assert code == "ValidationException" and "must not overlap or leave gaps" in message
    code, message = error_of(aas.put_scheduled_action, ScheduledActionName="bad", ServiceNamespace="sagemaker",
                             ResourceId=resource(served), ScalableDimension=DIMENSION,
                             Schedule="rate(1 minutes)", ScalableTargetAction={"MinCapacity": 2})
    assert code == "ValidationException" and "rate(1 minute)" in message
    code, message = error_of(aas.put_scheduled_action, ScheduledActionName="bad", ServiceNamespace="sagemaker",
                             ResourceId=resource(served), ScalableDimension=DIMENSION,
                             Schedule="cron(0 9 * * MON *)", ScalableTargetAction={"MinCapacity": 2})
    assert code == "ValidationException" and "exactly one of Day-of-month and Day-of-week must be '?'" in message


def test_target_tracking_creates_its_two_alarms_and_deletes_them_with_the_policy(aas, emulator, served):
    cloudwatch = emulator.client("cloudwatch")
    register(aas, served)
    created = put_tracking(aas, served)
    arn = created["PolicyARN"]
    names = sorted(alarm["AlarmName"] for alarm in created["Alarms"])
    assert [name.split("-Alarm")[0] for name in names] == [f"TargetTracking-{resource(served)}"] * 2
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    high = next(a for n, a in alarms.items() if "-AlarmHigh-" in n)
    low = next(a for n, a in alarms.items() if "-AlarmLow-" in n)
    assert (high["MetricName"], high["Namespace"], high["Statistic"], high["Period"]) == (
        "InvocationsPerInstance", "AWS/SageMaker", "Sum", 60)
    assert sorted((d["Name"], d["Value"]) for d in high["Dimensions"]) == [
        ("EndpointName", served), ("VariantName", "AllTraffic")]
    assert (high["ComparisonOperator"], high["Threshold"], high["EvaluationPeriods"]) == (
        "GreaterThanThreshold", 10.0, 3)
    assert (low["ComparisonOperator"], low["Threshold"], low["EvaluationPeriods"]) == ("LessThanThreshold", 9.0, 15)
    assert high["AlarmDescription"] == f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {arn}."
    assert high["AlarmActions"] == [arn] and high["StateValue"] == "INSUFFICIENT_DATA"
    described = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource(served))
    assert sorted(a["AlarmName"] for a in described["ScalingPolicies"][0]["Alarms"]) == names

    replaced = put_tracking(aas, served, target=20.0, DisableScaleIn=True)  # same name: updated in place
    assert len(replaced["Alarms"]) == 1 and "-AlarmHigh-" in replaced["Alarms"][0]["AlarmName"]
    assert cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"] == []
    aas.delete_scaling_policy(PolicyName="track", ServiceNamespace="sagemaker", ResourceId=resource(served),
                              ScalableDimension=DIMENSION)
    assert cloudwatch.describe_alarms(AlarmNamePrefix=f"TargetTracking-{resource(served)}")["MetricAlarms"] == []


def test_endpoint_updates_respect_scalable_targets_and_delete_deregisters(aas, emulator, deployer, served):
    cloudwatch = emulator.client("cloudwatch")
    register(aas, served)
    put_tracking(aas, served)
    model = deployer.sm.describe_endpoint_config(
        EndpointConfigName=deployer.sm.describe_endpoint(EndpointName=served)["EndpointConfigName"]
    )["ProductionVariants"][0]["ModelName"]
    bigger = deployer.name("config")
    deployer.sm.create_endpoint_config(EndpointConfigName=bigger, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.c5.large", "InitialInstanceCount": 1}])
    code, message = error_of(deployer.sm.update_endpoint, EndpointName=served, EndpointConfigName=bigger)
    assert code == "ValidationException"
    assert "changes the instance type of variant AllTraffic from ml.m5.large to ml.c5.large" in message
    assert "Deregister the scalable target" in message
    assert deployer.sm.describe_endpoint(EndpointName=served)["EndpointStatus"] == "InService"

    deployer.sm.delete_endpoint(EndpointName=served)
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                         ResourceIds=[resource(served)])["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker",
                                         ResourceId=resource(served))["ScalingPolicies"] == []
    assert cloudwatch.describe_alarms(AlarmNamePrefix=f"TargetTracking-{resource(served)}")["MetricAlarms"] == []
    wait_until(lambda: served not in [e["EndpointName"] for e in deployer.sm.list_endpoints()["Endpoints"]], 30,
               "the endpoint to go")
