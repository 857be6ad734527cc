"""Guarded promotion against the emulator: alarms ensured idempotently, a canary promoted, a bad model rolled
back by a real 5XX alarm (the task fails naming it, blue answers every request throughout),
UpdateRollbackFailed failing loudly, and a re-run after success changing nothing.

The blue model multiplies by 2, the good green one by 10; the bad green one raises on every request. The
emulator runs at time scale 20: a 60 s alarm period is 3 s, a 60 s bake 3 s.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone

import pytest
import requests

from airflow.sdk.exceptions import TaskDeferred
from sagemaker_ops.operators.promotion import (
    EnsurePromotionAlarmsOperator,
    PromoteEndpointOperator,
    PromotionFailed,
    ShiftTrafficOperator,
)
from tests.emulator.conftest import ECHO_MODEL, Deployer, Traffic, wait_until

BLUE, GREEN = 2, 10
BAD_MODEL = ECHO_MODEL.replace('    if data.get("raise"):', '    if True:').replace(
    'raise RuntimeError(data["raise"])', 'raise RuntimeError("bad version " + str(model["factor"]))')
FIVE_XX = {"metric": "Invocation5XXErrors", "threshold": 0.05}
GREEN_P99 = {"metric": "ModelLatency", "percentile": "p99", "fleet": "green", "threshold": 5_000_000}


@pytest.fixture
def deployer(emulator):
    helper = Deployer(emulator)
    yield helper
    helper.cleanup()


def promotion(**fields) -> dict:
    return {"strategy": "canary", "canary_size": {"instance_count": 1}, "wait_interval_seconds": 60,
            "termination_wait_seconds": 20, "alarms": [FIVE_XX, GREEN_P99], **fields}


def ensure_alarms(endpoint: str, config: str, alarms: list[dict]) -> dict:
    return EnsurePromotionAlarmsOperator(task_id="ensure_alarms", endpoint_name=endpoint, endpoint_config_name=config,
                                         alarms=alarms).execute({})


def promote(endpoint: str, config: str, spec: dict, **kwargs) -> dict:
    return PromoteEndpointOperator(task_id="promote", endpoint_name=endpoint, endpoint_config_name=config,
                                   promotion=spec, waiter_delay=1, waiter_max_attempts=3600, **kwargs).execute({})


def blue_and_green(deployer: Deployer, green_code: str = ECHO_MODEL, count: int = 2) -> tuple[str, str, str]:
    blue = deployer.config(deployer.model(factor=BLUE), count=count)
    endpoint = deployer.endpoint(blue)
    return endpoint, blue, deployer.config(deployer.model(green_code, factor=GREEN), count=count)


def test_alarms_are_created_once_then_left_alone_then_updated_in_place(deployer, emulator):
    endpoint, blue, green = blue_and_green(deployer, count=1)
    first = ensure_alarms(endpoint, green, [FIVE_XX, GREEN_P99])
    again = ensure_alarms(endpoint, green, [FIVE_XX, GREEN_P99])
    changed = ensure_alarms(endpoint, green, [{**FIVE_XX, "threshold": 0.2}, GREEN_P99])

    names = [f"{endpoint}-promotion-invocation5xxerrors", f"{endpoint}-promotion-modellatency-p99"]
    assert first["alarm_names"] == names and first["created"] == names
    assert again["created"] == again["updated"] == [] and again["unchanged"] == names
    assert changed["updated"] == names[:1] and changed["unchanged"] == names[1:]
    alarms = {a["AlarmName"]: a for a in emulator.client("cloudwatch").describe_alarms(AlarmNames=names)[
        "MetricAlarms"]}
    assert alarms[names[0]]["Threshold"] == 0.2
    latency = alarms[names[1]]
    assert latency["ExtendedStatistic"] == "p99"
    assert {"Name": "EndpointConfigName", "Value": green} in latency["Dimensions"]


def test_a_canary_promotes_a_good_version_and_a_rerun_changes_nothing(deployer):
    endpoint, blue, green = blue_and_green(deployer)
    ensure_alarms(endpoint, green, [FIVE_XX, GREEN_P99])
    with Traffic(deployer, endpoint) as traffic:
        result = promote(endpoint, green, promotion())
    again = promote(endpoint, green, promotion())

    assert traffic.errors == []
    assert set(traffic.answers) == {BLUE, GREEN}
    assert (result["endpoint_config_name"], result["previous_endpoint_config_name"]) == (green, blue)
    assert result["changed"] is True and result["strategy"] == "canary"
    assert result["alarm_names"] == [f"{endpoint}-promotion-invocation5xxerrors",
                                     f"{endpoint}-promotion-modellatency-p99"]
    assert again["changed"] is False and again["actions_taken"] == []
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert described["LastDeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"][0]["AlarmName"] == \
        result["alarm_names"][0]


def test_a_bad_version_is_rolled_back_and_the_task_fails_naming_the_alarm(deployer):
    endpoint, blue, green = blue_and_green(deployer, BAD_MODEL)
    ensure_alarms(endpoint, green, [FIVE_XX])
    spec = promotion(wait_interval_seconds=600, termination_wait_seconds=60, alarms=[FIVE_XX])
    window_start = datetime.now(timezone.utc).isoformat()
    with Traffic(deployer, endpoint) as traffic, pytest.raises(PromotionFailed) as failed:
        promote(endpoint, green, spec)

    message = str(failed.value)
    alarm = f"{endpoint}-promotion-invocation5xxerrors"
    assert f"Promotion of endpoint {endpoint} to {green} was rolled back; the endpoint serves {blue}" in message
    assert f"Alarm {alarm} is ALARM: Threshold Crossed" in message
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", blue)
    # Every failed request came from the bad green canary; blue answered every request it got.
    assert traffic.errors and all("bad version 10.0" in error for error in traffic.errors)
    assert set(traffic.answers) == {BLUE}
    check_report(deployer, endpoint, blue, green, alarm, window_start)


def check_report(deployer: Deployer, endpoint: str, blue: str, green: str, alarm: str, window_start: str) -> None:
    """The rolled-back promotion's report: JSON and HTML in S3, traffic per fleet, the alarm's history."""
    import json

    from sagemaker_ops.operators.promotion_report import PromotionReportOperator

    result = PromotionReportOperator(task_id="report", endpoint_name=endpoint, blue_config=blue, green_config=green,
                                     alarm_names=[alarm], report_s3_uri="s3://promotion-reports/tests",
                                     window_start=window_start, period_seconds=1).execute({})
    assert result["promoted"] is False and alarm in result["summary"]
    bucket, _, key = result["report_json_uri"].removeprefix("s3://").partition("/")
    document = json.loads(deployer.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert set(document["invocations"]["green"]) <= set(document["invocations"]["blue"])  # one time axis
    assert sum(document["invocations"]["green"].values()) > 0 and sum(document["invocations"]["blue"].values()) > 0
    assert "ALARM" in [item["new_state"] for item in document["alarm_history"][alarm]]
    assert any(f"alarm {alarm}: " in event["event"] for event in document["events"])
    bucket, _, key = result["report_html_uri"].removeprefix("s3://").partition("/")
    page = deployer.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert page.count("data:image/png;base64,") == 2 and "NOT promoted" in page


def test_update_rollback_failed_fails_loudly(deployer, emulator):
    endpoint, blue, green = blue_and_green(deployer)
    alarm = ensure_alarms(endpoint, green, [FIVE_XX])["alarm_names"][0]
    response = requests.post(f"{emulator.url}/_emulator/faults", timeout=10,
                             json={"stage": "rollback", "endpoint": endpoint, "message": "no capacity"})
    assert response.status_code == 201, response.text
    spec = {"strategy": "rolling", "rolling_batch": {"instance_count": 1}, "rollback_batch": {"instance_count": 1},
            "wait_interval_seconds": 40, "alarms": [FIVE_XX]}
    failures: list[Exception] = []

    def run() -> None:
        try:
            promote(endpoint, green, spec)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            failures.append(error)

    promoting = threading.Thread(target=run)
    promoting.start()
    # The rollback has old capacity to restore (where the fault strikes) once the second batch bakes.
    wait_until(lambda: "on 2 instance(s)" in str(deployer.sm.describe_endpoint(EndpointName=endpoint).get(
        "PendingDeploymentSummary")), 60, "the second batch")
    trip(emulator.client("cloudwatch"), alarm)
    promoting.join()

    assert len(failures) == 1 and isinstance(failures[0], PromotionFailed)
    message = str(failures[0])
    assert f"Endpoint {endpoint} is UpdateRollbackFailed" in message and "MIX" in message
    assert "no capacity" in message and f"Alarm {alarm} is ALARM" in message
    deployer.sm.delete_endpoint(EndpointName=endpoint)


def trip(cloudwatch, name: str) -> None:
    """ALARM now and at the evaluator's next look too (missing data breaches), so the test does not race it."""
    alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    keys = ("AlarmName", "Namespace", "MetricName", "Statistic", "Dimensions", "Period", "EvaluationPeriods",
            "Threshold", "ComparisonOperator")
    cloudwatch.put_metric_alarm(**{key: alarm[key] for key in keys}, TreatMissingData="breaching")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="tripped by the test")


