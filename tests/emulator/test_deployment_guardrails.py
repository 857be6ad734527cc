"""UpdateEndpoint with a DeploymentConfig: canary and linear traffic shifting between real blue and green
fleets, baking, auto-rollback on a CloudWatch alarm or on the execution timeout, and AWS's validation.

The blue model multiplies by 2, the green one by 10, so every answer says which fleet served it. Alarms are
driven with SetAlarmState, so these tests do not depend on the alarm evaluator. Waits are AWS seconds;
the test emulator runs at time scale 20 (60 s = 3 s).
"""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import ECHO_MODEL, Traffic, wait_until, workers_of

BLUE, GREEN = 2, 10


def canary(count: int = 1, wait: int = 60, termination: int = 20, **policy) -> dict:
    return {"TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": wait,
                                            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": count}},
            "TerminationWaitInSeconds": termination, **policy}


def linear(percent: int, wait: int = 40, termination: int = 20) -> dict:
    return {"TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": wait,
                                            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": percent}},
            "TerminationWaitInSeconds": termination}


def guarded(policy: dict, *alarms: str) -> dict:
    config = {"BlueGreenUpdatePolicy": policy}
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarms]}
    return config


def instances_of(endpoint: str) -> set[int]:
    groups = set()
    for pid in workers_of(endpoint):
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:  # stopped since it was listed
            pass
    return groups


def answers(deployer, endpoint: str, n: int = 40) -> set[float]:
    return {deployer.invoke(endpoint, {"values": [1]})["result"][0] for _ in range(n)}


def pending_status(deployer, endpoint: str) -> tuple[str, str] | None:
    """(Status, StatusMessage) of the green variant, or None when no deployment is pending."""
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    summary = described.get("PendingDeploymentSummary")
    if summary is None:
        return None
    status = summary["ProductionVariants"][0].get("VariantStatus") or [{}]
    return status[0].get("Status"), status[0].get("StatusMessage")


def baking(deployer, endpoint: str, text: str):
    return lambda: (lambda s: s if s and s[0] == "Baking" and text in s[1] else None)(
        pending_status(deployer, endpoint))


def blue_and_green(deployer, count: int = 2) -> tuple[str, str, str]:
    blue = deployer.config(deployer.model(factor=BLUE), count=count)
    endpoint = deployer.endpoint(blue)
    return endpoint, blue, deployer.config(deployer.model(factor=GREEN), count=count)


class GreenAlarm:
    """An alarm the test trips: on a metric nobody publishes (with green's dimensions), so that its state is
    only ever what the test sets; the alarm evaluator's tests cover real evaluations of endpoint metrics."""

    def __init__(self, deployer, emulator, endpoint: str, config: str):
        self.cloudwatch = emulator.client("cloudwatch")
        self.name = deployer.name("green-health")
        self.dimensions = [{"Name": "EndpointName", "Value": endpoint},
                           {"Name": "VariantName", "Value": "AllTraffic"},
                           {"Name": "EndpointConfigName", "Value": config}]
        self._put("notBreaching")

    def _put(self, missing_data: str) -> None:
        self.cloudwatch.put_metric_alarm(
            AlarmName=self.name, Namespace="Tests/Guardrails", MetricName="GreenHealth", Statistic="Average",
            Dimensions=self.dimensions, Period=60, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData=missing_data)

    def trip(self) -> None:
        """ALARM now, and at the alarm evaluator's next evaluation too (missing data now breaches), so the
        test does not race the evaluator, which replaces a SetAlarmState at its next evaluation."""
        self._put("breaching")
        self.cloudwatch.set_alarm_state(AlarmName=self.name, StateValue="ALARM", StateReason="green fails")


