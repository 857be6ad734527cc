"""Application Auto Scaling's arithmetic and schedules, without an emulator."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sagemaker_emulator.autoscaling.policy_math import (Step, aggregate, matching_step, percent_change,
                                                        stepped_capacity, tracking_capacity, validate_steps)
from sagemaker_emulator.autoscaling.schedules import EmulatedClock, ScheduleError, parse_schedule


@pytest.mark.parametrize("capacity,percent,magnitude,change", [
    (10, 25, None, 2),     # 2.5 -> rounded down
    (2, 25, None, 1),      # 0.5 -> 1
    (2, -25, None, -1),    # -0.5 -> -1
    (10, -25, None, -2),   # -2.5 -> rounded towards zero
    (4, 50, 3, 3),         # MinAdjustmentMagnitude lifts 2 to 3
    (4, -50, 3, -3),
    (10, 0, None, 0),
])
def test_percent_change_rounds_as_aws_does(capacity, percent, magnitude, change):
    assert percent_change(capacity, percent, magnitude) == change


def test_step_bounds_are_relative_to_the_threshold_with_aws_inclusiveness():
    steps = [Step(0, 10, 1), Step(10, None, 3)]
    assert matching_step(steps, 0).adjustment == 1      # lower bound inclusive above the threshold
    assert matching_step(steps, 10).adjustment == 3     # upper bound exclusive
    below = [Step(None, -10, -2), Step(-10, 0, -1)]
    assert matching_step(below, -10).adjustment == -2   # below: upper bound inclusive
    assert matching_step(below, -0.5).adjustment == -1
    assert matching_step(steps, -1) is None


def test_capacities_from_steps_and_tracking():
    assert stepped_capacity(3, "ChangeInCapacity", 2, None) == 5
    assert stepped_capacity(3, "ExactCapacity", 1, None) == 1
    assert stepped_capacity(10, "PercentChangeInCapacity", 25, None) == 12
    assert tracking_capacity(1, 24, 10) == 3
    assert tracking_capacity(3, 30, 10) == 9
    assert tracking_capacity(2, 0, 10) == 0
    assert tracking_capacity(0, 50, 10) == 0  # target tracking cannot scale from zero: step scaling does
    assert aggregate([1, 5, 3], "Maximum") == 5 and aggregate([1, 5, 3], None) == 3 and aggregate([], None) is None


def test_invalid_step_adjustments_are_named():
    assert "overlap" in validate_steps([Step(0, 10, 1), Step(5, None, 2)])
    assert "overlap" in validate_steps([Step(0, 10, 1), Step(20, None, 2)])  # a gap
    assert "at least one" in validate_steps([])
    assert validate_steps([Step(None, 0, -1), Step(0, None, 1)]) is None


def test_schedules_at_rate_and_cron_with_a_timezone():
    now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)  # a Saturday
    assert parse_schedule("at(2026-11-28T13:30:00)", "Europe/Berlin").next_after(now, now) == \
        datetime(2026, 11, 28, 12, 30, tzinfo=timezone.utc)
    assert parse_schedule("at(2026-11-28T11:00:00)", None).next_after(now, now) is None
    assert parse_schedule("rate(5 minutes)", None).next_after(now, now) == datetime(2026, 11, 28, 12, 5,
                                                                                  tzinfo=timezone.utc)
    weekday_mornings = parse_schedule("cron(30 9 ? * MON-FRI *)", "Europe/Berlin")
    assert weekday_mornings.next_after(now, now) == datetime(2026, 11, 30, 8, 30, tzinfo=timezone.utc)
    assert parse_schedule("cron(0 0 1 1 ? 2027)", None).next_after(now, now) == datetime(2027, 1, 1,
                                                                                        tzinfo=timezone.utc)


@pytest.mark.parametrize("expression,zone,words", [
    ("rate(2 minute)", None, "rate(5 minutes)"),
    ("cron(0 9 * * * *)", None, "exactly one of Day-of-month and Day-of-week"),
    ("cron(0 9 * *)", None, "six fields"),
    ("cron(0 25 ? * * *)", None, "'25' is not valid in the Hours field"),
    ("cron(0 9 L * ? *)", None, "does not support L, W or #"),
    ("every day", None, "Use at(yyyy-mm-ddThh:mm:ss)"),
    ("rate(1 day)", "Mars/Olympus", "Timezone 'Mars/Olympus' is not valid"),
])
def test_invalid_schedules_say_what_to_write(expression, zone, words):
    with pytest.raises(ScheduleError, match=None) as caught:
        parse_schedule(expression, zone)
    assert words in str(caught.value)


def test_the_emulated_clock_runs_time_scale_times_faster_from_its_start():
    clock = EmulatedClock(started=1000.0, scale=20)
    assert clock.emulated(1003.0).timestamp() == 1060.0
    assert clock.real(datetime.fromtimestamp(1060.0, timezone.utc)) == 1003.0