def test_a_deferred_promotion_judges_the_outcome_from_the_trigger_event(deployer):
    endpoint, blue, green = blue_and_green(deployer, count=2)
    spec = promotion(strategy="linear", canary_size=None, linear_step={"capacity_percent": 50},
                     wait_interval_seconds=20, termination_wait_seconds=0)
    ensure_alarms(endpoint, green, spec["alarms"])
    operator = PromoteEndpointOperator(task_id="promote", endpoint_name=endpoint, endpoint_config_name=green,
                                       promotion=spec, waiter_delay=1, waiter_max_attempts=3600, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})

    async def first_event(trigger):
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first_event(deferred.value.trigger))
    result = operator.execute_complete({}, event)
    assert result["endpoint_config_name"] == green and result["actions_taken"] == ["update"]
    assert result["previous_endpoint_config_name"] == blue  # carried through the deferral


def test_a_retry_during_an_update_waits_for_it_instead_of_starting_another(deployer):
    endpoint, blue, green = blue_and_green(deployer, count=1)
    spec = promotion(strategy="all_at_once", canary_size=None, termination_wait_seconds=20)
    ensure_alarms(endpoint, green, spec["alarms"])
    started = promote(endpoint, green, spec, wait_for_completion=False)
    retried = promote(endpoint, green, spec)

    assert started["actions_taken"] == ["update"]
    assert retried["actions_taken"] == ["joined"] and retried["endpoint_config_name"] == green


