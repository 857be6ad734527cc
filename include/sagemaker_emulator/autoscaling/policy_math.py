"""How Application Auto Scaling turns an alarm into a capacity: pure functions, unit-tested on their own.

Where AWS documents the rule we follow it (application-auto-scaling-step-scaling-policies,
-target-tracking): step bounds are relative to the alarm threshold (above it the lower bound is
inclusive and the upper exclusive, below it the reverse, a missing bound is infinity);
PercentChangeInCapacity rounds a change above 1 down, one between 0 and 1 up to 1, one between -1 and 0
to -1 and one below -1 towards zero; MinAdjustmentMagnitude lifts a percent change to at least that
many; the result is clamped to [MinCapacity, MaxCapacity].
Where AWS is silent we decide: target tracking's capacity is ``ceil(capacity x metric / target)``
(the usual proportional rule; rounding up is the conservative direction both ways).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class Step:
    lower: float | None
    upper: float | None
    adjustment: int

    @classmethod
    def of(cls, aws: dict[str, Any]) -> "Step":
        return cls(_number(aws.get("MetricIntervalLowerBound")), _number(aws.get("MetricIntervalUpperBound")),
                   int(aws["ScalingAdjustment"]))

    def holds(self, above_threshold_by: float) -> bool:
        """Does the metric's distance from the threshold fall in this step's interval?"""
        value = above_threshold_by
        if value >= 0:
            return (self.lower is None or value >= self.lower) and (self.upper is None or value < self.upper)
        return (self.lower is None or value > self.lower) and (self.upper is None or value <= self.upper)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def clamp(capacity: int, low: int, high: int) -> int:
    return max(low, min(high, capacity))


def aggregate(values: Iterable[float], how: str | None) -> float | None:
    """MetricAggregationType over the alarm's evaluated datapoints (Average by default)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    if how == "Minimum":
        return min(present)
    if how == "Maximum":
        return max(present)
    return sum(present) / len(present)


def matching_step(steps: list[Step], above_threshold_by: float) -> Step | None:
    return next((step for step in steps if step.holds(above_threshold_by)), None)


def percent_change(capacity: int, percent: float, min_magnitude: int | None) -> int:
    """The change a PercentChangeInCapacity adjustment makes, rounded as AWS rounds it."""
    change = capacity * percent / 100.0
    if change > 1:
        rounded = math.floor(change)
    elif change > 0:
        rounded = 1
    elif change == 0:
        rounded = 0
    elif change > -1:
        rounded = -1
    else:
        rounded = math.ceil(change)
    if min_magnitude and 0 < abs(rounded) < min_magnitude:
        rounded = int(math.copysign(min_magnitude, rounded))
    return rounded


def stepped_capacity(capacity: int, adjustment_type: str, adjustment: int, min_magnitude: int | None) -> int:
    """The capacity a step asks for, before clamping."""
    if adjustment_type == "ExactCapacity":
        return adjustment
    if adjustment_type == "PercentChangeInCapacity":
        return capacity + percent_change(capacity, adjustment, min_magnitude)
    return capacity + adjustment  # ChangeInCapacity


def tracking_capacity(capacity: int, metric: float, target: float) -> int:
    """The capacity that brings a per-unit metric back to its target (proportional, rounded up)."""
    if capacity <= 0 or target <= 0:
        return capacity
    return math.ceil(round(capacity * metric / target, 9))


def validate_steps(steps: list[Step]) -> str | None:
    """Why these step adjustments are invalid (AWS: no overlap, no gap, at most one open end each way),
    None if they are fine."""
    if not steps:
        return "StepAdjustments must contain at least one step adjustment."
    ordered = sorted(steps, key=lambda s: -math.inf if s.lower is None else s.lower)
    for step in ordered:
        if step.lower is None and step.upper is None and len(steps) > 1:
            return "A step adjustment without lower and upper bounds must be the only step adjustment."
        if step.lower is not None and step.upper is not None and step.lower >= step.upper:
            return (f"MetricIntervalLowerBound ({step.lower}) must be less than MetricIntervalUpperBound "
                    f"({step.upper}) in a step adjustment.")
    for before, after in zip(ordered, ordered[1:]):
        if before.upper is None or after.lower is None or before.upper != after.lower:
            return ("Step adjustments must not overlap or leave gaps: each MetricIntervalUpperBound must equal "
                    "the next step's MetricIntervalLowerBound.")
    return None