def test_canary_promotes_a_good_version_while_blue_serves(deployer, emulator):
    endpoint, blue, green = blue_and_green(deployer)
    deployment = guarded(canary(count=1, wait=60, termination=20))
    with Traffic(deployer, endpoint) as traffic:
        deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green, DeploymentConfig=deployment)
        during = deployer.sm.describe_endpoint(EndpointName=endpoint)
        assert during["EndpointStatus"] == "Updating"
        assert during["EndpointConfigName"] == blue  # top-level fields describe blue
        assert during["PendingDeploymentSummary"]["EndpointConfigName"] == green
        assert during["PendingDeploymentSummary"]["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"

        wait_until(baking(deployer, endpoint, "(WaitIntervalInSeconds) with traffic enabled on canary capacity "
                                              "of 1 instance(s)"), 60, "the canary bake")
        # One green instance beside two blue ones: about a third of the requests reach green.
        assert answers(deployer, endpoint) == {BLUE, GREEN}
        assert wait_until(baking(deployer, endpoint, "Baking for 20 seconds (TerminationWaitInSeconds) with traffic "
                                                     "enabled on full capacity of 2 instance(s)."), 60, "final bake")
        assert answers(deployer, endpoint, 10) == {GREEN}
        described = deployer.wait(endpoint)
    assert traffic.errors == []
    assert described["EndpointConfigName"] == green
    assert "PendingDeploymentSummary" not in described and "FailureReason" not in described
    assert described["LastDeploymentConfig"] == deployment
    assert traffic.answers[0] == BLUE and traffic.answers[-1] == GREEN
    # The green fleet's invocations were also published under its EndpointConfigName.
    cloudwatch = emulator.client("cloudwatch")
    wait_until(lambda: cloudwatch.list_metrics(Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=[
        {"Name": "EndpointConfigName", "Value": green}])["Metrics"], 30, "metrics of the green config")


def test_linear_shifts_traffic_in_steps(deployer):
    endpoint, blue, green = blue_and_green(deployer)
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green,
                                DeploymentConfig=guarded(linear(50, wait=40, termination=20)))
    wait_until(baking(deployer, endpoint, "Baking for 40 seconds (WaitIntervalInSeconds) with traffic enabled on "
                                          "capacity of 1 instance(s)."), 60, "the first linear step")
    assert answers(deployer, endpoint) == {BLUE, GREEN}  # half the capacity: half the traffic
    wait_until(baking(deployer, endpoint, "Baking for 40 seconds (WaitIntervalInSeconds) with traffic enabled on "
                                          "full capacity of 2 instance(s)."), 60, "the second linear step")
    assert answers(deployer, endpoint, 10) == {GREEN}
    wait_until(baking(deployer, endpoint, "(TerminationWaitInSeconds)"), 60, "the final bake")
    assert deployer.wait(endpoint)["EndpointConfigName"] == green


def test_alarm_during_a_bake_rolls_back_to_blue(deployer, emulator):
    endpoint, blue, green = blue_and_green(deployer)
    alarm = GreenAlarm(deployer, emulator, endpoint, green)
    name = alarm.name
    with Traffic(deployer, endpoint) as traffic:
        deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green,
                                    DeploymentConfig=guarded(canary(count=1, wait=600, termination=600), name))
        wait_until(baking(deployer, endpoint, "canary capacity"), 60, "the canary bake")
        wait_until(lambda: GREEN in traffic.answers, 30, "green answering part of the traffic")
        alarm.trip()
        described = deployer.wait_settled(endpoint)
        rolled_back_at = len(traffic.answers)
        wait_until(lambda: len(traffic.answers) > rolled_back_at + 10, 30, "traffic after the rollback")
    assert traffic.errors == []  # blue served throughout
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == blue
    assert name in described["FailureReason"] and "rolled back" in described["FailureReason"]
    assert "PendingDeploymentSummary" not in described
    assert set(traffic.answers[rolled_back_at:]) == {BLUE}
    # Instances are process groups: the two blue ones are left, the two green ones have stopped.
    wait_until(lambda: len(instances_of(endpoint)) == 2, 30, "the green fleet to stop")


def test_execution_timeout_rolls_back(deployer):
    endpoint, blue, green = blue_and_green(deployer, count=2)
    # The waits (599 s) fit in 600 s, but starting green takes time too: the deadline passes mid-bake.
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green, DeploymentConfig=guarded(
        canary(count=1, wait=599, termination=0, MaximumExecutionTimeoutInSeconds=600)))
    described = deployer.wait_settled(endpoint)
    assert described["EndpointConfigName"] == blue
    assert "MaximumExecutionTimeoutInSeconds (600 seconds)" in described["FailureReason"]
    assert answers(deployer, endpoint, 10) == {BLUE}


