"""Model Monitor's schedule rules: the cron dialect, the analysis-window offsets and the runtime budget.

One implementation for both sides: ``sagemaker_ops`` checks a pipeline file or an operator's
arguments with it before any AWS call, and the emulator's CreateMonitoringSchedule checks the same
request with it, so the two can never disagree. Each check raises :class:`ScheduleRuleError`
whose message names the field it was given (``ScheduleExpression`` on the wire,
``monitoring.schedule.cron`` in a pipeline file).

What AWS documents (``ScheduleConfig``, sagemaker-api.md §4.5):

* ``cron(0 * ? * * *)`` hourly; ``cron(0 H ? * * *)`` daily at hour H (00-23);
  ``cron(0 H/N ? * * *)`` every N hours (01-24) starting at hour H: AWS's own example
  ``cron(0 17/12 ? * * *)`` is "every 12 hours, starting at 5pm UTC", so it fires at 17:00 *and*
  05:00. The fire hours are therefore every hour h with ``h ≡ H (mod N)``, not cron's
  ``H, H+N, ... < 24``. Minute 0 only; Day-of-month ``?`` (or ``*``), Month ``*``, Day-of-week
  ``*`` (or ``?``), Year ``*``. Or ``NOW``: one run, right away.
* ``DataAnalysisStartTime``/``DataAnalysisEndTime``: ISO-8601 durations relative to the scheduled
  time (``-PT1H``, ``-P1D``, ``PT0H``); start before end, at most 24 hours apart. Required with
  ``NOW``; with a cron schedule both or neither (neither: the hour before each run).
* ``StoppingCondition.MaxRuntimeInSeconds`` (1..86400) "cannot exceed the frequency of the job":
  at most the shortest gap between two runs (3600 s when hourly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

NOW = "NOW"
HOUR = timedelta(hours=1)
MAX_RUNTIME_SECONDS = 86400  # StoppingCondition.MaxRuntimeInSeconds upper bound
MAX_ANALYSIS_WINDOW = timedelta(hours=24)
EXAMPLES = ("cron(0 * ? * * *) (hourly), cron(0 12 ? * * *) (daily at 12:00 UTC), cron(0 0/6 ? * * *) "
            "(every 6 hours) or NOW")

_CRON = re.compile(r"^cron\((?P<fields>[^()]*)\)$")
_HOUR_FIELD = re.compile(r"^(?:\*|(?P<start>\d{1,2})(?:/(?P<step>\d{1,2}))?)$")
_DURATION = re.compile(r"^(?P<sign>[-+]?)P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
                       r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$")


class ScheduleRuleError(ValueError):
    """A schedule setting Model Monitor refuses; the message names the field and says what is accepted."""


@dataclass(frozen=True)
class Schedule:
    """When a monitoring schedule fires: a set of UTC hours (at minute 0), or once, now."""

    expression: str
    hours: frozenset[int] | None  # None for NOW

    @property
    def one_time(self) -> bool:
        return self.hours is None

    @property
    def period(self) -> timedelta:
        """The shortest gap between two runs, across midnight too (a day for NOW)."""
        if self.hours is None:
            return timedelta(days=1)
        ordered = sorted(self.hours)
        gaps = [b - a for a, b in zip(ordered, ordered[1:])] + [ordered[0] + 24 - ordered[-1]]
        return timedelta(hours=min(gaps))

    @property
    def interval_hours(self) -> int | None:
        """Hours between two runs (the shortest gap); None for NOW."""
        return None if self.one_time else int(self.period / HOUR)

    @property
    def max_runtime_seconds(self) -> int:
        """A job may not run longer than its schedule's period ("cannot exceed the frequency of the job")."""
        return MAX_RUNTIME_SECONDS if self.one_time else min(MAX_RUNTIME_SECONDS, int(self.period.total_seconds()))

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment``; None for a one-time schedule."""
        if self.hours is None:
            return None
        candidate = moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) + HOUR
        while candidate.hour not in self.hours:
            candidate += HOUR
        return candidate


def parse_schedule(expression: Any, field: str = "ScheduleExpression") -> Schedule:
    """The schedule ``expression`` describes; raise naming ``field`` if Model Monitor would refuse it."""
    if expression == NOW:
        return Schedule(NOW, None)
    match = _CRON.match(expression.strip()) if isinstance(expression, str) else None
    fields = match.group("fields").split() if match else []
    if len(fields) != 6:
        raise _bad_expression(field, expression,
                              "it must be cron(Minutes Hours Day-of-month Month Day-of-week Year) or NOW")
    minute, hour, day_of_month, month, day_of_week, year = fields
    if minute not in ("0", "00"):
        raise _bad_expression(field, expression, "monitoring runs at minute 0 of an hour: the Minutes field must be 0")
    if day_of_month not in ("?", "*") or day_of_week not in ("?", "*") or month != "*" or year != "*":
        raise _bad_expression(field, expression, "only hourly and daily schedules are supported: Day-of-month ?, "
                                                 "Month *, Day-of-week * and Year *")
    return Schedule(expression, _fire_hours(field, expression, hour))


def _fire_hours(field: str, expression: str, hour_field: str) -> frozenset[int]:
    match = _HOUR_FIELD.match(hour_field)
    if not match:
        raise _bad_expression(field, expression,
                              f"the Hours field {hour_field!r} must be *, an hour 0-23 or start/interval")
    if match.group("start") is None:
        return frozenset(range(24))
    start, step = int(match.group("start")), match.group("step")
    if start > 23:
        raise _bad_expression(field, expression, f"hour {start} is not between 0 and 23")
    if step is None:
        return frozenset({start})
    if not 1 <= int(step) <= 24:
        raise _bad_expression(field, expression, f"the interval {step} must be between 1 and 24 hours")
    return frozenset(hour for hour in range(24) if (hour - start) % int(step) == 0)


def _bad_expression(field: str, expression: Any, why: str) -> ScheduleRuleError:
    return ScheduleRuleError(f"Invalid {field} {expression!r}: {why}. Examples: {EXAMPLES}.")


def parse_offset(value: Any, field: str) -> timedelta:
    """An ISO-8601 duration such as ``-PT1H`` or ``-P1D``, relative to the scheduled time."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    parts = {k: int(v) for k, v in match.groupdict().items() if k != "sign" and v is not None} if match else {}
    if not parts:
        raise ScheduleRuleError(
            f"{field} {value!r} is not an ISO-8601 duration: give a negative offset from the scheduled time, "
            "e.g. -PT1H (one hour before) or -P1D.")
    offset = timedelta(**parts)
    return -offset if match.group("sign") == "-" else offset


