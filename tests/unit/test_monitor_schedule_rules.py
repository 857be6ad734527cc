"""Model Monitor's schedule rules (``sagemaker_rules.monitor_schedule``), shared by sagemaker_ops and the emulator.

tests/operators/test_monitor_schedule_parity.py runs the same kind of cases through the operator and
through the emulator's CreateMonitoringSchedule; this file pins the rules themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sagemaker_rules.monitor_schedule import (
    ScheduleRuleError,
    analysis_window,
    check_analysis_window,
    check_max_runtime,
    check_schedule_window,
    parse_offset,
    parse_schedule,
)


@pytest.mark.parametrize(("expression", "interval"), [
    ("cron(0 * ? * * *)", 1), ("cron(0 12 ? * * *)", 24), ("cron(0 00 ? * * *)", 24), ("cron(0 0/2 ? * * *)", 2),
    ("cron(0 17/12 ? * * *)", 12), ("cron(0 * * * ? *)", 1), ("NOW", None),
])
def test_model_monitor_schedule_forms_are_accepted(expression: str, interval):
    parsed = parse_schedule(expression)
    assert parsed.interval_hours == interval
    assert parsed.max_runtime_seconds == (86400 if interval is None else min(86400, interval * 3600))


@pytest.mark.parametrize("expression", [
    "cron(*/5 * ? * * *)", "cron(30 * ? * * *)", "cron(0 24 ? * * *)", "cron(0 0/25 ? * * *)", "cron(0 0/0 ? * * *)",
    "cron(0 * ? 1 * *)", "cron(0 * ? * MON *)", "cron(0 * ? * * 2027)", "0 * * * *", "rate(1 hour)", "now", "", None,
])
def test_other_schedule_expressions_are_refused_with_the_accepted_forms(expression):
    with pytest.raises(ScheduleRuleError, match=r"^Invalid schedule_expression .*Examples: cron\(0 \* \? \* \* \*\) "
                                                r"\(hourly\)"):
        parse_schedule(expression, "schedule_expression")


def test_every_n_hours_starts_at_its_hour_and_repeats_across_midnight():
    # AWS: cron(0 17/12 ? * * *) is "every 12 hours, starting at 5pm UTC": 17:00 and 05:00.
    assert parse_schedule("cron(0 17/12 ? * * *)").hours == {5, 17}
    # An interval that does not divide the day: 0, 7, 14, 21, then 0 again three hours later.
    seven = parse_schedule("cron(0 0/7 ? * * *)")
    assert seven.hours == {0, 7, 14, 21}
    assert (seven.period, seven.max_runtime_seconds) == (timedelta(hours=3), 3 * 3600)
    after = datetime(2026, 11, 24, 21, 30, tzinfo=timezone.utc)
    assert seven.next_after(after) == datetime(2026, 11, 25, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("value", "hours"), [
    ("-PT1H", -1), ("-P1D", -24), ("PT0H", 0), ("-PT90M", -1.5), ("-P1DT2H", -26), ("-PT3600S", -1),
])
def test_offsets_are_iso_8601_durations(value: str, hours: float):
    assert parse_offset(value, "DataAnalysisStartTime") == timedelta(hours=hours)


@pytest.mark.parametrize("value", ["-1H", "-P", "-PT", "P1Y", "", None, "-PT1.5H"])
def test_other_offsets_are_refused(value):
    with pytest.raises(ScheduleRuleError, match="is not an ISO-8601 duration"):
        parse_offset(value, "DataAnalysisStartTime")


@pytest.mark.parametrize(("start", "end", "message"), [
    ("-PT1H", "-PT2H", "DataAnalysisStartTime -PT1H must be before DataAnalysisEndTime -PT2H."),
    ("-PT30H", "-PT0H", "may not exceed 24 hours"),
    ("-P1DT1H", "-PT0H", "may not exceed 24 hours"),
    ("PT1H", "PT2H", "must be offsets at or before the scheduled time"),
])
def test_analysis_windows_are_checked(start, end, message):
    with pytest.raises(ScheduleRuleError, match=message):
        check_analysis_window(start, end)


def test_a_day_long_window_is_accepted():
    check_analysis_window("-P1D", "-PT0H")


def test_now_needs_its_window_and_a_cron_schedule_takes_both_offsets_or_neither():
    with pytest.raises(ScheduleRuleError, match="are required when ScheduleExpression is NOW"):
        check_schedule_window(parse_schedule("NOW"), None, None)
    hourly = parse_schedule("cron(0 * ? * * *)")
    with pytest.raises(ScheduleRuleError, match="Give both DataAnalysisStartTime and DataAnalysisEndTime, or neither"):
        check_schedule_window(hourly, "-PT1H", None)
    check_schedule_window(hourly, None, None)
    check_schedule_window(hourly, "-PT2H", "-PT1H")


def test_a_window_shifts_each_run_and_defaults_to_the_hour_before():
    hourly, fired = parse_schedule("cron(0 * ? * * *)"), datetime(2026, 11, 24, 21, tzinfo=timezone.utc)
    assert analysis_window(hourly, fired, None, None) == (fired - timedelta(hours=1), fired)
    assert analysis_window(hourly, fired, "-PT3H", "-PT1H") == (fired - timedelta(hours=3), fired - timedelta(hours=1))


def test_a_job_must_end_before_the_next_run():
    check_max_runtime(parse_schedule("cron(0 * ? * * *)"), 3600)
    with pytest.raises(ScheduleRuleError, match=r"^MaxRuntimeInSeconds 3601 cannot exceed the frequency of the "
                                                r"schedule cron\(0 \* \? \* \* \*\): at most 3600 seconds.$"):
        check_max_runtime(parse_schedule("cron(0 * ? * * *)"), 3601)
    with pytest.raises(ScheduleRuleError, match="must be an integer from 1 to 86400"):
        check_max_runtime(parse_schedule("NOW"), 86401)
