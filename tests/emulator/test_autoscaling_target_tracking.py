"""The chapter's target tracking, time-scaled (20x: a one-minute period is 3 s, 300 s is 15 s):
SageMakerVariantInvocationsPerInstance at 10, 1-4 instances, ScaleInCooldown 300, ScaleOutCooldown 60.
Real load scales the endpoint out to what the formula gives for the datapoint the alarm saw, through
Updating with DesiredInstanceCount then CurrentInstanceCount; it scales in once the load stops; the
activities say so in AWS's words; not one request fails."""

from __future__ import annotations

import math

from tests.emulator.autoscaling_support import (DIMENSION, EndpointWatch, SteadyLoad, activities,
                                                alarm_datapoint_at_alarm, resource)
from tests.emulator.conftest import wait_until

TARGET, MAX_INSTANCES = 10.0, 4
REQUESTS_PER_SECOND = 8  # 24 per 3 s period on one instance: 2.4x the target


def test_chapter_target_tracking_scales_out_under_load_and_back_in_after(emulator, deployer):
    aas, cloudwatch = emulator.client("application-autoscaling"), emulator.client("cloudwatch")
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                 ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=MAX_INSTANCES)
    policy = aas.put_scaling_policy(
        PolicyName="chapter", ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
        ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": TARGET, "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    high = next(a["AlarmName"] for a in policy["Alarms"] if "-AlarmHigh-" in a["AlarmName"])

    with EndpointWatch(deployer.sm, endpoint) as watch:
        with SteadyLoad(deployer.runtime, endpoint, REQUESTS_PER_SECOND) as load:
            wait_until(lambda: any(a["StatusCode"] == "Successful" for a in activities(aas, endpoint)), 60,
                       "the scale-out to finish")
        seen_breach = alarm_datapoint_at_alarm(cloudwatch, high)
        expected = min(MAX_INSTANCES, math.ceil(1 * seen_breach / TARGET))
        scaled_out = activities(aas, endpoint)[0]
        wait_until(lambda: activities(aas, endpoint)[-1]["Description"] == "Setting desired instance count to 1."
                   and activities(aas, endpoint)[-1]["StatusCode"] == "Successful", 90, "the scale-in after the load")
        wait_until(lambda: watch.seen[-1] == ("InService", 1, 1), 10, "DescribeEndpoint to show 1 serving")

    print(f"\nchapter target tracking: datapoint {seen_breach:.1f} per instance per period at "
          f"{REQUESTS_PER_SECOND} req/s -> {expected} instances; endpoint went {watch.seen}")
    assert load.failures == [] and load.ok > 0
    assert seen_breach > TARGET
    assert scaled_out["Description"] == f"Setting desired instance count to {expected}."
    assert scaled_out["Cause"] == f"monitor alarm {high} in state ALARM triggered policy chapter"
    assert scaled_out["StatusMessage"] == (f"Successfully set desired instance count to {expected}. "
                                           "Change successfully fulfilled by sagemaker.")
    assert ("Updating", expected, 1) in watch.seen
    assert ("InService", expected, expected) in watch.seen
    assert watch.seen.index(("Updating", expected, 1)) < watch.seen.index(("InService", expected, expected))
    assert watch.seen[-1] == ("InService", 1, 1)
    scaled_in = activities(aas, endpoint)[-1]
    assert "-AlarmLow-" in scaled_in["Cause"] and scaled_in["Cause"].endswith("triggered policy chapter")
