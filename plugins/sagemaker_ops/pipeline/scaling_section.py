"""The ``scaling:`` section: Application Auto Scaling of each variant (sagemaker-api.md §8).

::

    scaling:
      variants:
        - name: AllTraffic              # a variant of endpoint.variants
          min_capacity: 1               # instances (provisioned concurrency for a serverless variant)
          max_capacity: 4
          target_tracking:
            - metric: SageMakerVariantInvocationsPerInstance   # a predefined metric, or
              # customized_metric: {metric: ApproximateBacklogSizePerInstance, statistic: Average}
              target_value: 10          # invocations per instance per minute
              scale_in_cooldown_seconds: 300
              scale_out_cooldown_seconds: 60
              disable_scale_in: false
          step_scaling:                 # a policy driven by an alarm this release creates
            - name: backlog-without-capacity
              adjustment_type: ChangeInCapacity   # | PercentChangeInCapacity | ExactCapacity
              steps: [{lower_bound: 0, adjustment: 1}]  # bounds relative to the alarm's threshold
              cooldown_seconds: 300
              alarm: {metric: HasBacklogWithoutCapacity, statistic: Average, threshold: 1,
                      comparison: GreaterThanOrEqualToThreshold, evaluation_periods: 2}
          scheduled_actions:
            - name: business-hours
              schedule: cron(0 8 ? * MON-FRI *)  # or at(...), rate(...)
              timezone: Europe/Berlin
              min_capacity: 2
              max_capacity: 4

Checked before any AWS call against AWS's rules, each problem naming its field and the fix:
min <= max, a real-time variant keeps at least one instance (only asynchronous endpoints scale to
zero, and then need a step policy on ``HasBacklogWithoutCapacity`` to scale from zero), a predefined
metric fits the variant (instances or serverless provisioned concurrency), SageMaker metrics by their
real names, step intervals without gaps or overlaps, schedule expressions and time zones.
:func:`parse_scaling` reads the same section given as a dict (the operator's argument), checked against
the live endpoint instead of the file's ``endpoint:`` section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from functools import cache
from zoneinfo import available_timezones

from sagemaker_ops.pipeline.fields import FieldReader, PipelineConfigError, join
from sagemaker_ops.pipeline.promotion_section import COMPARISONS, MISSING_DATA, read_alarm_periods
from sagemaker_rules.scaling_rules import (
    ADJUSTMENT_TYPES,
    ASYNC_ONLY_METRICS,
    DEFAULT_COOLDOWN_SECONDS,
    INSTANCE_COUNT,
    METRIC_AGGREGATION_TYPES,
    METRIC_DIMENSIONS,
    NAME_PATTERN,
    PREDEFINED_METRICS,
    PROVISIONED_CONCURRENCY,
    SCHEDULE_EXPECTATION,
    SCHEDULE_PATTERN,
    STATISTICS,
)

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
SCALE_FROM_ZERO_METRIC = "HasBacklogWithoutCapacity"
MAX_CAPACITY_LIMIT = 1000
VARIANT_FIELDS = {"name", "min_capacity", "max_capacity", "target_tracking", "step_scaling", "scheduled_actions"}
TARGET_FIELDS = {"name", "metric", "customized_metric", "target_value", "scale_in_cooldown_seconds",
                 "scale_out_cooldown_seconds", "disable_scale_in"}
CUSTOM_METRIC_FIELDS = {"metric", "namespace", "statistic", "dimensions", "unit"}
STEP_FIELDS = {"name", "adjustment_type", "steps", "cooldown_seconds", "metric_aggregation_type",
               "min_adjustment_magnitude", "alarm"}
ALARM_FIELDS = {"metric", "namespace", "statistic", "dimensions", "threshold", "comparison", "period",
                "evaluation_periods", "datapoints_to_alarm", "treat_missing_data"}
SCHEDULED_FIELDS = {"name", "schedule", "timezone", "start_time", "end_time", "min_capacity", "max_capacity"}


@dataclass(frozen=True)
class MetricSpec:
    """A CloudWatch metric; ``dimensions`` None means the endpoint's (and variant's) as SageMaker publishes it."""

    metric: str
    namespace: str = SAGEMAKER_NAMESPACE
    statistic: str = "Average"
    dimensions: dict[str, str] | None = None
    unit: str | None = None


@dataclass(frozen=True)
class TargetTrackingSpec:
    """A target-tracking policy: on a predefined metric (``predefined``) or ``customized``."""

    name: str
    target_value: float
    predefined: str | None
    customized: MetricSpec | None
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int
    disable_scale_in: bool


@dataclass(frozen=True)
class StepAdjustment:
    """One step: bounds relative to the alarm's threshold (None = unbounded) and the capacity change."""

    lower_bound: float | None
    upper_bound: float | None
    adjustment: int