def test_create_endpoint_stores_the_config_and_retain_reuses_it(deployer):
    deployment = guarded({"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                          "TerminationWaitInSeconds": 20})
    blue = deployer.config(deployer.model(factor=BLUE))
    endpoint = deployer.name("endpoint")
    deployer.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=blue, DeploymentConfig=deployment)
    deployer.endpoints.append(endpoint)
    assert deployer.wait(endpoint)["LastDeploymentConfig"] == deployment
    green = deployer.config(deployer.model(factor=GREEN))
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green, RetainDeploymentConfig=True)
    wait_until(baking(deployer, endpoint, "Baking for 20 seconds (TerminationWaitInSeconds) with traffic enabled "
                                          "on full capacity of 1 instance(s)."), 60, "the all-at-once bake")
    described = deployer.wait(endpoint)
    assert described["EndpointConfigName"] == green
    assert described["LastDeploymentConfig"] == deployment


def refused(deployer, **params) -> str:
    with pytest.raises(ClientError) as caught:
        deployer.sm.update_endpoint(**params)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return caught.value.response["Error"]["Message"]


def test_every_invalid_deployment_config_is_refused_with_the_field_named(deployer, emulator):
    endpoint, blue, green = blue_and_green(deployer)
    routing = "TrafficRoutingConfiguration"
    cases = [
        (guarded({routing: {"Type": "CANARY", "WaitIntervalInSeconds": 60}}),
         f"{routing}.CanarySize is required when Type is CANARY."),
        (guarded(canary(count=2)), f"{routing}.CanarySize (2 instance(s)) must be at most 50% of the instance "
                                   "count of variant AllTraffic (2 instance(s)); it is 100%."),
        (guarded({**canary(), routing: {"Type": "CANARY", "WaitIntervalInSeconds": 60,
                                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 60}}}),
         f"{routing}.CanarySize (60%) must be at most 50%"),
        (guarded(linear(5)), f"{routing}.LinearStepSize (5%) must be between 10% and 50% of the instance count"),
        (guarded(linear(60)), f"{routing}.LinearStepSize (60%) must be between 10% and 50%"),
        (guarded({routing: {"Type": "LINEAR", "WaitIntervalInSeconds": 60}}),
         f"{routing}.LinearStepSize is required when Type is LINEAR."),
        (guarded({routing: {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0,
                            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}}),
         f"{routing}.CanarySize is only used with Type CANARY (Type is ALL_AT_ONCE)."),
        (guarded(canary(wait=400, termination=300, MaximumExecutionTimeoutInSeconds=700)),
         "BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds (700) must be larger than the total waiting time "
         "of the deployment (700 seconds over 2 baking period(s))"),
        (guarded(canary(wait=3601)),
         "Value '3601' at 'deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.waitIntervalInSeconds' "
         "failed to satisfy constraint: Member must have value less than or equal to 3600"),
        (guarded(canary(MaximumExecutionTimeoutInSeconds=28801)),
         "Value '28801' at 'deploymentConfig.blueGreenUpdatePolicy.maximumExecutionTimeoutInSeconds' failed to "
         "satisfy constraint: Member must have value less than or equal to 28800"),
        (guarded(canary(), "no-such-alarm"), "DeploymentConfig.AutoRollbackConfiguration.Alarms names CloudWatch "
                                             "alarms that do not exist: no-such-alarm."),
    ]
    for deployment, message in cases:
        assert message in refused(deployer, EndpointName=endpoint, EndpointConfigName=green,
                                  DeploymentConfig=deployment), deployment

    renamed = deployer.config(deployer.model(factor=GREEN), count=2, variant="Other")
    assert "need the same production variant names in the old and the new endpoint configuration: the endpoint " \
           "has AllTraffic, the new configuration has Other" in refused(
               deployer, EndpointName=endpoint, EndpointConfigName=renamed, DeploymentConfig=guarded(canary()))
    assert "has no deployment configuration to retain" in refused(
        deployer, EndpointName=endpoint, EndpointConfigName=green, RetainDeploymentConfig=True)
    assert "not both" in refused(deployer, EndpointName=endpoint, EndpointConfigName=green,
                                 DeploymentConfig=guarded(canary()), RetainDeploymentConfig=True)
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == blue  # untouched
    assert "LastDeploymentConfig" not in described


