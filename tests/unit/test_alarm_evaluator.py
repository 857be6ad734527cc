"""The alarm evaluator against moto in-process, on a clock the test drives (no sleeping)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from sagemaker_emulator.controllers.alarm_evaluator import AlarmEvaluator

REGION = "us-east-1"
PERIOD = 60  # AWS seconds; at time scale 20 a period is 3 real seconds
T0 = 1_800_000_000.0 - (1_800_000_000.0 % 3)  # the start of a scaled period


@pytest.fixture
def cloudwatch():
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def put_alarm(cloudwatch, name, **overrides):
    settings = dict(AlarmName=name, Namespace="Test", MetricName="Errors", Statistic="Sum", Period=PERIOD,
                    EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
                    TreatMissingData="notBreaching")
    cloudwatch.put_metric_alarm(**{**settings, **overrides})


def publish(cloudwatch, value, at):
    cloudwatch.put_metric_data(Namespace="Test", MetricData=[
        {"MetricName": "Errors", "Value": value, "Timestamp": datetime.fromtimestamp(at, timezone.utc)}])


def state(cloudwatch, name):
    return cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def run(evaluator, now):
    return asyncio.run(evaluator.tick(now))


def test_new_alarm_starts_insufficient_data_then_evaluates_each_scaled_period(cloudwatch):
    evaluator = AlarmEvaluator(time_scale=20, regions=lambda: [REGION])
    put_alarm(cloudwatch, "errors", TreatMissingData="missing")
    run(evaluator, T0 + 0.1)  # evaluates the period before: no data
    assert state(cloudwatch, "errors")["StateValue"] == "INSUFFICIENT_DATA"
    assert state(cloudwatch, "errors")["StateReason"] == "Unchecked: Initial alarm creation"
    publish(cloudwatch, 3.0, T0 + 1.0)
    run(evaluator, T0 + 2.9)  # the period is still in progress: not evaluated
    assert state(cloudwatch, "errors")["StateValue"] == "INSUFFICIENT_DATA"
    delay = run(evaluator, T0 + 3.1)
    alarm = state(cloudwatch, "errors")
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [3.0 (")
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [3.0]
    assert 0 < delay <= 3.0  # sleeps until the next period completes


def test_updating_an_alarm_keeps_its_state(cloudwatch):
    evaluator = AlarmEvaluator(time_scale=20, regions=lambda: [REGION])
    put_alarm(cloudwatch, "kept", TreatMissingData="missing")
    publish(cloudwatch, 5.0, T0 + 1.0)
    run(evaluator, T0 + 3.1)
    put_alarm(cloudwatch, "kept", Threshold=2.0)
    run(evaluator, T0 + 3.2)
    assert state(cloudwatch, "kept")["StateValue"] == "ALARM"
    summaries = [item["HistorySummary"] for item in evaluator.history.query(
        REGION, {"AlarmName": "kept", "ScanBy": "TimestampAscending"})["AlarmHistoryItems"]]
    assert summaries == ['Alarm "kept" created', "Alarm updated from INSUFFICIENT_DATA to ALARM",
                         'Alarm "kept" updated']


def test_other_action_arns_go_to_registered_handlers(cloudwatch):
    evaluator = AlarmEvaluator(time_scale=20, regions=lambda: [REGION])
    policy = ("arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1234:resource/sagemaker/"
              "endpoint/e/variant/AllTraffic:policyName/scale-out")
    received = []
    evaluator.register_action_handler("arn:aws:autoscaling:", lambda arn, change: received.append((arn, change)))
    put_alarm(cloudwatch, "scale", AlarmActions=[policy], OKActions=["arn:aws:unknown:x"])
    publish(cloudwatch, 5.0, T0 + 1.0)
    run(evaluator, T0 + 3.1)
    assert [(arn, change.old_state, change.new_state) for arn, change in received] == [
        (policy, "INSUFFICIENT_DATA", "ALARM")]
    run(evaluator, T0 + 6.1)  # no data in the newest periods, but the range still holds the breach
    run(evaluator, T0 + 12.1)  # the breach left the range: notBreaching -> OK, an action nobody handles
    actions = [item for item in evaluator.history.query(REGION, {"AlarmName": "scale", "HistoryItemType": "Action"})
               ["AlarmHistoryItems"]]
    assert [item["HistorySummary"].split(".")[0] for item in reversed(actions)] == [
        f"Successfully executed action {policy}", "Failed to execute action arn:aws:unknown:x"]


def test_disabled_actions_do_not_run(cloudwatch):
    evaluator = AlarmEvaluator(time_scale=20, regions=lambda: [REGION])
    received = []
    evaluator.register_action_handler("arn:aws:autoscaling:", lambda arn, change: received.append(arn))
    put_alarm(cloudwatch, "quiet", AlarmActions=["arn:aws:autoscaling:policy"], ActionsEnabled=False)
    publish(cloudwatch, 5.0, T0 + 1.0)
    run(evaluator, T0 + 3.1)
    assert state(cloudwatch, "quiet")["StateValue"] == "ALARM" and received == []


def test_endpoint_latency_distribution_feeds_percentiles(cloudwatch):
    from sagemaker_emulator import moto_bridge
    from sagemaker_emulator.runtime.telemetry import _Sample

    latency = _Sample()
    for value in range(1, 1001):
        latency.add(float(value))
    evaluator = AlarmEvaluator(time_scale=20, regions=lambda: [REGION])
    cloudwatch.put_metric_alarm(
        AlarmName="p99", Namespace="AWS/SageMaker", MetricName="ModelLatency", ExtendedStatistic="p99", Period=PERIOD,
        EvaluationPeriods=1, Threshold=990.0, ComparisonOperator="GreaterThanOrEqualToThreshold")
    moto_bridge.put_metric_data(REGION, "AWS/SageMaker", [{
        "MetricName": "ModelLatency", "Timestamp": datetime.fromtimestamp(T0 + 1, timezone.utc), "Unit": "Microseconds",
        "StatisticValues": {"SampleCount": latency.count, "Sum": latency.total, "Minimum": latency.low,
                            "Maximum": latency.high}, "Distribution": latency.distribution()}])
    run(evaluator, T0 + 3.1)
    alarm = state(cloudwatch, "p99")
    assert alarm["StateValue"] == "ALARM"
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [990.0]
    statistics = cloudwatch.get_metric_statistics(  # moto still reads it as one statistic set
        Namespace="AWS/SageMaker", MetricName="ModelLatency", Statistics=["SampleCount"], Period=60,
        StartTime=datetime.fromtimestamp(T0 - 60, timezone.utc), EndTime=datetime.fromtimestamp(T0 + 60, timezone.utc))
    assert sum(point["SampleCount"] for point in statistics["Datapoints"]) == 1000


def test_an_alarm_that_cannot_be_evaluated_does_not_stop_the_others(cloudwatch):
    evaluator = AlarmEvaluator(time_scale=20, regions=lambda: [REGION])
    put_alarm(cloudwatch, "anomaly-band", ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold")
    put_alarm(cloudwatch, "fine")
    publish(cloudwatch, 5.0, T0 + 1.0)
    run(evaluator, T0 + 3.1)
    assert state(cloudwatch, "fine")["StateValue"] == "ALARM"
    assert state(cloudwatch, "anomaly-band")["StateValue"] == "INSUFFICIENT_DATA"


def test_an_alarm_with_a_unit_looks_at_that_unit_only(cloudwatch):
    evaluator = AlarmEvaluator(time_scale=20, regions=lambda: [REGION])
    put_alarm(cloudwatch, "seconds", Unit="Seconds")
    put_alarm(cloudwatch, "any-unit")
    cloudwatch.put_metric_data(Namespace="Test", MetricData=[{
        "MetricName": "Errors", "Value": 5.0, "Unit": "Count",
        "Timestamp": datetime.fromtimestamp(T0 + 1, timezone.utc)}])
    run(evaluator, T0 + 3.1)
    assert state(cloudwatch, "seconds")["StateValue"] == "OK"  # notBreaching: no datapoint in Seconds
    assert state(cloudwatch, "any-unit")["StateValue"] == "ALARM"


def test_deleted_alarms_keep_their_history(cloudwatch):
    evaluator = AlarmEvaluator(time_scale=20, regions=lambda: [REGION])
    put_alarm(cloudwatch, "short-lived")
    run(evaluator, T0 + 0.1)
    cloudwatch.delete_alarms(AlarmNames=["short-lived"])
    run(evaluator, T0 + 0.2)
    summaries = [item["HistorySummary"] for item in evaluator.history.query(
        REGION, {"AlarmName": "short-lived", "HistoryItemType": "ConfigurationUpdate"})["AlarmHistoryItems"]]
    assert summaries == ['Alarm "short-lived" deleted', 'Alarm "short-lived" created']