def two_variants(deployer: Deployer, challenger_code: str) -> str:
    config = deployer.name("config")
    variants = [("Champion", deployer.model(factor=BLUE), 1.0), ("Challenger", deployer.model(challenger_code,
                                                                                                factor=GREEN), 0.0)]
    deployer.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": name, "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": weight} for name, model, weight in variants])
    return deployer.endpoint(config)


def shift(endpoint: str, alarms: list[str]) -> dict:
    return ShiftTrafficOperator(task_id="shift", endpoint_name=endpoint, from_variant="Champion",
                                to_variant="Challenger", steps=[50, 100], bake_seconds=8, alarm_names=alarms,
                                alarm_check_seconds=1, waiter_delay=1, waiter_max_attempts=120).execute({})


def test_weights_shift_in_steps_to_a_good_challenger_and_a_rerun_changes_nothing(deployer):
    endpoint = two_variants(deployer, ECHO_MODEL)
    alarms = EnsurePromotionAlarmsOperator(task_id="alarms", endpoint_name=endpoint, alarms=[FIVE_XX]).execute({})
    with Traffic(deployer, endpoint) as traffic:
        result = shift(endpoint, alarms["alarm_names"])
    again = shift(endpoint, alarms["alarm_names"])

    assert traffic.errors == [] and set(traffic.answers) == {BLUE, GREEN}
    assert result["weights"] == {"Champion": 0.0, "Challenger": 100.0} and result["steps_done"] == [50, 100]
    assert again["changed"] is False