def test_serverless_endpoints_refuse_guardrails(deployer):
    model = deployer.model(factor=BLUE)
    configs = []
    for _ in range(2):
        configs.append(deployer.name("config"))
        deployer.sm.create_endpoint_config(EndpointConfigName=configs[-1], ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model,
            "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 2}}])
    endpoint = deployer.endpoint(configs[0])
    message = refused(deployer, EndpointName=endpoint, EndpointConfigName=configs[1],
                      DeploymentConfig=guarded({"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE",
                                                                               "WaitIntervalInSeconds": 0}}))
    assert message.startswith("DeploymentConfig is not supported for serverless endpoints")


def test_green_that_cannot_start_leaves_blue_in_service(deployer):
    endpoint, blue, _ = blue_and_green(deployer, count=1)
    broken = deployer.model(model_data_url=deployer.upload(
        {"code/inference.py": "def model_fn(d):\n    raise ValueError('bad weights')\n"}))
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=deployer.config(broken),
                                DeploymentConfig=guarded({"TrafficRoutingConfiguration": {
                                    "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}))
    described = deployer.wait_settled(endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == blue
    assert "bad weights" in described["FailureReason"]
    assert "PendingDeploymentSummary" not in described
    assert answers(deployer, endpoint, 5) == {BLUE}


def test_delete_during_a_deployment_stops_both_fleets(deployer):
    endpoint, _, green = blue_and_green(deployer, count=2)
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green,
                                DeploymentConfig=guarded(canary(count=1, wait=600)))
    wait_until(baking(deployer, endpoint, "canary capacity"), 60, "the canary bake")
    deployer.sm.delete_endpoint(EndpointName=endpoint)
    wait_until(lambda: not deployer.sm.list_endpoints(NameContains=endpoint)["Endpoints"], 30, "the deletion")
    wait_until(lambda: not workers_of(endpoint), 30, "every worker to stop")


def rolling(batch: int, wait: int = 40, rollback: int | None = None) -> dict:
    policy = {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": batch}, "WaitIntervalInSeconds": wait}
    if rollback is not None:
        policy["RollbackMaximumBatchSize"] = {"Type": "INSTANCE_COUNT", "Value": rollback}
    return policy


def rolling_update(policy: dict, *alarms: str) -> dict:
    config = {"RollingUpdatePolicy": policy}
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarms]}
    return config


def test_rolling_update_replaces_the_fleet_batch_by_batch(deployer):
    endpoint, blue, green = blue_and_green(deployer, count=2)
    with Traffic(deployer, endpoint) as traffic:
        deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green,
                                    DeploymentConfig=rolling_update(rolling(batch=1, wait=40)))
        wait_until(baking(deployer, endpoint, "(WaitIntervalInSeconds) with traffic enabled on 1 instance(s)."), 60,
                   "the first batch")
        assert answers(deployer, endpoint) == {BLUE, GREEN}  # one new instance beside two old ones
        wait_until(baking(deployer, endpoint, "traffic enabled on 2 instance(s)."), 60, "the second batch")
        described = deployer.wait(endpoint)
    assert traffic.errors == []
    assert described["EndpointConfigName"] == green
    assert answers(deployer, endpoint, 10) == {GREEN}
    wait_until(lambda: len(instances_of(endpoint)) == 2, 30, "the old fleet to stop")


def test_rolling_update_rolls_back_on_an_alarm(deployer, emulator):
    endpoint, blue, green = blue_and_green(deployer, count=2)
    alarm = GreenAlarm(deployer, emulator, endpoint, green)
    name = alarm.name
    with Traffic(deployer, endpoint) as traffic:
        deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green,
                                    DeploymentConfig=rolling_update(rolling(batch=1, wait=40, rollback=1), name))
        wait_until(baking(deployer, endpoint, "traffic enabled on 2 instance(s)."), 60, "the second batch")
        alarm.trip()
        described = deployer.wait_settled(endpoint)
        rolled_back_at = len(traffic.answers)
        wait_until(lambda: len(traffic.answers) > rolled_back_at + 10, 30, "traffic after the rollback")
    assert traffic.errors == []
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == blue
    assert name in described["FailureReason"]
    assert set(traffic.answers[rolled_back_at:]) == {BLUE}
    wait_until(lambda: len(instances_of(endpoint)) == 2, 30, "the new fleet to stop")


