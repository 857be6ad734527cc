"""CloudWatch alarms evaluated by the emulator, through boto3 (time scale 20: a 60 s period is 3 s).

Client metrics use 30-second periods (1.5 real seconds) and datapoints stamped in past periods, so
each test lays out its datapoints first, then creates the alarm and reads its first evaluation
from DescribeAlarmHistory: no assertion depends on how fast the machine is (the first evaluation
only has to come within the evaluation range, N + 2 periods, of the datapoints).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from datetime import datetime, timezone

import pytest

from tests.emulator.conftest import wait_until

TIME_SCALE = 20
PERIOD = 30  # AWS seconds
REAL_PERIOD = PERIOD / TIME_SCALE


@pytest.fixture
def cloudwatch(emulator):
    return emulator.client("cloudwatch")


@pytest.fixture
def namespace():
    return f"Test/{uuid.uuid4().hex[:8]}"


def stamp(periods_ago: int) -> datetime:
    """The middle of the scaled period ``periods_ago`` periods before the current one."""
    index = math.floor(time.time() / REAL_PERIOD) - periods_ago
    return datetime.fromtimestamp((index + 0.5) * REAL_PERIOD, timezone.utc)


def publish(cloudwatch, namespace, values, periods_ago=1, metric="Errors", dimensions=None):
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": metric, "Values": values, "Timestamp": stamp(periods_ago), "Dimensions": dimensions or []}])


def put_alarm(cloudwatch, namespace, name, **overrides):
    settings = dict(AlarmName=name, Namespace=namespace, MetricName="Errors", Statistic="Average", Period=PERIOD,
                    EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
                    TreatMissingData="missing")
    cloudwatch.put_metric_alarm(**{**settings, **overrides})
    return name


def put_percentile_alarm(cloudwatch, namespace, name, **overrides):
    settings = dict(AlarmName=name, Namespace=namespace, MetricName="Errors", ExtendedStatistic="p90",
                    Period=PERIOD, EvaluationPeriods=1, Threshold=90.0,
                    ComparisonOperator="GreaterThanOrEqualToThreshold")
    cloudwatch.put_metric_alarm(**{**settings, **overrides})
    return name


def state_updates(cloudwatch, name):
    items = cloudwatch.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate",
                                              ScanBy="TimestampAscending")["AlarmHistoryItems"]
    return [json.loads(item["HistoryData"])["newState"] for item in items]


def first_state(cloudwatch, name, seconds=15):
    return wait_until(lambda: state_updates(cloudwatch, name), seconds, f"{name} evaluated")[0]["stateValue"]


def describe(cloudwatch, name):
    return cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def test_new_alarm_starts_insufficient_data(cloudwatch, namespace):
    name = put_alarm(cloudwatch, namespace, f"new-{namespace[5:]}")
    alarm = describe(cloudwatch, name)
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["StateReason"] == "Unchecked: Initial alarm creation"
    created = cloudwatch.describe_alarm_history(AlarmName=name, HistoryItemType="ConfigurationUpdate")
    assert [item["HistorySummary"] for item in created["AlarmHistoryItems"]] == [f'Alarm "{name}" created']


@pytest.mark.parametrize("statistic, value", [
    ("Average", 2.5), ("Sum", 10.0), ("Minimum", 1.0), ("Maximum", 4.0), ("SampleCount", 4.0)])
def test_each_statistic(cloudwatch, namespace, statistic, value):
    publish(cloudwatch, namespace, [1.0, 2.0, 3.0, 4.0])
    at = put_alarm(cloudwatch, namespace, f"{statistic}-at-{namespace[5:]}", Statistic=statistic, Threshold=value)
    above = put_alarm(cloudwatch, namespace, f"{statistic}-above-{namespace[5:]}", Statistic=statistic,
                      Threshold=value, ComparisonOperator="GreaterThanThreshold")
    assert first_state(cloudwatch, at) == "ALARM"
    assert first_state(cloudwatch, above) == "OK"


def test_percentile_from_raw_values(cloudwatch, namespace):
    publish(cloudwatch, namespace, [float(v) for v in range(1, 101)])
    at = put_percentile_alarm(cloudwatch, namespace, f"p90-at-{namespace[5:]}")
    above = put_percentile_alarm(cloudwatch, namespace, f"p90-above-{namespace[5:]}",
                                 ComparisonOperator="GreaterThanThreshold")
    assert first_state(cloudwatch, at) == "ALARM"
    assert first_state(cloudwatch, above) == "OK"
    reason_data = json.loads(describe(cloudwatch, at)["StateReasonData"])
    assert reason_data["extendedStatistic"] == "p90" and reason_data["recentDatapoints"] == [90.0]


@pytest.mark.parametrize("operator, expected", [
    ("GreaterThanOrEqualToThreshold", "ALARM"), ("GreaterThanThreshold", "OK"),
    ("LessThanThreshold", "OK"), ("LessThanOrEqualToThreshold", "ALARM")])
def test_each_comparison_operator(cloudwatch, namespace, operator, expected):
    publish(cloudwatch, namespace, [1.0])
    name = put_alarm(cloudwatch, namespace, f"{operator}-{namespace[5:]}", ComparisonOperator=operator)
    assert first_state(cloudwatch, name) == expected


@pytest.mark.parametrize("pattern, expected", [("X0X", "ALARM"), ("X00", "OK")])
def test_m_out_of_n(cloudwatch, namespace, pattern, expected):
    for periods_ago, mark in zip((3, 2, 1), pattern):
        publish(cloudwatch, namespace, [5.0 if mark == "X" else 0.0], periods_ago=periods_ago)
    name = put_alarm(cloudwatch, namespace, f"m-of-n-{pattern}-{namespace[5:]}", EvaluationPeriods=3,
                     DatapointsToAlarm=2)
    assert first_state(cloudwatch, name) == expected
    if expected == "ALARM":
        reason = describe(cloudwatch, name)["StateReason"]
        assert reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [5.0 (")


def test_each_treat_missing_data_mode(cloudwatch, namespace):
    suffix = namespace[5:]
    breaching = put_alarm(cloudwatch, namespace, f"breaching-{suffix}", TreatMissingData="breaching")
    not_breaching = put_alarm(cloudwatch, namespace, f"not-breaching-{suffix}", TreatMissingData="notBreaching")
    missing = put_alarm(cloudwatch, namespace, f"missing-{suffix}", TreatMissingData="missing")
    ignore = put_alarm(cloudwatch, namespace, f"ignore-{suffix}", TreatMissingData="ignore")
    cloudwatch.set_alarm_state(AlarmName=missing, StateValue="OK", StateReason="test: start from OK")
    cloudwatch.set_alarm_state(AlarmName=ignore, StateValue="ALARM", StateReason="test: start from ALARM")
    assert first_state(cloudwatch, breaching) == "ALARM"
    assert describe(cloudwatch, breaching)["StateReason"] == (
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated "
        "as [Breaching].")
    assert first_state(cloudwatch, not_breaching) == "OK"
    wait_until(lambda: describe(cloudwatch, missing)["StateValue"] == "INSUFFICIENT_DATA", 15, "missing evaluated")
    assert describe(cloudwatch, missing)["StateReason"] == "Insufficient Data: 1 datapoint was unknown."
    evaluated_at = time.monotonic()
    wait_until(lambda: time.monotonic() - evaluated_at > 3 * REAL_PERIOD, 3 * REAL_PERIOD + 5, "three more periods")
    assert describe(cloudwatch, ignore)["StateValue"] == "ALARM"
    assert describe(cloudwatch, ignore)["StateReason"] == "test: start from ALARM"


def test_dimensions_matched_exactly(cloudwatch, namespace):
    dims = [{"Name": "EndpointName", "Value": "e"}, {"Name": "VariantName", "Value": "v"}]
    publish(cloudwatch, namespace, [5.0], dimensions=dims)
    exact = put_alarm(cloudwatch, namespace, f"exact-{namespace[5:]}", Dimensions=dims[::-1],
                      TreatMissingData="notBreaching")
    subset = put_alarm(cloudwatch, namespace, f"subset-{namespace[5:]}", Dimensions=dims[:1],
                       TreatMissingData="notBreaching")
    assert first_state(cloudwatch, exact) == "ALARM"
    assert first_state(cloudwatch, subset) == "OK"
    metric_alarms = cloudwatch.describe_alarms_for_metric(MetricName="Errors", Namespace=namespace,
                                                          Dimensions=dims[::-1])["MetricAlarms"]
    assert {alarm["AlarmName"]: alarm["StateValue"] for alarm in metric_alarms}.get(exact) == "ALARM"


def test_set_alarm_state_holds_until_the_next_evaluation(cloudwatch, namespace):
    publish(cloudwatch, namespace, [0.0])
    name = put_alarm(cloudwatch, namespace, f"set-{namespace[5:]}", TreatMissingData="notBreaching")
    assert first_state(cloudwatch, name) == "OK"
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing the pager")
    alarm = describe(cloudwatch, name)
    assert (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "testing the pager")
    wait_until(lambda: describe(cloudwatch, name)["StateValue"] == "OK", 15, "the next evaluation")
    states = [update["stateValue"] for update in state_updates(cloudwatch, name)]
    assert states == ["OK", "ALARM", "OK"]
    history = cloudwatch.describe_alarm_history(AlarmName=name, ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [item["HistorySummary"] for item in history] == [
        f'Alarm "{name}" created', "Alarm updated from INSUFFICIENT_DATA to OK", "Alarm updated from OK to ALARM",
        "Alarm updated from ALARM to OK"]
    assert all(item["AlarmType"] == "MetricAlarm" and item["AlarmName"] == name for item in history)
    data = json.loads(history[-1]["HistoryData"])
    assert data["oldState"] == {"stateValue": "ALARM", "stateReason": "testing the pager"}
    assert data["newState"]["stateReasonData"]["version"] == "1.0"


def test_describe_alarm_history_rejects_an_unknown_item_type(cloudwatch):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        cloudwatch.describe_alarm_history(HistoryItemType="Everything")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "historyItemType" in caught.value.response["Error"]["Message"]


def test_sns_action_delivers_the_alarm_notification(emulator, cloudwatch, namespace):
    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    topic = sns.create_topic(Name=f"alarms-{namespace[5:]}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"alarms-{namespace[5:]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    publish(cloudwatch, namespace, [7.0])
    name = put_alarm(cloudwatch, namespace, f"sns-{namespace[5:]}", AlarmActions=[topic])
    assert first_state(cloudwatch, name) == "ALARM"

    def received():
        return sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages")

    envelope = json.loads(wait_until(received, 15, "the alarm notification")[0]["Body"])
    assert envelope["Subject"] == f'ALARM: "{name}" in US East (N. Virginia)'
    message = json.loads(envelope["Message"])
    assert (message["AlarmName"], message["OldStateValue"], message["NewStateValue"]) == (
        name, "INSUFFICIENT_DATA", "ALARM")
    assert message["Trigger"]["MetricName"] == "Errors" and message["Trigger"]["Threshold"] == 1.0
    actions = cloudwatch.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]
    assert [item["HistorySummary"] for item in actions] == [f"Successfully executed action {topic}"]


def test_alarm_on_the_endpoints_own_5xx_metric(deployer, cloudwatch):
    from botocore.exceptions import ClientError

    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    name = f"5xx-{endpoint}"
    cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Average",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Period=60, EvaluationPeriods=1, Threshold=0.5, ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching")

    def failing_requests_until_alarm():
        with pytest.raises(ClientError):
            deployer.invoke(endpoint, {"raise": "broken model"})
        return describe(cloudwatch, name)["StateValue"] == "ALARM"

    wait_until(failing_requests_until_alarm, 30, "the 5XX alarm")
    assert "was greater than or equal to the threshold (0.5)" in describe(cloudwatch, name)["StateReason"]


def test_model_latency_p99_of_a_real_endpoint(deployer, cloudwatch):
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    slow, fast = f"p99-slow-{endpoint}", f"p99-fast-{endpoint}"
    for name, threshold in ((slow, 1.0), (fast, 60_000_000.0)):  # every request is slower than 1 µs, none takes 60 s
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/SageMaker", MetricName="ModelLatency", ExtendedStatistic="p99",
            Dimensions=dimensions, Period=60, EvaluationPeriods=1, Threshold=threshold,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")

    def requests_until_alarm():
        deployer.invoke(endpoint, {"inputs": [1]})
        return describe(cloudwatch, slow)["StateValue"] == "ALARM"

    wait_until(requests_until_alarm, 30, "the ModelLatency p99 alarm")
    data = json.loads(describe(cloudwatch, slow)["StateReasonData"])
    assert data["extendedStatistic"] == "p99" and data["recentDatapoints"][0] > 1.0
    assert describe(cloudwatch, fast)["StateValue"] == "OK"


def test_describe_alarm_history_in_the_query_protocol(emulator, cloudwatch, namespace):
    import urllib.parse
    import urllib.request
    import xml.etree.ElementTree as ElementTree

    name = put_alarm(cloudwatch, namespace, f"query-{namespace[5:]}")
    form = urllib.parse.urlencode({"Action": "DescribeAlarmHistory", "Version": "2010-08-01", "AlarmName": name})
    request = urllib.request.Request(emulator.url + "/", data=form.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/monitoring/aws4_request"})
    with urllib.request.urlopen(request, timeout=10) as response:
        tree = ElementTree.fromstring(response.read())
    ns = {"cw": "http://monitoring.amazonaws.com/doc/2010-08-01/"}
    summaries = [node.text for node in tree.iterfind(".//cw:AlarmHistoryItems/cw:member/cw:HistorySummary", ns)]
    assert summaries == [f'Alarm "{name}" created']


def test_no_evaluation_failed_in_this_session(emulator):
    """Runs last in this module: every evaluation above ran without an exception in the emulator."""
    log = emulator.log_text()
    assert "evaluating CloudWatch alarms failed" not in log and "cannot be evaluated" not in log