@dataclass(frozen=True)
class StepAlarmSpec:
    """The CloudWatch alarm that invokes a step policy (its AlarmActions name the policy)."""

    metric: MetricSpec
    threshold: float
    comparison: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str


@dataclass(frozen=True)
class StepScalingSpec:
    name: str
    adjustment_type: str
    steps: tuple[StepAdjustment, ...]
    cooldown_seconds: int
    metric_aggregation_type: str
    min_adjustment_magnitude: int | None
    alarm: StepAlarmSpec


@dataclass(frozen=True)
class ScheduledActionSpec:
    name: str
    schedule: str
    timezone: str
    start_time: str | None
    end_time: str | None
    min_capacity: int | None
    max_capacity: int | None


@dataclass(frozen=True)
class VariantScalingSpec:
    """How one variant scales; ``dimension`` is set from the endpoint (instances or provisioned concurrency)."""

    variant: str
    min_capacity: int
    max_capacity: int
    target_tracking: tuple[TargetTrackingSpec, ...] = ()
    step_scaling: tuple[StepScalingSpec, ...] = ()
    scheduled_actions: tuple[ScheduledActionSpec, ...] = ()
    dimension: str = INSTANCE_COUNT

    @property
    def policy_names(self) -> list[str]:
        return [policy.name for policy in (*self.target_tracking, *self.step_scaling)]


@dataclass(frozen=True)
class ScalingConfig:
    """Every scaled variant; ``document`` is the section as written (what the release passes its operator)."""

    variants: tuple[VariantScalingSpec, ...]
    document: dict[str, Any] = field(default_factory=dict, compare=False)


def read_scaling(fields: FieldReader, data: dict, path: str = "scaling") -> ScalingConfig | None:
    fields.no_unknown_keys(data, path, {"variants"})
    fields.item_list(data, path, "variants", "variants (name, min_capacity, max_capacity, policies)")
    variants = _items(fields, data, path, "variants", _variant)
    fields.unique([variant.variant for variant in variants], join(path, "variants"), "variant names")
    return ScalingConfig(tuple(variants), document=data) if variants else None


def _variant(fields: FieldReader, data: dict, path: str) -> VariantScalingSpec | None:
    before = len(fields.errors)
    fields.no_unknown_keys(data, path, VARIANT_FIELDS)
    name = fields.string(data, path, "name", expectation="the name of a variant in endpoint.variants")
    low = fields.integer(data, path, "min_capacity", minimum=0, maximum=MAX_CAPACITY_LIMIT)
    high = fields.integer(data, path, "max_capacity", minimum=1, maximum=MAX_CAPACITY_LIMIT)
    if None not in (low, high) and low > high:
        fields.fail(join(path, "min_capacity"), f"must be at most max_capacity ({high}); lower it or raise "
                    "max_capacity", low)
    tracking = _items(fields, data, path, "target_tracking", _target_tracking)
    steps = _items(fields, data, path, "step_scaling", _step_scaling)
    scheduled = _items(fields, data, path, "scheduled_actions", _scheduled)
    fields.unique([p.name for p in (*tracking, *steps)], path, "policy names across target_tracking and "
                  "step_scaling (set name: on one of them)")
    fields.unique([action.name for action in scheduled], join(path, "scheduled_actions"), "names")
    if len(fields.errors) > before:
        return None
    return VariantScalingSpec(variant=name, min_capacity=low, max_capacity=high, target_tracking=tuple(tracking),
                              step_scaling=tuple(steps), scheduled_actions=tuple(scheduled))