def test_a_firing_alarm_rolls_the_weights_back_and_fails_naming_it(deployer):
    endpoint = two_variants(deployer, BAD_MODEL)
    alarms = EnsurePromotionAlarmsOperator(task_id="alarms", endpoint_name=endpoint, alarms=[FIVE_XX],
                                           variant_names=["Challenger"]).execute({})
    with Traffic(deployer, endpoint), pytest.raises(PromotionFailed) as failed:
        shift(endpoint, alarms["alarm_names"])

    assert "stopped at 50% and was rolled back to weights {'Champion': 1.0, 'Challenger': 0.0}" in str(failed.value)
    assert f"Alarm {alarms['alarm_names'][0]} is ALARM: Threshold Crossed" in str(failed.value)
    weights = {v["VariantName"]: v["CurrentWeight"] for v in
               deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"]}
    assert weights == {"Champion": 1.0, "Challenger": 0.0}


def test_settings_are_checked_before_any_aws_call():
    def operator(**overrides):
        return PromoteEndpointOperator(**{"task_id": "promote", "endpoint_name": "iris", "endpoint_config_name": "c2",
                                          "promotion": promotion(), "aws_conn_id": "nowhere", **overrides})

    with pytest.raises(ValueError, match=r"waiter_delay x waiter_max_attempts \(50 s\) must cover"):
        operator(waiter_delay=5, waiter_max_attempts=10).execute({})
    with pytest.raises(ValueError, match="promotion: strategy must be one of"):
        operator(promotion={**promotion(), "strategy": "big-bang"}).execute({})
    with pytest.raises(ValueError, match="endpoint_config_name must be 1-63 letters"):
        operator(endpoint_config_name="bad name").execute({})


def test_the_release_path_fails_a_rolled_back_update_too(deployer):
    """What release DAGs do with a promotion: section: DeployEndpointOperator with the section's DeploymentConfig."""
    from sagemaker_ops.operators.sagemaker_endpoint import DeployEndpointOperator, EndpointDeploymentError
    from sagemaker_ops.pipeline.promotion_section import parse_promotion
    from sagemaker_ops.promotion import deployment_config

    endpoint, blue, green = blue_and_green(deployer, BAD_MODEL)
    names = ensure_alarms(endpoint, green, [FIVE_XX])["alarm_names"]
    spec = parse_promotion(promotion(wait_interval_seconds=600, termination_wait_seconds=0, alarms=[FIVE_XX]))
    deploy = DeployEndpointOperator(task_id="deploy_endpoint", endpoint_name=endpoint, endpoint_config_name=green,
                                    update_endpoint_kwargs={"DeploymentConfig": deployment_config(spec, names)},
                                    waiter_delay=1, waiter_max_attempts=600)
    with Traffic(deployer, endpoint) as traffic, pytest.raises(EndpointDeploymentError, match="rolled back") as failed:
        deploy.execute({})
    assert names[0] in deployer.sm.describe_endpoint(EndpointName=endpoint)["FailureReason"]
    message = str(failed.value)
    assert f"Promotion of endpoint {endpoint} to {green} was rolled back; the endpoint serves {blue}" in message
    assert f"Alarm {names[0]} is " in message and "Threshold Crossed" in message  # the alarm's StateReason
    assert set(traffic.answers) == {BLUE}