def test_a_failed_rolling_rollback_is_update_rollback_failed(deployer, emulator):
    import requests

    endpoint, blue, green = blue_and_green(deployer, count=2)
    alarm = GreenAlarm(deployer, emulator, endpoint, green)
    name = alarm.name
    response = requests.post(f"{emulator.url}/_emulator/faults", timeout=10,
                             json={"stage": "rollback", "endpoint": endpoint, "message": "no capacity"})
    assert response.status_code == 201, response.text
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green,
                                DeploymentConfig=rolling_update(rolling(batch=1, wait=40, rollback=1), name))
    wait_until(baking(deployer, endpoint, "traffic enabled on 2 instance(s)."), 60, "the second batch")
    alarm.trip()
    described = deployer.wait_settled(endpoint)
    assert described["EndpointStatus"] == "UpdateRollbackFailed"
    assert name in described["FailureReason"] and "no capacity" in described["FailureReason"]
    assert answers(deployer, endpoint) == {BLUE, GREEN}  # a mix of the old and new configurations serves
    assert "delete it with DeleteEndpoint" in refused(deployer, EndpointName=endpoint, EndpointConfigName=blue)
    deployer.sm.delete_endpoint(EndpointName=endpoint)
    wait_until(lambda: not workers_of(endpoint), 30, "both fleets to stop")


def test_invalid_rolling_updates_are_refused(deployer):
    endpoint, blue, green = blue_and_green(deployer, count=2)
    cases = [
        (rolling_update(rolling(batch=2)), "RollingUpdatePolicy.MaximumBatchSize (2 instance(s)) must be between 5% "
                                           "and 50% of the instance count of variant AllTraffic (2 instance(s))"),
        (rolling_update({**rolling(batch=1, wait=300), "MaximumExecutionTimeoutInSeconds": 600}),
         "RollingUpdatePolicy.MaximumExecutionTimeoutInSeconds (600) must be larger than the total waiting time of "
         "the deployment (600 seconds over 2 baking period(s))"),
        ({"RollingUpdatePolicy": rolling(batch=1), "BlueGreenUpdatePolicy": canary()},
         "Only one update policy should be used in DeploymentConfig"),
    ]
    for deployment, message in cases:
        assert message in refused(deployer, EndpointName=endpoint, EndpointConfigName=green,
                                  DeploymentConfig=deployment), deployment
    # Two variants: rolling deployments are for single-variant endpoints only (AWS's exclusion).
    model, configs = deployer.model(factor=BLUE), []
    for _ in range(2):
        configs.append(deployer.name("config"))
        deployer.sm.create_endpoint_config(EndpointConfigName=configs[-1], ProductionVariants=[
            {"VariantName": name, "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}
            for name in ("A", "B")])
    two = deployer.endpoint(configs[0])
    assert refused(deployer, EndpointName=two, EndpointConfigName=configs[1],
                   DeploymentConfig=rolling_update(rolling(batch=1))).startswith(
        "RollingUpdatePolicy is not supported for endpoints with more than one production variant")


BROKEN_GREEN = ECHO_MODEL.replace('def predict_fn(data, model):\n',
                                  'def predict_fn(data, model):\n    raise RuntimeError("green is broken")\n')


def test_a_broken_canary_is_rolled_back_by_its_evaluated_5xx_alarm(deployer, emulator):
    """End to end: the green model raises, its Invocation5XXErrors (EndpointConfigName dimension) breach,
    the alarm evaluator puts the alarm in ALARM, and the deployment rolls back; blue never fails."""
    endpoint, blue, _ = blue_and_green(deployer)
    green = deployer.config(deployer.model(BROKEN_GREEN), count=2)
    cloudwatch, name = emulator.client("cloudwatch"), deployer.name("green-5xx")
    cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Average",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"},
                    {"Name": "EndpointConfigName", "Value": green}],
        Period=60, EvaluationPeriods=1, Threshold=0.5, ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching")
    with Traffic(deployer, endpoint) as traffic:
        deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green,
                                    DeploymentConfig=guarded(canary(count=1, wait=1200, termination=0), name))
        described = deployer.wait_settled(endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == blue
    assert name in described["FailureReason"]
    assert traffic.errors, "green received part of the traffic and failed it"
    assert all("green is broken" in str(error) for error in traffic.errors)  # no request failed on blue
    assert set(traffic.answers) == {BLUE}
    assert answers(deployer, endpoint, 10) == {BLUE}
