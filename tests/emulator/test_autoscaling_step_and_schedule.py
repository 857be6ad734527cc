"""Step scaling from the client's own alarm, and scheduled actions, through boto3 against the emulator
(time scale 20: a 60 s period is 3 s). Each change goes through the endpoint (Updating, then the new
count serving) and is listed as a scaling activity in AWS's words, failures included."""

from __future__ import annotations

import datetime as dt
import json
import time

import requests

from tests.emulator.autoscaling_support import DIMENSION, EndpointWatch, SteadyLoad, activities, resource
from tests.emulator.conftest import wait_until

THRESHOLD = 5.0
PERIOD_SECONDS = 60 / 20  # one minute at the tests' time scale
STEPS = [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
         {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2}]


def expected_step(breach: float) -> int:
    above = breach - THRESHOLD
    return 1 if 0 <= above < 10 else 2


def register(aas, endpoint: str, low: int, high: int) -> None:
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                 ScalableDimension=DIMENSION, MinCapacity=low, MaxCapacity=high)


def test_step_scaling_adds_the_step_the_breach_falls_in_and_keeps_acting_while_in_alarm(emulator, deployer):
    aas, cloudwatch = emulator.client("application-autoscaling"), emulator.client("cloudwatch")
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    register(aas, endpoint, 1, 3)
    arn = aas.put_scaling_policy(
        PolicyName="steps", ServiceNamespace="sagemaker", ResourceId=resource(endpoint), ScalableDimension=DIMENSION,
        PolicyType="StepScaling", StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "StepAdjustments": STEPS, "Cooldown": 60,
            "MetricAggregationType": "Maximum"})["PolicyARN"]
    alarm = deployer.name("busy")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="InvocationsPerInstance", Statistic="Sum",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Period=60, EvaluationPeriods=1, Threshold=THRESHOLD, ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[arn])

    with EndpointWatch(deployer.sm, endpoint) as watch, SteadyLoad(deployer.runtime, endpoint, 6) as load:
        wait_until(lambda: [a["Description"] for a in activities(aas, endpoint)
                            if a["StatusCode"] == "Successful"][-1:] == ["Setting desired instance count to 3."],
                   60, "the steps to reach the maximum")
        wait_until(lambda: watch.seen[-1] == ("InService", 3, 3), 10, "DescribeEndpoint to show 3 serving")
    history = cloudwatch.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    breach = next(item for item in history if '"stateValue":"ALARM"' in item["HistoryData"].replace(" ", ""))
    points = json.loads(breach["HistoryData"])["newState"]["stateReasonData"]["recentDatapoints"]
    first = activities(aas, endpoint)[0]
    assert first["Description"] == f"Setting desired instance count to {min(3, 1 + expected_step(max(points)))}."
    assert first["Cause"] == f"monitor alarm {alarm} in state ALARM triggered policy steps"
    assert load.failures == []
    assert any(state[0] == "Updating" for state in watch.seen)


def test_scheduled_actions_move_capacity_into_their_range_and_failures_are_listed(emulator, deployer):
    aas = emulator.client("application-autoscaling")
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    register(aas, endpoint, 1, 4)
    requests.post(f"{emulator.url}/_emulator/faults", timeout=10, json={
        "stage": "update_variants", "endpoint": endpoint, "message": "the capacity could not be provisioned"})
    in_a_minute = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=60)  # 3 s on the emulator's clock
    aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="once", ResourceId=resource(endpoint),
                             ScalableDimension=DIMENSION, Schedule=f"at({in_a_minute:%Y-%m-%dT%H:%M:%S})",
                             ScalableTargetAction={"MinCapacity": 2})
    failed = wait_until(lambda: [a for a in activities(aas, endpoint) if a["StatusCode"] == "Failed"], 30,
                        "the scheduled scale-out to fail")[0]
    assert failed["Cause"] == "scheduled action name once was triggered"
    assert failed["StatusMessage"].startswith("Failed to set desired instance count to 2. Reason: ")
    assert "the capacity could not be provisioned" in failed["StatusMessage"]
    assert deployer.wait(endpoint)["ProductionVariants"][0]["CurrentInstanceCount"] == 1

    with EndpointWatch(deployer.sm, endpoint) as watch:
        aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="weekdays",
                                 ResourceId=resource(endpoint), ScalableDimension=DIMENSION,
                                 Schedule="cron(* * ? * * *)", Timezone="Europe/Berlin",
                                 ScalableTargetAction={"MinCapacity": 3, "MaxCapacity": 4})
        done = wait_until(lambda: [a for a in activities(aas, endpoint) if a["StatusCode"] == "Successful"], 30,
                          "the cron action to scale out")[0]
        wait_until(lambda: watch.seen[-1] == ("InService", 3, 3), 10, "DescribeEndpoint to show 3 serving")
    assert done["Description"] == "Setting desired instance count to 3."
    assert done["Cause"] == "scheduled action name weekdays was triggered"
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                           ResourceIds=[resource(endpoint)])["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (3, 4)
    assert ("Updating", 3, 1) in watch.seen


def test_suspended_scheduled_scaling_skips_runs_until_resumed(emulator, deployer):
    aas = emulator.client("application-autoscaling")
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                 ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=3,
                                 SuspendedState={"ScheduledScalingSuspended": True})
    aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="every-minute",
                             ResourceId=resource(endpoint), ScalableDimension=DIMENSION, Schedule="rate(1 minute)",
                             ScalableTargetAction={"MinCapacity": 2})
    time.sleep(2 * PERIOD_SECONDS + 1)  # two runs come and go while suspended
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                           ResourceIds=[resource(endpoint)])["ScalableTargets"][0]
    assert target["MinCapacity"] == 1 and activities(aas, endpoint) == []
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                 ScalableDimension=DIMENSION, SuspendedState={"ScheduledScalingSuspended": False})
    done = wait_until(lambda: [a for a in activities(aas, endpoint) if a["StatusCode"] == "Successful"], 30,
                      "the resumed schedule to scale out")[0]
    assert done["Description"] == "Setting desired instance count to 2."
    assert done["Cause"] == "scheduled action name every-minute was triggered"



def test_an_at_action_deleted_and_put_again_under_its_name_runs_again(emulator, deployer):
    aas = emulator.client("application-autoscaling")
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    register(aas, endpoint, 1, 4)
    in_a_minute = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=60)  # 3 s on the emulator's clock
    action = dict(ServiceNamespace="sagemaker", ScheduledActionName="once", ResourceId=resource(endpoint),
                  ScalableDimension=DIMENSION, Schedule=f"at({in_a_minute:%Y-%m-%dT%H:%M:%S})")

    def scaled_to(count: int):
        return [a for a in activities(aas, endpoint)
                if a["StatusCode"] == "Successful" and a["Description"] == f"Setting desired instance count to {count}."]

    aas.put_scheduled_action(**action, ScalableTargetAction={"MinCapacity": 2})
    wait_until(lambda: scaled_to(2), 30, "the first run")
    aas.delete_scheduled_action(**{k: v for k, v in action.items() if k != "Schedule"})
    # The same name and schedule again: a new action on a new clock, whose moment is still ahead on it.
    aas.put_scheduled_action(**action, ScalableTargetAction={"MinCapacity": 3})
    wait_until(lambda: scaled_to(3), 30, "the new action's run")
