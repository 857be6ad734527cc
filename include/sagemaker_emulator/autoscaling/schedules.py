"""Scheduled actions' ``Schedule``: ``at(...)``, ``rate(...)``, ``cron(...)`` with a ``Timezone``.

Pure: parse once, then ask for the next run after a moment. The moments are on the *emulated* clock
(see ``EmulatedClock``): AWS's schedules name wall-clock times, the emulator's clock runs
``time_scale`` times faster, so each action gets its own clock that starts at the real time the action
was put and runs ``time_scale`` times faster from there. ``at()`` one minute ahead of that moment
fires 3 real seconds later at scale 20; ``rate(1 minute)`` fires every 3 real seconds; a cron fires
at its next matching (emulated) minute. Cron follows Application Auto Scaling's six fields
(Minutes Hours Day-of-month Month Day-of-week Year; day of week 1-7 = SUN-SAT, ``?`` = any) with
``*``, lists, ranges, ``/`` steps and names; ``L``, ``W`` and ``#`` are refused clearly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name: i + 1 for i, name in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {name: i + 1 for i, name in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_FIELDS = (("Minutes", 0, 59, {}), ("Hours", 0, 23, {}), ("Day-of-month", 1, 31, {}), ("Month", 1, 12, _MONTHS),
           ("Day-of-week", 1, 7, _DAYS), ("Year", 1970, 2199, {}))


class ScheduleError(ValueError):
    """The Schedule or Timezone is not valid; the message names the field and the fix."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    zone: tzinfo
    at: datetime | None = None
    every: timedelta | None = None
    cron: tuple[frozenset[int], ...] | None = None

    def next_after(self, moment: datetime, origin: datetime) -> datetime | None:
        """The first run strictly after ``moment`` (``origin``: when the action was put, rate's start)."""
        if self.at is not None:
            return self.at if self.at > moment else None
        if self.every is not None:
            periods = int((moment - origin) / self.every) + 1
            return origin + periods * self.every
        return self._next_cron(moment)

    def _next_cron(self, moment: datetime) -> datetime | None:
        minutes, hours, days, months, weekdays, years = self.cron  # type: ignore[misc]
        local = moment.astimezone(self.zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = local.replace(hour=0, minute=0)
        for _ in range(366 * 5):  # five years of days at most
            weekday = day.isoweekday() % 7 + 1  # SUN = 1
            if day.year in years and day.month in months and day.day in days and weekday in weekdays:
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= local:
                            return candidate.astimezone(timezone.utc)
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        return None


def parse_schedule(expression: str, zone_name: str | None) -> Schedule:
    zone = _zone(zone_name)
    expression = (expression or "").strip()
    if match := _AT.match(expression):
        moment = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=zone)
        return Schedule(expression, zone, at=moment.astimezone(timezone.utc))
    if match := _RATE.match(expression):
        count, unit = int(match.group(1)), match.group(2).rstrip("s")
        if count < 1:
            raise ScheduleError(f"Schedule {expression} is not valid: a rate's value must be a positive integer.")
        if (count == 1) != (match.group(2) == unit):
            raise ScheduleError(f"Schedule {expression} is not valid: use '{unit}' for 1 and '{unit}s' above 1, "
                                f"e.g. rate(1 {unit}) or rate(5 {unit}s).")
        return Schedule(expression, zone, every=timedelta(seconds=count * _UNIT_SECONDS[unit]))
    if match := _CRON.match(expression):
        return Schedule(expression, zone, cron=_cron_fields(expression, match.group(1).split()))
    raise ScheduleError(f"Schedule {expression!r} is not valid. Use at(yyyy-mm-ddThh:mm:ss), "
                        "rate(value unit) with unit minute(s), hour(s) or day(s), or "
                        "cron(Minutes Hours Day-of-month Month Day-of-week Year).")


def _zone(name: str | None) -> tzinfo:
    if not name or name == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"Timezone {name!r} is not valid: give an IANA time zone name such as "
                            "'Europe/Berlin' or 'UTC'.") from None


def _cron_fields(expression: str, parts: list[str]) -> tuple[frozenset[int], ...]:
    if len(parts) != 6:
        raise ScheduleError(f"Schedule {expression} is not valid: a cron expression has six fields "
                            f"(Minutes Hours Day-of-month Month Day-of-week Year), it has {len(parts)}.")
    if (parts[2] == "?") == (parts[4] == "?"):
        raise ScheduleError(f"Schedule {expression} is not valid: exactly one of Day-of-month and Day-of-week "
                            "must be '?'.")
    return tuple(_cron_field(expression, text, *spec) for text, spec in zip(parts, _FIELDS))


def _cron_field(expression: str, text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    if text in ("*", "?"):
        return frozenset(range(low, high + 1))
    values: set[int] = set()
    for part in text.split(","):
        if any(mark in part.upper() for mark in ("L", "W", "#")) and part.upper() not in names:
            raise ScheduleError(f"Schedule {expression}: the emulator does not support L, W or # in the {name} "
                                "field; list the days explicitly.")
        span, _, step = part.partition("/")
        start, _, end = span.partition("-")
        first = low if start == "*" else _cron_value(expression, start, name, low, high, names)
        last = (high if start == "*" or step else first) if not end else _cron_value(expression, end, name, low,
                                                                                     high, names)
        stride = int(step) if step.isdigit() and int(step) > 0 else None
        if step and stride is None:
            raise ScheduleError(f"Schedule {expression}: the step {step!r} in the {name} field must be a positive "
                                "integer.")
        values.update(range(first, last + 1, stride or 1))
    return frozenset(values)


def _cron_value(expression: str, text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.upper()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise ScheduleError(f"Schedule {expression}: {text!r} is not valid in the {name} field "
                            f"(allowed {low}-{high}{' or names' if names else ''}).")
    return value


class EmulatedClock:
    """An action's clock: real time since ``started`` runs ``scale`` times faster from ``started``."""

    def __init__(self, started: float, scale: float):
        self.started, self.scale = started, scale

    def emulated(self, real: float) -> datetime:
        return datetime.fromtimestamp(self.started + (real - self.started) * self.scale, timezone.utc)

    def real(self, emulated: datetime) -> float:
        return self.started + (emulated.timestamp() - self.started) / self.scale