def _items(fields: FieldReader, data: dict, path: str, key: str, read) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        fields.fail(join(path, key), "must be a list", value)
        return []
    items = []
    for index, item in enumerate(value):
        item_path = f"{join(path, key)}[{index}]"
        if not isinstance(item, Mapping):
            fields.fail(item_path, "must be a mapping", item)
            continue
        parsed = read(fields, dict(item), item_path)
        if parsed is not None:
            items.append(parsed)
    return items


def _name(fields: FieldReader, data: dict, path: str, default: str) -> str | None:
    return fields.string(data, path, "name", default=default[:256], pattern=NAME_PATTERN,
                         expectation="a name of letters, digits, '.', '_' or '-'")


def _target_tracking(fields: FieldReader, data: dict, path: str) -> TargetTrackingSpec | None:
    before = len(fields.errors)
    fields.no_unknown_keys(data, path, TARGET_FIELDS)
    predefined, customized = None, None
    if ("metric" in data) == ("customized_metric" in data):
        fields.fail(path, f"needs exactly one of metric (a predefined metric: {', '.join(PREDEFINED_METRICS)}) or "
                    "customized_metric")
    elif "metric" in data:
        predefined = data["metric"]
        if predefined not in PREDEFINED_METRICS:
            fields.fail(join(path, "metric"), f"must be a predefined metric ({', '.join(PREDEFINED_METRICS)}); "
                        "for any other metric use customized_metric", predefined)
    else:
        customized = _metric(fields, data["customized_metric"], join(path, "customized_metric"), CUSTOM_METRIC_FIELDS)
    target = data.get("target_value")
    if not isinstance(target, int | float) or isinstance(target, bool) or target <= 0:
        fields.fail(join(path, "target_value"), "must be a number > 0 (the metric's value to hold)",
                    target if "target_value" in data else [])
    cooldowns = {key: fields.integer(data, path, key, minimum=0, maximum=86400, default=DEFAULT_COOLDOWN_SECONDS)
                 for key in ("scale_in_cooldown_seconds", "scale_out_cooldown_seconds")}
    disable = fields.boolean(data, path, "disable_scale_in", default=False)
    metric_name = predefined or (customized.metric if customized else "metric")
    name = _name(fields, data, path, f"target-tracking-{metric_name}")
    if len(fields.errors) > before:
        return None
    return TargetTrackingSpec(name=name, target_value=float(target), predefined=predefined, customized=customized,
                              disable_scale_in=disable, **cooldowns)


def _metric(fields: FieldReader, value: Any, path: str, allowed: set[str]) -> MetricSpec | None:
    if not isinstance(value, Mapping):
        fields.fail(path, "must be a mapping (metric, namespace, statistic, dimensions)", value)
        return None
    data = dict(value)
    fields.no_unknown_keys(data, path, allowed)
    metric = fields.string(data, path, "metric", expectation="a CloudWatch metric name")
    namespace = fields.string(data, path, "namespace", default=SAGEMAKER_NAMESPACE)
    known = METRIC_DIMENSIONS.get(namespace)
    if metric and known is not None and metric not in known:
        fields.fail(join(path, "metric"), f"is not a metric SageMaker publishes in {namespace} (known: "
                    f"{', '.join(sorted(known))})", metric)
    if known is None and "dimensions" not in data:
        fields.fail(join(path, "dimensions"), f"is required for a metric outside SageMaker's namespaces "
                    f"({', '.join(METRIC_DIMENSIONS)})")
    statistic = fields.choice(data, path, "statistic", STATISTICS, default="Average")
    dimensions = fields.string_map(data, path, "dimensions") if "dimensions" in data else None
    unit = fields.string(data, path, "unit", default=None)
    return MetricSpec(metric=metric, namespace=namespace, statistic=statistic, dimensions=dimensions, unit=unit)


