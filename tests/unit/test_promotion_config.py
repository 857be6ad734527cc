"""The ``promotion:`` section of a pipeline file: defaults, every validation error, and the AWS requests it becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagemaker_ops.pipeline import PipelineConfigError, load_pipeline
from sagemaker_ops.pipeline.promotion_section import parse_alarms, parse_promotion
from sagemaker_ops.promotion import alarm_differs, alarm_requests, deployment_config, judge
from tests.unit.pipeline_documents import PIPELINES, shipped_document
from tests.unit.pipeline_documents import document_errors as errors
from tests.unit.pipeline_documents import load_document as load

FIVE_XX = {"metric": "Invocation5XXErrors", "threshold": 1}


def test_the_shipped_iris_pipeline_promotes_by_canary_with_two_alarms():
    promotion = load_pipeline(PIPELINES / "iris.yaml").promotion
    assert promotion.strategy == "canary" and promotion.size.to_aws() == {"Type": "INSTANCE_COUNT", "Value": 1}
    assert [(alarm.metric, alarm.percentile, alarm.fleet) for alarm in promotion.alarms] == [
        ("Invocation5XXErrors", None, "all"), ("ModelLatency", "p99", "green")]


def test_defaults_fill_a_minimal_section(tmp_path: Path):
    document = shipped_document("iris")
    document["promotion"] = {"strategy": "all_at_once", "alarms": [FIVE_XX]}
    promotion = load(tmp_path, document).promotion
    assert (promotion.wait_interval_seconds, promotion.termination_wait_seconds,
            promotion.max_execution_timeout_seconds) == (60, 0, 1200)
    alarm = promotion.alarms[0]
    assert (alarm.name, alarm.statistic, alarm.comparison, alarm.period, alarm.evaluation_periods,
            alarm.datapoints_to_alarm, alarm.treat_missing_data) == (
        "invocation5xxerrors", "Average", "GreaterThanOrEqualToThreshold", 60, 1, 1, "notBreaching")


def test_a_pipeline_without_the_section_has_no_promotion(tmp_path: Path):
    document = shipped_document("iris")
    document.pop("promotion", None)
    assert load(tmp_path, document).promotion is None


def section(**fields) -> dict:
    return {"strategy": "canary", "canary_size": {"instance_count": 1}, "alarms": [FIVE_XX], **fields}


@pytest.mark.parametrize(("promotion", "expected"), [
    ("canary", "promotion must be a mapping, got 'canary'"),
    (section(strategy="blue"), "promotion.strategy must be one of all_at_once, canary, linear, rolling, got 'blue'"),
    (section(canary_size=None), "promotion.canary_size is required for this strategy"),
    (section(canary_size={"instances": 1}), "promotion.canary_size must be one of {instance_count: N} or "
                                            "{capacity_percent: P}, got {'instances': 1}"),
    (section(canary_size={"capacity_percent": 60}),
     "promotion.canary_size.capacity_percent must be an integer from 1 to 50, got 60"),
    (section(canary_size={"instance_count": 0}), "promotion.canary_size.instance_count must be an integer >= 1, got 0"),
    ({**section(strategy="linear"), "linear_step": {"capacity_percent": 5}},
     "promotion.linear_step.capacity_percent must be an integer from 10 to 50, got 5"),
    (section(strategy="linear"), "promotion.linear_step is required for this strategy"),
    (section(strategy="linear", linear_step={"capacity_percent": 20}),
     "promotion.canary_size applies to strategy canary only (strategy is linear); remove it"),
    ({**section(strategy="rolling"), "rolling_batch": {"capacity_percent": 4}},
     "promotion.rolling_batch.capacity_percent must be an integer from 5 to 50, got 4"),
    (section(rollback_batch={"capacity_percent": 50}),
     "promotion.rollback_batch applies to strategy rolling only (strategy is canary)"),
    (section(wait_interval_seconds=3601),
     "promotion.wait_interval_seconds must be an integer from 0 to 3600, got 3601"),
    (section(termination_wait_seconds=-1), "promotion.termination_wait_seconds must be an integer from 0 to 3600"),
    (section(max_execution_timeout_seconds=599),
     "promotion.max_execution_timeout_seconds must be an integer from 600 to 28800, got 599"),
    (section(wait_interval_seconds=600, termination_wait_seconds=600, max_execution_timeout_seconds=1200),
     "promotion.max_execution_timeout_seconds must be larger than wait_interval_seconds + termination_wait_seconds "
     "(1200); raise it or shorten the waits, got 1200"),
    (section(speed=3), "promotion.speed is not a known field"),
    (section(alarms=[]), "promotion.alarms must be a list of 1 to 10 alarms (an alarm-less promotion cannot roll "
                         "back), got []"),
    (section(alarms=[FIVE_XX] * 11), "promotion.alarms must be a list of 1 to 10 alarms"),
    (section(alarms=["5xx"]), "promotion.alarms[0] must be a mapping (metric, threshold, ...), got '5xx'"),
    (section(alarms=[{"threshold": 1}]), "promotion.alarms[0].metric is required"),
    (section(alarms=[{"metric": "ModelLatency"}]), "promotion.alarms[0].threshold is required (a number)"),
    (section(alarms=[{**FIVE_XX, "threshold": "high"}]), "promotion.alarms[0].threshold must be a number, got 'high'"),
    (section(alarms=[{**FIVE_XX, "statistic": "Median"}]),
     "promotion.alarms[0].statistic must be one of Average, Sum, Minimum, Maximum, SampleCount, got 'Median'"),
    (section(alarms=[{**FIVE_XX, "percentile": "99"}]), "promotion.alarms[0].percentile must be a percentile like p99"),
    (section(alarms=[{**FIVE_XX, "percentile": "p99", "statistic": "Average"}]),
     "promotion.alarms[0].statistic cannot be combined with percentile; keep one of them"),
    (section(alarms=[{**FIVE_XX, "comparison": ">="}]),
     "promotion.alarms[0].comparison must be one of GreaterThanOrEqualToThreshold"),
    (section(alarms=[{**FIVE_XX, "treat_missing_data": "zero"}]),
     "promotion.alarms[0].treat_missing_data must be one of missing, notBreaching, breaching, ignore, got 'zero'"),
    (section(alarms=[{**FIVE_XX, "period": 45}]),
     "promotion.alarms[0].period must be 10, 20, 30 or a multiple of 60 (CloudWatch's periods), got 45"),
    (section(alarms=[{**FIVE_XX, "evaluation_periods": 0}]),
     "promotion.alarms[0].evaluation_periods must be an integer from 1 to 100, got 0"),
    (section(alarms=[{**FIVE_XX, "evaluation_periods": 2, "datapoints_to_alarm": 3}]),
     "promotion.alarms[0].datapoints_to_alarm must be at most evaluation_periods (2), got 3"),
    (section(alarms=[{**FIVE_XX, "fleet": "blue"}]), "promotion.alarms[0].fleet must be one of all, green, got 'blue'"),
    (section(alarms=[{**FIVE_XX, "namespace": "Custom/Iris", "fleet": "green"}]),
     "promotion.alarms[0].fleet green applies to AWS/SageMaker metrics only"),
    (section(alarms=[{**FIVE_XX, "dimensions": {"Host": 1}}]),
     "promotion.alarms[0].dimensions.Host must be a string (quote numbers and booleans), got 1"),
    (section(alarms=[{**FIVE_XX, "name": "bad name!"}]), "promotion.alarms[0].name must be a name of at most 40"),
    (section(alarms=[{**FIVE_XX, "color": "red"}]), "promotion.alarms[0].color is not a known field"),
    (section(alarms=[FIVE_XX, FIVE_XX]), "promotion.alarms must have unique names (set name: on one of them)"),
])
def test_each_promotion_mistake_names_its_field(tmp_path: Path, promotion, expected: str):
    document = shipped_document("iris")
    document["promotion"] = promotion
    found = errors(tmp_path, document)
    assert any(expected in line for line in found), found


def test_the_deployment_timeout_must_fit_the_release_wait(tmp_path: Path):
    document = shipped_document("iris")
    document["promotion"] = section(max_execution_timeout_seconds=7200)
    assert any("promotion.max_execution_timeout_seconds must fit in the release's wait (endpoint.waiter: "
               "delay_seconds x max_attempts = 1200 s); lower it or raise endpoint.waiter.max_attempts, got 7200"
               in line for line in errors(tmp_path, document))


def test_a_dict_is_checked_with_the_same_messages():
    with pytest.raises(PipelineConfigError, match="promotion: strategy must be one of"):
        parse_promotion({**section(), "strategy": "yolo"})
    with pytest.raises(PipelineConfigError, match=r"alarms: \[0\].threshold is required"):
        parse_alarms([{"metric": "ModelLatency"}])


def test_each_strategy_becomes_its_deployment_config():
    def config(**fields):
        return deployment_config(parse_promotion(section(**fields)), ["a5xx"])

    canary = config(canary_size={"capacity_percent": 25}, termination_wait_seconds=30)
    assert canary == {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 60,
                                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}},
        "TerminationWaitInSeconds": 30, "MaximumExecutionTimeoutInSeconds": 1200},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a5xx"}]}}
    linear = config(strategy="linear", canary_size=None, linear_step={"capacity_percent": 50})
    assert linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["LinearStepSize"] == {
        "Type": "CAPACITY_PERCENT", "Value": 50}
    assert config(strategy="all_at_once", canary_size=None)["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}
    rolling = config(strategy="rolling", canary_size=None, rolling_batch={"instance_count": 1},
                     rollback_batch={"capacity_percent": 100})
    assert rolling["RollingUpdatePolicy"] == {
        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 60,
        "MaximumExecutionTimeoutInSeconds": 1200,
        "RollbackMaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 100}}


def test_requests_are_valid_aws_requests():
    import botocore.session
    from botocore.validate import ParamValidator

    session = botocore.session.get_session()
    validator = ParamValidator()
    promotion = load_pipeline(PIPELINES / "iris.yaml").promotion
    custom = parse_alarms([{"metric": "Errors", "namespace": "Custom/Iris", "dimensions": {"Model": "iris"},
                            "statistic": "Sum", "threshold": 3, "comparison": "GreaterThanThreshold",
                            "evaluation_periods": 3, "datapoints_to_alarm": 2, "treat_missing_data": "breaching"}])
    requests = alarm_requests(promotion.alarms + custom, "iris", ["AllTraffic"], "iris-cfg-2")
    shape = session.get_service_model("cloudwatch").operation_model("PutMetricAlarm").input_shape
    for request in requests:
        assert not validator.validate(request, shape).has_errors(), request
    update = session.get_service_model("sagemaker").operation_model("UpdateEndpoint").input_shape
    request = {"EndpointName": "iris", "EndpointConfigName": "c",
               "DeploymentConfig": deployment_config(promotion, [r["AlarmName"] for r in requests])}
    assert not validator.validate(request, update).has_errors()
    green = requests[1]
    assert {"Name": "EndpointConfigName", "Value": "iris-cfg-2"} in green["Dimensions"]
    assert requests[2]["Dimensions"] == [{"Name": "Model", "Value": "iris"}]
    assert not alarm_differs({**green, "Threshold": int(green["Threshold"])}, green)
    assert alarm_differs({**green, "Threshold": 1.0}, green)


def test_only_in_service_on_the_target_config_is_success():
    def endpoint(status, config, **extra):
        return {"EndpointName": "e", "EndpointStatus": status, "EndpointConfigName": config, **extra}

    assert judge(endpoint("InService", "new"), "new").action == "done"
    assert judge(endpoint("InService", "old"), "new").action == "update"
    assert judge(endpoint("Updating", "old"), "new").action == "wait"
    verdict = judge(endpoint("UpdateRollbackFailed", "old", FailureReason="no capacity"), "new")
    assert verdict.action == "fail" and "MIX" in verdict.reason and "no capacity" in verdict.reason
    assert judge(endpoint("Failed", "old"), "new").action == "fail"
    assert judge(None, "new").action == "fail"


def test_traffic_shares_split_each_period_between_the_fleets():
    from sagemaker_ops.promotion_report import render_promotion_report, traffic_shares

    invocations = {"blue": {"2026-01-01T00:00:00+00:00": 30.0, "2026-01-01T00:00:01+00:00": 0.0},
                   "green": {"2026-01-01T00:00:00+00:00": 10.0, "2026-01-01T00:00:01+00:00": 20.0}}
    shares = traffic_shares(invocations)
    assert shares["green"] == {"2026-01-01T00:00:00+00:00": 0.25, "2026-01-01T00:00:01+00:00": 1.0}
    page = render_promotion_report({
        "endpoint_name": "iris", "blue_config": "a", "green_config": "b", "window_start": "2026-01-01T00:00:00+00:00",
        "window_end": "2026-01-01T00:00:02+00:00", "invocations": invocations, "events": [],
        "alarm_history": {"iris-promotion-5xx": [{"time": "2026-01-01T00:00:01+00:00", "old_state": "OK",
                                                  "new_state": "ALARM", "reason": "Threshold Crossed"}]},
        "outcome": {"promoted": False, "summary": "rolled back"}})
    assert page.count("data:image/png;base64,") == 2 and "NOT promoted" in page


SHADOW = {"requests": 12, "payloads": [[[5.1, 3.5, 1.4, 0.2]]], "thresholds": {"min_agreement": 0.9}}


def test_a_shadow_test_block_is_read_with_its_defaults(tmp_path: Path):
    document = shipped_document("iris")
    document["promotion"] = section(shadow_test={"thresholds": {"max_error_rate": 0.01},
                                                 "payloads": [{"instances": [[1, 2, 3, 4]]}]})
    shadow = load(tmp_path, document).promotion.shadow_test
    assert (shadow.requests, shadow.share, shadow.thresholds, shadow.instance_type) == (
        50, 1.0, {"max_error_rate": 0.01}, None)


@pytest.mark.parametrize(("shadow_test", "expected"), [
    ({**SHADOW, "share": 1.5}, "promotion.shadow_test.share is the share of requests copied to the shadow: "
                               "at most 1, got 1.5"),
    ({**SHADOW, "requests": 0}, "promotion.shadow_test.requests must be an integer from 1 to 10000, got 0"),
    ({**SHADOW, "thresholds": {}}, "promotion.shadow_test.thresholds checks nothing: give at least one of "
                                   "min_agreement, max_error_rate, max_latency_p99_ratio, max_latency_p99_increase_ms"),
    ({**SHADOW, "thresholds": {"min_agreement": 2}},
     "promotion.shadow_test.thresholds.min_agreement is a share: give a number from 0 to 1, got 2.0"),
    ({**SHADOW, "payloads": "rows"}, "promotion.shadow_test.payloads must be a list of request bodies (JSON values), "
                                     "got 'rows'"),
    ({**SHADOW, "payloads": []}, "promotion.shadow_test.payloads is required when no smoke test sends JSON "
                                 "(application/json); give the request bodies to send"),
    ({**SHADOW, "window": 10}, "promotion.shadow_test.window is not a known field"),
])
def test_shadow_test_errors_name_the_field_and_the_fix(tmp_path: Path, shadow_test: dict, expected: str):
    document = shipped_document("iris")  # its smoke test sends CSV: a shadow test needs its own payloads
    document["promotion"] = section(shadow_test=shadow_test)
    assert any(expected in error for error in errors(tmp_path, document)), errors(tmp_path, document)


def test_a_shadow_test_needs_one_instance_variant(tmp_path: Path):
    document = shipped_document("iris")
    variant = document["endpoint"]["variants"][0]
    document["endpoint"]["variants"] = [variant, {**variant, "name": "Challenger"}]
    document["promotion"] = section(shadow_test=SHADOW)
    assert any("promotion.shadow_test needs an endpoint with exactly one instance-based, real-time production "
               "variant" in error for error in errors(tmp_path, document))


def test_the_promote_variant_conf_refuses_a_shadow_test():
    with pytest.raises(PipelineConfigError, match="shadow_test runs in a release pipeline only"):
        parse_promotion(section(shadow_test=SHADOW))