def check_analysis_window(start_offset: Any, end_offset: Any, start_field: str = "DataAnalysisStartTime",
                          end_field: str = "DataAnalysisEndTime") -> None:
    """Both offsets at or before the scheduled time, start before end, at most 24 hours apart."""
    start, end = parse_offset(start_offset, start_field), parse_offset(end_offset, end_field)
    if start > timedelta(0) or end > timedelta(0):
        raise ScheduleRuleError(f"{start_field} and {end_field} must be offsets at or before the scheduled time "
                                "(negative durations such as -PT1H, or PT0H).")
    if start >= end:
        raise ScheduleRuleError(f"{start_field} {start_offset} must be before {end_field} {end_offset}.")
    if end - start > MAX_ANALYSIS_WINDOW:
        raise ScheduleRuleError(f"The analysis window from {start_field} to {end_field} may not exceed 24 hours.")


def check_schedule_window(schedule: Schedule, start_offset: Any, end_offset: Any,
                          start_field: str = "DataAnalysisStartTime", end_field: str = "DataAnalysisEndTime") -> None:
    """``NOW`` needs both offsets; a cron schedule takes both or neither (neither: the hour before each run)."""
    if schedule.one_time and (start_offset is None or end_offset is None):
        raise ScheduleRuleError(f"{start_field} and {end_field} are required when ScheduleExpression is NOW, "
                                "e.g. -PT1H and -PT0H.")
    if (start_offset is None) != (end_offset is None):
        raise ScheduleRuleError(f"Give both {start_field} and {end_field}, or neither.")
    if start_offset is not None:
        check_analysis_window(start_offset, end_offset, start_field, end_field)


def check_max_runtime(schedule: Schedule, seconds: Any, field: str = "MaxRuntimeInSeconds") -> None:
    """A recurring schedule's job must end before the next run can start."""
    budget = schedule.max_runtime_seconds
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= MAX_RUNTIME_SECONDS:
        raise ScheduleRuleError(f"{field} must be an integer from 1 to {MAX_RUNTIME_SECONDS}, got {seconds!r}.")
    if seconds > budget:
        raise ScheduleRuleError(f"{field} {seconds} cannot exceed the frequency of the schedule "
                                f"{schedule.expression}: at most {budget} seconds.")


def analysis_window(schedule: Schedule, scheduled_time: datetime, start_offset: str | None,
                    end_offset: str | None) -> tuple[datetime, datetime]:
    """[start, end) of the captured data one execution analyses.

    Without offsets a recurring schedule looks at the hour before it fired (AWS's default); a
    one-time schedule always names its window (:func:`check_schedule_window`).
    """
    if start_offset is None or end_offset is None:
        return scheduled_time - HOUR, scheduled_time
    return (scheduled_time + parse_offset(start_offset, "DataAnalysisStartTime"),
            scheduled_time + parse_offset(end_offset, "DataAnalysisEndTime"))