def _step_scaling(fields: FieldReader, data: dict, path: str) -> StepScalingSpec | None:
    before = len(fields.errors)
    fields.no_unknown_keys(data, path, STEP_FIELDS)
    adjustment_type = fields.choice(data, path, "adjustment_type", ADJUSTMENT_TYPES, default="ChangeInCapacity")
    steps = _steps(fields, data, path, adjustment_type)
    magnitude = None
    if "min_adjustment_magnitude" in data:
        if adjustment_type != "PercentChangeInCapacity":
            fields.fail(join(path, "min_adjustment_magnitude"), "applies to adjustment_type PercentChangeInCapacity "
                        f"only (this one is {adjustment_type}); remove it")
        magnitude = fields.integer(data, path, "min_adjustment_magnitude", minimum=1)
    alarm = _alarm(fields, data.get("alarm"), join(path, "alarm"))
    name = _name(fields, data, path, f"step-{alarm.metric.metric if alarm and alarm.metric else 'alarm'}")
    spec = dict(name=name, adjustment_type=adjustment_type, steps=steps, min_adjustment_magnitude=magnitude,
                alarm=alarm,
                cooldown_seconds=fields.integer(data, path, "cooldown_seconds", minimum=0, maximum=86400,
                                                default=DEFAULT_COOLDOWN_SECONDS),
                metric_aggregation_type=fields.choice(data, path, "metric_aggregation_type",
                                                      METRIC_AGGREGATION_TYPES, default="Average"))
    return None if len(fields.errors) > before else StepScalingSpec(**spec)


def _steps(fields: FieldReader, data: dict, path: str, adjustment_type: str | None) -> tuple[StepAdjustment, ...]:
    if not isinstance(data.get("steps"), list) or not data["steps"]:
        fields.fail(join(path, "steps"), "must be a non-empty list of {lower_bound, upper_bound, adjustment} (bounds "
                    "relative to the alarm's threshold; leave one out for no bound)", data.get("steps", []))
        return ()
    steps = _items(fields, data, path, "steps", lambda f, step, item_path: _step(f, step, item_path, adjustment_type))
    _check_intervals(fields, join(path, "steps"), steps)
    return tuple(steps)


def _step(fields: FieldReader, step: dict, path: str, adjustment_type: str | None) -> StepAdjustment | None:
    fields.no_unknown_keys(step, path, {"lower_bound", "upper_bound", "adjustment"})
    bounds = [step.get(key) for key in ("lower_bound", "upper_bound")]
    if any(b is not None and (not isinstance(b, int | float) or isinstance(b, bool)) for b in bounds):
        fields.fail(path, "bounds must be numbers (or left out for no bound)", step)
        return None
    minimum = 0 if adjustment_type == "ExactCapacity" else -MAX_CAPACITY_LIMIT
    adjustment = fields.integer(step, path, "adjustment", minimum=minimum, maximum=MAX_CAPACITY_LIMIT)
    return None if adjustment is None else StepAdjustment(*[None if b is None else float(b) for b in bounds],
                                                          adjustment)


def _check_intervals(fields: FieldReader, path: str, steps: list[StepAdjustment]) -> None:
    """AWS: intervals must not overlap nor leave gaps; at most one unbounded below and one above."""
    low, high = float("-inf"), float("inf")
    ordered = sorted(steps, key=lambda s: low if s.lower_bound is None else s.lower_bound)
    for step in steps:
        if step.lower_bound is not None and step.upper_bound is not None and step.lower_bound >= step.upper_bound:
            fields.fail(path, f"has a step whose lower_bound ({step.lower_bound:g}) is not below its upper_bound "
                        f"({step.upper_bound:g})")
            return
    for before, after in zip(ordered, ordered[1:]):
        end = high if before.upper_bound is None else before.upper_bound
        start = low if after.lower_bound is None else after.lower_bound
        if end != start:
            kind = "overlap" if end > start else "leave a gap"
            fields.fail(path, f"must not {kind}: one step ends at {end:g}, the next starts at {start:g}; make each "
                        "upper_bound the next lower_bound")
            return


