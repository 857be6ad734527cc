"""An asynchronous endpoint scales to zero when idle and back from zero when a request arrives, as
AWS's async-inference-autoscale guide sets it up: target tracking on ApproximateBacklogSizePerInstance
(a customized metric) and a step policy on the client's HasBacklogWithoutCapacity alarm. The request
that arrives at zero instances waits in the backlog and is answered once an instance serves."""

from __future__ import annotations

import json

from tests.emulator.autoscaling_support import DIMENSION, activities, resource
from tests.emulator.conftest import ECHO_MODEL, wait_until
from tests.emulator.test_async_inference import async_config, invoke_async, read_s3


def test_async_endpoint_scales_to_zero_when_idle_and_from_zero_on_a_request(emulator, deployer):
    aas, cloudwatch = emulator.client("application-autoscaling"), emulator.client("cloudwatch")
    config, _ = async_config(deployer, deployer.model(ECHO_MODEL, factor=2))
    endpoint = deployer.endpoint(config)
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                 ScalableDimension=DIMENSION, MinCapacity=0, MaxCapacity=2)
    aas.put_scaling_policy(
        PolicyName="backlog", ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
        ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 5.0, "ScaleInCooldown": 60, "ScaleOutCooldown": 60,
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}], "Statistic": "Average"}})
    from_zero = aas.put_scaling_policy(
        PolicyName="from-zero", ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
        ScalableDimension=DIMENSION, PolicyType="StepScaling", StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "Cooldown": 60, "MetricAggregationType": "Average",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})["PolicyARN"]
    waiting = deployer.name("backlog-without-capacity")
    cloudwatch.put_metric_alarm(
        AlarmName=waiting, Namespace="AWS/SageMaker", MetricName="HasBacklogWithoutCapacity", Statistic="Average",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}], Period=60, EvaluationPeriods=1,
        Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
        AlarmActions=[from_zero])

    def instances() -> tuple[int, int]:
        variant = deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
        return variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]

    wait_until(lambda: instances() == (0, 0), 60, "the idle endpoint to scale to zero")
    response = invoke_async(deployer, endpoint, {"values": [21]})
    assert json.loads(read_s3(deployer, response["OutputLocation"], timeout=60))["result"] == [42.0]
    woke = [a for a in activities(aas, endpoint) if a["Description"] == "Setting desired instance count to 1."]
    assert woke and woke[0]["Cause"] == f"monitor alarm {waiting} in state ALARM triggered policy from-zero"
    assert woke[0]["StatusCode"] == "Successful"

    wait_until(lambda: instances() == (0, 0) and len(activities(aas, endpoint)) >= 3, 60,
               "the endpoint to scale back to zero once idle")
    descriptions = [a["Description"] for a in activities(aas, endpoint)]
    assert descriptions == ["Setting desired instance count to 0.", "Setting desired instance count to 1.",
                            "Setting desired instance count to 0."]
    assert all(a["StatusCode"] == "Successful" for a in activities(aas, endpoint))
