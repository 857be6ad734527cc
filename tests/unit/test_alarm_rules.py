"""The alarm evaluator's rules: statistics, percentiles, comparison, M of N, missing data, wording."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from sagemaker_emulator.controllers.alarm_rules import (
    Datapoint, PeriodData, Rule, evaluate, percentile, reason_data, statistic_value,
)

START = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def points(*values):
    return [Datapoint(START + timedelta(minutes=i), value) for i, value in enumerate(values)]


def period(*values):
    data = PeriodData()
    for value in values:
        data.add_value(value)
    return data


@pytest.mark.parametrize("statistic, expected", [
    ("Average", 2.5), ("Sum", 10.0), ("Minimum", 1.0), ("Maximum", 4.0), ("SampleCount", 4.0)])
def test_each_statistic(statistic, expected):
    assert statistic_value(period(1, 2, 3, 4), statistic, None) == expected


def test_statistic_sets_and_raw_values_combine():
    data = period(10)
    data.add_set(3, 6, 1, 3)
    assert statistic_value(data, "Average", None) == 4.0
    assert statistic_value(data, "SampleCount", None) == 4.0
    assert statistic_value(data, None, "p100") == 10.0  # statistic sets carry no raw values


def test_percentiles_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 99.9) == 100
    assert statistic_value(period(*values), None, "p90") == 90
    assert statistic_value(PeriodData(), None, "p99") is None
    only_sets = PeriodData()
    only_sets.add_set(5, 5, 1, 1)
    assert statistic_value(only_sets, None, "p99") is None


@pytest.mark.parametrize("operator, value, breaches", [
    ("GreaterThanOrEqualToThreshold", 1.0, True), ("GreaterThanOrEqualToThreshold", 0.9, False),
    ("GreaterThanThreshold", 1.0, False), ("GreaterThanThreshold", 1.1, True),
    ("LessThanThreshold", 1.0, False), ("LessThanThreshold", 0.9, True),
    ("LessThanOrEqualToThreshold", 1.0, True), ("LessThanOrEqualToThreshold", 1.1, False)])
def test_each_comparison_operator(operator, value, breaches):
    assert Rule(operator, 1.0, 1).breaches(value) is breaches


def test_m_of_n():
    rule = Rule("GreaterThanThreshold", 1.0, 3, datapoints_to_alarm=2)
    assert evaluate(rule, points(5, 0, 0), "OK", START).state == "OK"
    assert evaluate(rule, points(5, 0, 5), "OK", START).state == "ALARM"


# AWS's table (alarms-and-missing-data): N = M = 3, evaluation range 5; X breaching, 0 not, - missing.
@pytest.mark.parametrize("row, expected", [
    ("0-X-X", {"missing": "OK", "ignore": "OK", "breaching": "OK", "notBreaching": "OK"}),
    ("----0", {"missing": "OK", "ignore": "OK", "breaching": "OK", "notBreaching": "OK"}),
    ("-----", {"missing": "INSUFFICIENT_DATA", "ignore": None, "breaching": "ALARM", "notBreaching": "OK"}),
    ("0XX-X", {"missing": "ALARM", "ignore": "ALARM", "breaching": "ALARM", "notBreaching": "ALARM"}),
    ("--X--", {"missing": "ALARM", "ignore": None, "breaching": "ALARM", "notBreaching": "OK"}),
])
def test_treat_missing_data_as_aws_documents(row, expected):
    values = [None if c == "-" else (5.0 if c == "X" else 0.0) for c in row]
    for mode, state in expected.items():
        rule = Rule("GreaterThanThreshold", 1.0, 3, treat_missing_data=mode)
        assert evaluate(rule, points(*values), "OK", START).state == state, mode


def test_alarm_reason_worded_as_aws():
    rule = Rule("GreaterThanOrEqualToThreshold", 1.0, 1, statistic="Average")
    outcome = evaluate(rule, points(5.0), "OK", START + timedelta(minutes=1))
    assert outcome.reason == ("Threshold Crossed: 1 out of the last 1 datapoints [5.0 (30/11/26 12:00:00)] was "
                              "greater than or equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM "
                              "transition).")
    assert outcome.reason_data == {
        "version": "1.0", "queryDate": "2026-11-30T12:01:00.000+0000", "startDate": "2026-11-30T12:00:00.000+0000",
        "statistic": "Average", "period": 60, "recentDatapoints": [5.0], "threshold": 1.0,
        "evaluatedDatapoints": [{"timestamp": "2026-11-30T12:00:00.000+0000", "value": 5.0}]}
    json.dumps(outcome.reason_data)


def test_ok_and_missing_reasons():
    rule = Rule("GreaterThanThreshold", 1.0, 2, treat_missing_data="notBreaching")
    ok = evaluate(rule, points(0.0, 0.5), "ALARM", START)
    assert ok.reason.startswith("Threshold Crossed: 2 out of the last 2 datapoints [0.5 (30/11/26 12:01:00), "
                                "0.0 (30/11/26 12:00:00)] were not greater than the threshold (1.0) "
                                "(minimum 1 datapoint for ALARM -> OK transition).")
    empty = evaluate(rule, points(None, None), "ALARM", START)
    assert empty.state == "OK"
    assert empty.reason == ("Threshold Crossed: no datapoints were received for 2 periods and 2 missing "
                            "datapoints were treated as [NonBreaching].")
    insufficient = evaluate(Rule("GreaterThanThreshold", 1.0, 1), points(None), "OK", START)
    assert insufficient.reason == "Insufficient Data: 1 datapoint was unknown."


def test_percentile_reason_data_names_the_extended_statistic():
    rule = Rule("GreaterThanThreshold", 1.0, 1, extended_statistic="p99")
    data = reason_data(rule, points(3.0), points(3.0), START)
    assert data["extendedStatistic"] == "p99" and "statistic" not in data


def test_statistic_sets_with_a_distribution_count_for_percentiles():
    data = PeriodData()
    data.add_set(100, 5050, 1, 100, [(float(v), 1) for v in range(1, 100)] + [(100.0, 1)])
    assert statistic_value(data, None, "p99") == 99.0
    assert statistic_value(data, "Average", None) == 50.5