def _alarm(fields: FieldReader, value: Any, path: str) -> StepAlarmSpec | None:
    metric = _metric(fields, value, path, ALARM_FIELDS)
    if metric is None:
        return None
    data = dict(value)
    threshold = data.get("threshold")
    if not isinstance(threshold, int | float) or isinstance(threshold, bool):
        fields.fail(join(path, "threshold"), "must be a number", threshold if "threshold" in data else [])
        return None
    evaluation, datapoints, period = read_alarm_periods(fields, data, path)
    return StepAlarmSpec(metric=metric, threshold=float(threshold), period=period, evaluation_periods=evaluation,
                         datapoints_to_alarm=datapoints,
                         comparison=fields.choice(data, path, "comparison", COMPARISONS,
                                                  default="GreaterThanOrEqualToThreshold"),
                         treat_missing_data=fields.choice(data, path, "treat_missing_data", MISSING_DATA,
                                                          default="missing"))


def _scheduled(fields: FieldReader, data: dict, path: str) -> ScheduledActionSpec | None:
    before = len(fields.errors)
    fields.no_unknown_keys(data, path, SCHEDULED_FIELDS)
    name = fields.string(data, path, "name", pattern=NAME_PATTERN,
                         expectation="a name of letters, digits, '.', '_' or '-'")
    schedule = fields.string(data, path, "schedule", pattern=SCHEDULE_PATTERN, expectation=SCHEDULE_EXPECTATION)
    zone = fields.string(data, path, "timezone", default="UTC")
    if zone and zone != "UTC" and zone not in _time_zones():
        fields.fail(join(path, "timezone"), "must be an IANA time zone like Europe/Berlin", zone)
    times = {}
    for key in ("start_time", "end_time"):
        value = data.get(key)
        if value is not None:
            try:
                times[key] = (datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value)
            except ValueError:
                fields.fail(join(path, key), "must be an ISO date-time like 2026-01-31T08:00:00Z", value)
    if len(times) == 2 and _comparable(times["start_time"]) >= _comparable(times["end_time"]):
        fields.fail(join(path, "end_time"), "must be after start_time", str(data["end_time"]))
    low = fields.integer(data, path, "min_capacity", minimum=0, maximum=MAX_CAPACITY_LIMIT, default=None)
    high = fields.integer(data, path, "max_capacity", minimum=1, maximum=MAX_CAPACITY_LIMIT, default=None)
    if low is None and high is None:
        fields.fail(path, "needs min_capacity and/or max_capacity (what the action sets)")
    if low is not None and high is not None and low > high:
        fields.fail(join(path, "min_capacity"), f"must be at most max_capacity ({high})", low)
    if len(fields.errors) > before:
        return None
    return ScheduledActionSpec(name=name, schedule=schedule, timezone=zone,
                               start_time=_iso(times.get("start_time")), end_time=_iso(times.get("end_time")),
                               min_capacity=low, max_capacity=high)


def _comparable(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.now().astimezone().tzinfo)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def check_scaling_fits_endpoint(fields: FieldReader, scaling: ScalingConfig | None, endpoint: Any) -> ScalingConfig:
    """The rules across sections: each scaled variant exists, and what it may scale on given how it is hosted.

    Returns the config with each variant's scalable dimension set (serverless: provisioned concurrency)."""
    if scaling is None or endpoint is None:
        return scaling
    hosted = {variant.name: variant for variant in endpoint.variants}
    is_async = endpoint.async_inference is not None
    resolved = []
    for index, spec in enumerate(scaling.variants):
        path = f"scaling.variants[{index}]"
        variant = hosted.get(spec.variant)
        if variant is None:
            fields.fail(join(path, "name"), f"must name a variant of endpoint.variants ({', '.join(hosted)})",
                        spec.variant)
            continue
        dimension = PROVISIONED_CONCURRENCY if variant.serverless else INSTANCE_COUNT
        _check_capacity(fields, path, spec, variant, is_async)
        _check_metrics(fields, path, spec, dimension, is_async)
        resolved.append(VariantScalingSpec(**{**_shallow(spec), "dimension": dimension}))
    return ScalingConfig(tuple(resolved), document=scaling.document)


