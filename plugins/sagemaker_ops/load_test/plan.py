"""What a load test does (the plan handed to the Locust process) and how its measurements are summed up.

Pure Python, shared by the Airflow side (which builds and checks the plan) and the Locust process
(which follows it and summarises what it measured).

A traffic shape becomes a list of **stages**, each measured on its own (the per-step curve):

* ``constant``: ``{value, duration_seconds}``;
* ``ramp``: ``{start, end, duration_seconds, steps}``: a staircase from ``start`` to ``end``;
* ``steps``: ``{start, step, count, step_seconds}``: ``start``, ``start + step``, ...;
* ``spike``: ``{base, peak, base_seconds, peak_seconds}``: base, peak, base again.

In the closed model (``model: users``) a value is a number of Locust users, each sending its next
request when the previous one is answered (what Inference Recommender's "users" do). In the open
model (``model: arrival_rate``) a value is requests per second on a fixed timeline: request *i* of
a stage is due at ``stage_start + i / rate`` whether or not earlier ones were answered, and its
latency is counted from that intended time (wrk2's method), so a slow server's queueing shows in
the latency instead of silently slowing the generator down (coordinated omission).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SHAPES = ("constant", "ramp", "steps", "spike")
MODELS = ("users", "arrival_rate", "async")
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99.9": 99.9}
SHAPE_FIELDS = {
    "constant": {"value", "duration_seconds"},
    "ramp": {"start", "end", "duration_seconds", "steps"},
    "steps": {"start", "step", "count", "step_seconds"},
    "spike": {"base", "peak", "base_seconds", "peak_seconds"},
}


class LoadTestPlanError(ValueError):
    """A traffic shape or load-test setting is invalid (the message names the field)."""


@dataclass(frozen=True)
class Stage:
    """One step of the traffic shape: ``value`` users (closed model) or requests per second (open model)."""

    name: str
    duration_seconds: float
    value: float


@dataclass(frozen=True)
class LoadTestPlan:
    """Everything the Locust process needs (JSON-serialisable; credentials travel by environment only)."""

    runtime_url: str  # e.g. https://runtime.sagemaker.us-east-1.amazonaws.com, or the emulator's address
    region: str
    endpoint_name: str
    payload: str
    content_type: str
    accept: str
    model: str
    stages: tuple[Stage, ...]
    target_variant: str | None = None
    max_in_flight: int = 64  # open model: connections (a request waits for one: it is then late)
    late_after_ms: float = 10.0  # open model: sent later than this after its intended time counts as late
    idle_seconds: float = 5.0  # a request after this long with nothing in flight is "after idle" (a cold start)
    report_interval_seconds: float = 1.0
    async_input_location: str | None = None  # async model: the S3 URI of the request body
    async_poll_seconds: float = 0.2
    async_timeout_seconds: float = 120.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return sum(stage.duration_seconds for stage in self.stages)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadTestPlan:
        return cls(**{**data, "stages": tuple(Stage(**stage) for stage in data["stages"])})


def build_stages(shape: dict[str, Any]) -> tuple[Stage, ...]:
    """The stages of a traffic shape (module docstring); :class:`LoadTestPlanError` naming a bad field."""
    kind = shape.get("kind")
    if kind not in SHAPES:
        raise LoadTestPlanError(f"traffic_shape.kind must be one of {', '.join(SHAPES)}, got {kind!r}")
    unknown = set(shape) - SHAPE_FIELDS[kind] - {"kind"}
    missing = SHAPE_FIELDS[kind] - set(shape) - {"steps"}
    if unknown or missing:
        problem = f"unknown {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
        raise LoadTestPlanError(f"traffic_shape of kind {kind} takes {', '.join(sorted(SHAPE_FIELDS[kind]))}: "
                                f"{problem}")
    number = lambda key, minimum=0.0: _number(shape, key, minimum)  # noqa: E731
    if kind == "constant":
        return (Stage("constant", number("duration_seconds", 0.1), number("value", 0.001)),)
    if kind == "ramp":
        steps = int(number("steps", 1)) if "steps" in shape else 5
        start, end, duration = number("start", 0.001), number("end", 0.001), number("duration_seconds", 0.1)
        values = [start + (end - start) * index / max(steps - 1, 1) for index in range(steps)]
        return tuple(Stage(f"ramp {index + 1}/{steps}", duration / steps, value) for index, value in enumerate(values))
    if kind == "steps":
        start, step, seconds = number("start", 0.001), number("step"), number("step_seconds", 0.1)
        return tuple(Stage(f"step {index + 1}", seconds, start + step * index)
                     for index in range(int(number("count", 1))))
    base, peak = number("base", 0.001), number("peak", 0.001)
    return (Stage("base", number("base_seconds", 0.1), base), Stage("spike", number("peak_seconds", 0.1), peak),
            Stage("after spike", shape["base_seconds"], base))


def _number(shape: dict[str, Any], key: str, minimum: float) -> float:
    value = shape[key]
    if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
        raise LoadTestPlanError(f"traffic_shape.{key} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def users_of(stage: Stage) -> int:
    """A closed-model stage's value as a whole number of users (at least one)."""
    return max(1, round(stage.value))


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """Nearest-rank percentiles, mean and max of raw latencies (milliseconds); {} for none.

    Raw values, not buckets: a few hundred thousand floats per test fit in memory, and the tail
    (p99.9) is then exact rather than rounded to a bucket.
    """
    if not values:
        return {}
    ordered = sorted(values)
    summary = {name: ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] for name, q in PERCENTILES.items()}
    summary["mean"] = sum(ordered) / len(ordered)
    summary["max"] = ordered[-1]
    return {name: round(value, 3) for name, value in summary.items()}


def capacity(steps: Sequence[dict[str, Any]], max_error_rate: float = 0.01) -> dict[str, Any] | None:
    """The step with the highest throughput among those that served (error rate within ``max_error_rate``):
    the measured capacity, with its latency (what Inference Recommender reports as MaxInvocations and
    ModelLatency at the plateau). None when no step served."""
    served = [step for step in steps if step["requests"] and step["errors"] / step["requests"] <= max_error_rate]
    return max(served, key=lambda step: step["throughput_rps"], default=None)
