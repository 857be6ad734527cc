"""How one metric alarm is evaluated: datapoints in, a state and AWS's wording of the reason out.

Pure functions, no moto and no clock, so every rule is unit-tested on its own
(tests/unit/test_alarm_rules.py); controllers/alarm_evaluator.py feeds them.

Where AWS documents the behaviour we follow it (AlarmThatSendsEmail / alarms-and-missing-data):
- a datapoint is the alarm's statistic over one period; ``EvaluationPeriods`` (N) periods are
  evaluated and ``DatapointsToAlarm`` (M, default N) of them must breach for ALARM;
- CloudWatch looks at an *evaluation range* a little longer than N and uses the most recent N
  datapoints that exist in it; when fewer than N exist the rest are filled in by
  ``TreatMissingData``: ``breaching`` / ``notBreaching`` count them as such; ``missing`` evaluates the
  real ones only (INSUFFICIENT_DATA when there are none); ``ignore`` keeps the current state unless
  the real ones decide it on their own. AWS's table (N=M=3, range 5): ``0 - X - X`` OK everywhere;
  ``- - - - 0`` OK everywhere; ``- - - - -`` INSUFFICIENT_DATA / retain / ALARM / OK;
  ``- - X - -`` ALARM / retain / ALARM / OK; unit tests check each row.
Where AWS is silent we decide:
- the evaluation range is N + 2 periods (AWS: "more datapoints than EvaluationPeriods");
- percentiles (``ExtendedStatistic`` pNN, pNN.N) use the nearest-rank method over the raw values
  of the period; statistic sets (PutMetricData ``StatisticValues``) carry no raw values, so a period
  that holds only statistic sets has no percentile (it counts as missing), except the emulator's own
  ModelLatency sets, which carry their distribution (3 significant digits) for exactly this;
- ``missing`` with fewer real datapoints than M: ALARM when every real datapoint breaches.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
OPERATORS = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda value, threshold: value >= threshold),
    "GreaterThanThreshold": ("greater than", lambda value, threshold: value > threshold),
    "LessThanThreshold": ("less than", lambda value, threshold: value < threshold),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda value, threshold: value <= threshold),
}
EXTRA_RANGE_PERIODS = 2
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{1,10})?|100)$")


@dataclass(slots=True)
class PeriodData:
    """Everything published for one metric in one period: a statistic set plus the raw values."""

    count: float = 0.0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    raw: list[float] = field(default_factory=list)
    raw_sorted: bool = True  # sorted once for the first percentile asked, not again for the next alarm

    def add_value(self, value: float) -> None:
        self.add_set(1.0, value, value, value)
        self.raw.append(value)
        self.raw_sorted = False

    def sorted_raw(self) -> list[float]:
        if not self.raw_sorted:
            self.raw.sort()
            self.raw_sorted = True
        return self.raw

    def add_set(self, count: float, total: float, low: float, high: float,
                distribution: list[tuple[float, int]] | None = None) -> None:
        """A statistic set; with its ``distribution`` ((value, count) pairs) its values count for percentiles."""
        self.count += count
        self.total += total
        self.low = min(self.low, low)
        self.high = max(self.high, high)
        for value, times in distribution or ():
            self.raw.extend([value] * times)
            self.raw_sorted = False


def percentile(values: list[float], rank: float, presorted: bool = False) -> float | None:
    """Nearest-rank percentile (``rank`` in 0..100) of the raw values, None if there are none."""
    if not values:
        return None
    ordered = values if presorted else sorted(values)
    position = max(1, math.ceil(rank / 100 * len(ordered)))
    return ordered[min(position, len(ordered)) - 1]


def statistic_value(data: PeriodData | None, statistic: str | None, extended: str | None) -> float | None:
    """The alarm's statistic over one period, None when the period has no datapoint for it."""
    if data is None or data.count == 0:
        return None
    if extended:
        match = _PERCENTILE.match(extended)
        if not match:
            return None
        value = percentile(data.sorted_raw(), float(match.group(1)), presorted=True)
        # Distributions are rounded (3 significant digits): a percentile never leaves the period's range.
        return None if value is None else min(max(value, data.low), data.high)
    return {"SampleCount": data.count, "Sum": data.total, "Minimum": data.low, "Maximum": data.high,
            "Average": data.total / data.count}.get(statistic or "")


@dataclass(frozen=True)
class Datapoint:
    start: datetime  # the period's start (UTC)
    value: float | None  # None: no data in this period


