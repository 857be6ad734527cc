"""Model Monitor schedule expressions and analysis-window offsets: parsing and arithmetic, no I/O.

Model Monitor accepts a narrow cron dialect (sagemaker-api.md §4.5): minute 0, an hour field of
``*``, ``H`` or ``H/N``, ``?``/``*`` for the day fields, ``*`` for month and year; or ``NOW`` for a
one-time run whose window is given by ``DataAnalysisStartTime``/``EndTime`` offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sagemaker_emulator.sagemaker.errors import ValidationException

NOW = "NOW"
HOUR = timedelta(hours=1)
_CRON = re.compile(r"^cron\((?P<fields>[^()]*)\)$")
_HOUR_FIELD = re.compile(r"^(?:\*|(?P<start>\d{1,2})(?:/(?P<step>\d{1,2}))?)$")
_OFFSET = re.compile(r"^(?P<sign>[-+]?)P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
                     r"(?:(?P<seconds>\d+)S)?)?$")
EXAMPLES = "cron(0 * ? * * *) (hourly), cron(0 12 ? * * *) (daily at 12:00 UTC), cron(0 0/6 ? * * *) or NOW"


@dataclass(frozen=True)
class Schedule:
    """When a monitoring schedule fires: a set of UTC hours (minute 0), or once, now."""

    expression: str
    hours: frozenset[int] | None  # None for NOW

    @property
    def one_time(self) -> bool:
        return self.hours is None

    @property
    def period(self) -> timedelta:
        """The shortest gap between two runs: the budget a job's MaxRuntimeInSeconds must fit in."""
        if self.hours is None:
            return timedelta(days=1)
        ordered = sorted(self.hours)
        gaps = [b - a for a, b in zip(ordered, ordered[1:])] + [ordered[0] + 24 - ordered[-1]]
        return timedelta(hours=min(gaps))

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment``; None for a one-time schedule."""
        if self.hours is None:
            return None
        candidate = moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) + HOUR
        while candidate.hour not in self.hours:
            candidate += HOUR
        return candidate


def parse_schedule(expression: str) -> Schedule:
    if expression == NOW:
        return Schedule(expression, None)
    match = _CRON.match(expression.strip())
    fields = match.group("fields").split() if match else []
    if len(fields) != 6:
        raise _bad_expression(expression, "it must be cron(Minutes Hours Day-of-month Month Day-of-week Year) or NOW")
    minute, hour, day_of_month, month, day_of_week, year = fields
    if minute not in ("0", "00"):
        raise _bad_expression(expression, "monitoring runs at minute 0 of an hour: the Minutes field must be 0")
    if day_of_month not in ("?", "*") or day_of_week not in ("?", "*") or month != "*" or year != "*":
        raise _bad_expression(expression, "only hourly and daily schedules are supported: Day-of-month ?, "
                                          "Month *, Day-of-week * and Year *")
    return Schedule(expression, _hours(expression, hour))


def _hours(expression: str, field: str) -> frozenset[int]:
    match = _HOUR_FIELD.match(field)
    if not match:
        raise _bad_expression(expression, f"the Hours field {field!r} must be *, an hour 0-23 or start/interval")
    if match.group("start") is None:
        return frozenset(range(24))
    start, step = int(match.group("start")), match.group("step")
    if start > 23:
        raise _bad_expression(expression, f"hour {start} is not between 0 and 23")
    if step is None:
        return frozenset({start})
    if not 1 <= int(step) <= 24:
        raise _bad_expression(expression, f"the interval {step} must be between 1 and 24 hours")
    return frozenset(range(start, 24, int(step)))


def _bad_expression(expression: str, why: str) -> ValidationException:
    return ValidationException(f"Invalid ScheduleExpression {expression!r}: {why}. Examples: {EXAMPLES}.")


def parse_offset(value: str, field: str) -> timedelta:
    """An ISO-8601 duration such as ``-PT1H`` or ``-P1D``, relative to the scheduled time."""
    match = _OFFSET.match(value or "")
    if not match or value.rstrip("-+") in ("P", "PT"):
        raise ValidationException(
            f"{field} {value!r} is not an ISO-8601 duration: give a negative offset from the scheduled time, "
            "e.g. -PT1H (one hour before) or -P1D.")
    parts = {k: int(v) for k, v in match.groupdict().items() if k != "sign" and v}
    offset = timedelta(**parts)
    return -offset if match.group("sign") == "-" else offset


def analysis_window(schedule: Schedule, scheduled_time: datetime, start_offset: str | None,
                    end_offset: str | None) -> tuple[datetime, datetime]:
    """[start, end) of the captured data an execution analyses.

    Without offsets a recurring schedule looks at the hour before it fired (AWS's default); a one-time
    schedule must name its window (checked when the schedule is created).
    """
    if start_offset is None or end_offset is None:
        return scheduled_time - HOUR, scheduled_time
    return (scheduled_time + parse_offset(start_offset, "DataAnalysisStartTime"),
            scheduled_time + parse_offset(end_offset, "DataAnalysisEndTime"))


def validate_window(start_offset: str, end_offset: str) -> None:
    start = parse_offset(start_offset, "DataAnalysisStartTime")
    end = parse_offset(end_offset, "DataAnalysisEndTime")
    if start > timedelta(0) or end > timedelta(0):
        raise ValidationException("DataAnalysisStartTime and DataAnalysisEndTime must be offsets at or before the "
                                  "scheduled time (negative durations such as -PT1H, or PT0H).")
    if start >= end:
        raise ValidationException(f"DataAnalysisStartTime {start_offset} must be before DataAnalysisEndTime "
                                  f"{end_offset}.")
    if end - start > timedelta(hours=24):
        raise ValidationException("The analysis window from DataAnalysisStartTime to DataAnalysisEndTime may not "
                                  "exceed 24 hours.")