def _check_capacity(fields: FieldReader, path: str, spec: VariantScalingSpec, variant: Any, is_async: bool) -> None:
    if variant.serverless is not None:
        provisioned = getattr(variant.serverless, "provisioned_concurrency", None)
        if not provisioned:
            fields.fail(path, f"scales serverless variant {variant.name} by provisioned concurrency: set "
                        f"endpoint.variants[].serverless.provisioned_concurrency")
        if spec.min_capacity < 1:
            fields.fail(join(path, "min_capacity"), "must be >= 1 for provisioned concurrency", spec.min_capacity)
        if spec.max_capacity > variant.serverless.max_concurrency:
            fields.fail(join(path, "max_capacity"), f"must be at most the variant's serverless.max_concurrency "
                        f"({variant.serverless.max_concurrency})", spec.max_capacity)
        return
    if spec.min_capacity < 1 and not is_async:
        fields.fail(join(path, "min_capacity"), "must be >= 1: only asynchronous endpoints scale to zero "
                    "(set 1, or serve with endpoint.async_inference)", spec.min_capacity)
    if spec.min_capacity == 0 and is_async and not any(
            step.alarm.metric.metric == SCALE_FROM_ZERO_METRIC for step in spec.step_scaling):
        fields.fail(join(path, "step_scaling"), f"needs a step policy on {SCALE_FROM_ZERO_METRIC} with min_capacity "
                    "0: target tracking alone never scales out from zero instances")
    count = variant.instance_count
    if count is not None and not spec.min_capacity <= count <= spec.max_capacity:
        fields.fail(join(path, "min_capacity"), f"and max_capacity must include the variant's instance_count "
                    f"({count}); change one of them", [spec.min_capacity, spec.max_capacity])


def _check_metrics(fields: FieldReader, path: str, spec: VariantScalingSpec, dimension: str, is_async: bool) -> None:
    for index, policy in enumerate(spec.target_tracking):
        policy_path = f"{path}.target_tracking[{index}]"
        if policy.predefined and PREDEFINED_METRICS[policy.predefined] != dimension:
            fitting = [name for name, dim in PREDEFINED_METRICS.items() if dim == dimension]
            kind = "an instance-based" if dimension == INSTANCE_COUNT else "a serverless"
            fields.fail(join(policy_path, "metric"), f"does not fit {kind} variant (use {', '.join(fitting)})",
                        policy.predefined)
        if policy.customized:
            _check_async_metric(fields, join(policy_path, "customized_metric"), policy.customized, is_async)
    for index, step in enumerate(spec.step_scaling):
        _check_async_metric(fields, f"{path}.step_scaling[{index}].alarm", step.alarm.metric, is_async)


def _check_async_metric(fields: FieldReader, path: str, metric: MetricSpec, is_async: bool) -> None:
    if metric.namespace == SAGEMAKER_NAMESPACE and metric.metric in ASYNC_ONLY_METRICS and not is_async:
        fields.fail(join(path, "metric"), "is published by asynchronous endpoints only (this endpoint has no "
                    "endpoint.async_inference)", metric.metric)


def _shallow(spec: Any) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def parse_scaling(value: Any, endpoint: Any = None, where: str = "scaling") -> ScalingConfig:
    """A ``scaling:`` section given as YAML-shaped dict; PipelineConfigError listing every problem."""
    fields = FieldReader(where, Path("."))
    data = fields.mapping(value, where, required=True)
    config = read_scaling(fields, data, path="scaling") if not fields.errors else None
    config = check_scaling_fits_endpoint(fields, config, endpoint)
    if fields.errors or config is None:
        raise PipelineConfigError(fields.errors)
    return config


@cache
def _time_zones() -> frozenset[str]:
    """The IANA zone names (walking the tz database takes tens of ms: once per process, not per action)."""
    return frozenset(available_timezones())