@dataclass(frozen=True)
class Rule:
    """The evaluation settings of one alarm, as PutMetricAlarm stored them."""

    comparison_operator: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int | None = None
    treat_missing_data: str | None = None
    statistic: str | None = None
    extended_statistic: str | None = None
    period: int = 60

    @property
    def m(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def range_periods(self) -> int:
        return self.evaluation_periods + EXTRA_RANGE_PERIODS

    @property
    def missing(self) -> str:
        return self.treat_missing_data or "missing"

    def breaches(self, value: float) -> bool:
        return OPERATORS[self.comparison_operator][1](value, self.threshold)


@dataclass(frozen=True)
class Outcome:
    """The evaluation's verdict; ``state`` None means keep the current state (``ignore``)."""

    state: str | None
    reason: str
    reason_data: dict[str, Any]


def evaluate(rule: Rule, datapoints: list[Datapoint], current: str, query_date: datetime) -> Outcome:
    """Evaluate ``datapoints`` (the evaluation range, oldest first) against ``rule``."""
    window = datapoints[-rule.range_periods:]
    present = [point for point in window if point.value is not None][-rule.evaluation_periods:]
    filled = rule.evaluation_periods - len(present)
    breaching = [point for point in present if rule.breaches(point.value)]
    n_breaching = len(breaching) + (filled if rule.missing == "breaching" else 0)
    state: str | None
    if not present and rule.missing in ("missing", "ignore"):
        state = "INSUFFICIENT_DATA" if rule.missing == "missing" else None
    elif n_breaching >= rule.m:
        state = "ALARM"
    elif rule.missing == "missing" and filled and len(present) < rule.m and len(breaching) == len(present):
        state = "ALARM"
    elif rule.missing == "ignore" and filled and breaching:
        state = None  # the real datapoints alone cannot decide
    else:
        state = "OK"
    reason = state_reason(rule, state or current, current, present, breaching, filled)
    return Outcome(state, reason, reason_data(rule, window, present, query_date))


def state_reason(rule: Rule, state: str, previous: str, present: list[Datapoint], breaching: list[Datapoint],
                 filled: int) -> str:
    """AWS's words, e.g. "Threshold Crossed: 1 out of the last 1 datapoints [5.0 (30/11/26 12:00:00)] was
    greater than or equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition)."."""
    if state == "INSUFFICIENT_DATA":
        count = rule.evaluation_periods
        return f"Insufficient Data: {count} datapoint{_s(count)} {'was' if count == 1 else 'were'} unknown."
    if not present:
        treated = "Breaching" if rule.missing == "breaching" else "NonBreaching"
        return (f"Threshold Crossed: no datapoints were received for {filled} period{_s(filled)} and "
                f"{filled} missing datapoint{_s(filled)} {'was' if filled == 1 else 'were'} treated as [{treated}].")
    words = OPERATORS[rule.comparison_operator][0]
    if state == "ALARM":
        shown, verb, needed = breaching or present, words, rule.m
    else:
        shown = [point for point in present if point not in breaching]
        verb, needed = f"not {words}", rule.evaluation_periods - rule.m + 1
    listed = ", ".join(f"{_number(point.value)} ({point.start:%d/%m/%y %H:%M:%S})" for point in reversed(shown))
    return (f"Threshold Crossed: {len(shown)} out of the last {len(present)} datapoints [{listed}] "
            f"{'was' if len(shown) == 1 else 'were'} {verb} the threshold ({_number(rule.threshold)}) "
            f"(minimum {needed} datapoint{_s(needed)} for {previous} -> {state} transition).")


def reason_data(rule: Rule, window: list[Datapoint], present: list[Datapoint], query_date: datetime) -> dict[str, Any]:
    evaluated = window[-rule.evaluation_periods:]
    data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": aws_time(query_date),
        "startDate": aws_time(window[0].start) if window else aws_time(query_date),
    }
    if rule.extended_statistic:
        data["extendedStatistic"] = rule.extended_statistic
    else:
        data["statistic"] = rule.statistic
    data.update(period=rule.period, recentDatapoints=[point.value for point in present], threshold=rule.threshold)
    data["evaluatedDatapoints"] = [
        {"timestamp": aws_time(point.start), **({"value": point.value} if point.value is not None else {})}
        for point in reversed(evaluated)]
    return data


def aws_time(moment: datetime) -> str:
    """CloudWatch's timestamp format in alarm JSON: 2026-11-30T12:00:00.000+0000."""
    utc = moment.astimezone(timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}+0000"


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _number(value: float) -> str:
    return repr(float(value))


def _s(count: int) -> str:
    return "" if count == 1 else "s"
