"""The ``promotion:`` section: how a new version replaces the live one, and which alarms roll it back.

::

    promotion:
      strategy: canary                 # all_at_once | canary | linear | rolling
      canary_size: {instance_count: 1} # or {capacity_percent: 25}; linear_step / rolling_batch likewise
      wait_interval_seconds: 60        # bake after each traffic step
      termination_wait_seconds: 60     # final bake before the old fleet stops
      max_execution_timeout_seconds: 1200 # default; must fit in endpoint.waiter (delay x attempts)
      alarms:
        - metric: Invocation5XXErrors  # AWS/SageMaker metrics get the endpoint's dimensions
          threshold: 1
        - metric: ModelLatency
          percentile: p99
          fleet: green                 # only the new fleet (EndpointConfigName dimension)
          threshold: 200000            # microseconds

The same reader validates the promote_variant DAG's conf and the operators' arguments
(:func:`parse_promotion`, :func:`parse_alarms`), so every entry point reports the same messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_ops.pipeline.fields import FieldReader, PipelineConfigError, join
from sagemaker_ops.shadow_comparison import ShadowThresholds

STRATEGIES = ("all_at_once", "canary", "linear", "rolling")
# The size field each strategy needs, and AWS's bounds on a capacity percent for it.
SIZE_FIELDS = {"canary": ("canary_size", 1, 50), "linear": ("linear_step", 10, 50), "rolling": ("rolling_batch", 5, 50)}
SIZE_KINDS = {"instance_count": "INSTANCE_COUNT", "capacity_percent": "CAPACITY_PERCENT"}
STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")
PERCENTILE_PATTERN = re.compile(r"^p(\d{1,2}(\.\d{1,2})?|100)$")
COMPARISONS = ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold",
               "LessThanOrEqualToThreshold")
MISSING_DATA = ("missing", "notBreaching", "breaching", "ignore")
FLEETS = ("all", "green")
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
ALARM_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
PROMOTION_FIELDS = {"strategy", "canary_size", "linear_step", "rolling_batch", "rollback_batch",
                    "wait_interval_seconds", "termination_wait_seconds", "max_execution_timeout_seconds", "alarms",
                    "shadow_test"}
SHADOW_TEST_FIELDS = {"requests", "share", "thresholds", "payloads", "instance_type", "instance_count"}
ALARM_FIELDS = {"name", "metric", "namespace", "statistic", "percentile", "fleet", "dimensions", "threshold",
                "comparison", "period", "evaluation_periods", "datapoints_to_alarm", "treat_missing_data"}


@dataclass(frozen=True)
class CapacitySize:
    """A canary size, linear step or rolling batch: ``kind`` instance_count or capacity_percent."""

    kind: str
    value: int

    def to_aws(self) -> dict[str, Any]:
        return {"Type": SIZE_KINDS[self.kind], "Value": self.value}


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm a promotion watches (an AutoRollbackConfiguration alarm)."""

    name: str
    metric: str
    namespace: str
    statistic: str | None
    percentile: str | None
    fleet: str  # all | green (green adds the EndpointConfigName dimension of the new config)
    dimensions: dict[str, str]
    threshold: float
    comparison: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str


@dataclass(frozen=True)
class ShadowTestConfig:
    """A shadow test the release runs before it updates a live endpoint (ShadowTestOperator's arguments)."""

    requests: int
    share: float
    thresholds: dict[str, float]
    payloads: tuple[Any, ...] = ()  # empty: the pipeline's JSON smoke-test payloads
    instance_type: str | None = None
    instance_count: int | None = None


@dataclass(frozen=True)
class PromotionConfig:
    """How a release replaces the live version: the traffic strategy and the alarms that roll it back."""

    strategy: str
    size: CapacitySize | None
    rollback_batch: CapacitySize | None
    wait_interval_seconds: int
    termination_wait_seconds: int
    max_execution_timeout_seconds: int
    alarms: tuple[AlarmSpec, ...] = field(default=())
    shadow_test: ShadowTestConfig | None = None

    def as_dict(self) -> dict[str, Any]:
        """The YAML form again (JSON-serialisable, for XCom and operator arguments)."""
        data: dict[str, Any] = {"strategy": self.strategy, "wait_interval_seconds": self.wait_interval_seconds,
                                "termination_wait_seconds": self.termination_wait_seconds,
                                "max_execution_timeout_seconds": self.max_execution_timeout_seconds,
                                "alarms": [alarm_as_dict(alarm) for alarm in self.alarms]}
        if self.size is not None:
            data[SIZE_FIELDS[self.strategy][0]] = {self.size.kind: self.size.value}
        if self.rollback_batch is not None:
            data["rollback_batch"] = {self.rollback_batch.kind: self.rollback_batch.value}
        return data


def alarm_as_dict(alarm: AlarmSpec) -> dict[str, Any]:
    """An alarm's YAML form, without the fields left unset."""
    return {key: value for key, value in asdict(alarm).items() if value not in (None, {})}


def read_promotion(fields: FieldReader, data: dict, path: str = "promotion") -> PromotionConfig | None:
    """The section's config; problems go to ``fields.errors`` (one line each, naming the field)."""
    fields.no_unknown_keys(data, path, PROMOTION_FIELDS)
    strategy = fields.choice(data, path, "strategy", STRATEGIES, default="canary")
    size = None
    for name, (size_field, lowest, highest) in SIZE_FIELDS.items():
        if name == strategy:
            size = _size(fields, data, path, size_field, lowest, highest, required=True)
        elif data.get(size_field) is not None:
            fields.fail(join(path, size_field), f"applies to strategy {name} only (strategy is {strategy}); remove it")
    rollback_batch = None
    if data.get("rollback_batch") is not None:
        if strategy == "rolling":
            rollback_batch = _size(fields, data, path, "rollback_batch", 5, 100, required=False)
        else:
            fields.fail(join(path, "rollback_batch"), f"applies to strategy rolling only (strategy is {strategy})")
    wait = fields.integer(data, path, "wait_interval_seconds", minimum=0, maximum=3600, default=60)
    termination = fields.integer(data, path, "termination_wait_seconds", minimum=0, maximum=3600, default=0)
    timeout = fields.integer(data, path, "max_execution_timeout_seconds", minimum=600, maximum=28800, default=1200)
    if None not in (wait, termination, timeout) and timeout <= wait + termination:
        fields.fail(join(path, "max_execution_timeout_seconds"), "must be larger than wait_interval_seconds + "
                    f"termination_wait_seconds ({wait + termination}); raise it or shorten the waits", timeout)
    alarms = read_alarms(fields, data.get("alarms"), join(path, "alarms"))
    shadow_test = None
    if data.get("shadow_test") is not None:
        shadow_path = join(path, "shadow_test")
        shadow_test = read_shadow_test(fields, fields.mapping(data["shadow_test"], shadow_path), shadow_path)
    if fields.errors:
        return None
    return PromotionConfig(strategy=strategy, size=size, rollback_batch=rollback_batch, wait_interval_seconds=wait,
                           termination_wait_seconds=termination, max_execution_timeout_seconds=timeout,
                           alarms=alarms, shadow_test=shadow_test)


def read_shadow_test(fields: FieldReader, data: dict, path: str) -> ShadowTestConfig | None:
    """``promotion.shadow_test``: how many requests, the share copied, the thresholds the shadow must meet."""
    errors_before = len(fields.errors)
    fields.no_unknown_keys(data, path, SHADOW_TEST_FIELDS)
    requests = fields.integer(data, path, "requests", minimum=1, maximum=10000, default=50)
    share = fields.number(data, path, "share", minimum=0.01, default=1.0)
    if isinstance(share, (int, float)) and share > 1:
        fields.fail(join(path, "share"), "is the share of requests copied to the shadow: at most 1", share)
    thresholds = data.get("thresholds")
    try:
        ShadowThresholds.parse(thresholds)
    except ValueError as error:  # "thresholds[.field] <what is wrong>": the field path goes in front
        field_name, message = str(error).rstrip(".").split(" ", 1)
        fields.fail(join(path, field_name), message)
    payloads = data.get("payloads", [])
    if not isinstance(payloads, list):
        fields.fail(join(path, "payloads"), "must be a list of request bodies (JSON values)", payloads)
    instance_type = fields.string(data, path, "instance_type", default=None)
    instance_count = fields.integer(data, path, "instance_count", minimum=1, default=None)
    if len(fields.errors) > errors_before:
        return None
    return ShadowTestConfig(requests=requests, share=float(share), thresholds=dict(thresholds),
                            payloads=tuple(payloads), instance_type=instance_type, instance_count=instance_count)


def check_shadow_test_fits(fields: FieldReader, promotion: PromotionConfig | None, endpoint: Any,
                           smoke_tests: Any) -> None:
    """A shadow test needs one instance-based variant (AWS's rule) and payloads: its own or JSON smoke tests'."""
    shadow = promotion.shadow_test if promotion is not None else None
    if shadow is None or endpoint is None:
        return
    path = "promotion.shadow_test"
    variants = endpoint.variants
    if len(variants) != 1 or variants[0].serverless is not None or endpoint.async_inference is not None:
        fields.fail(path, "needs an endpoint with exactly one instance-based, real-time production variant "
                    "(AWS's rule for shadow variants); remove shadow_test or the other variants")
    if not shadow.payloads and not shadow_payloads(shadow, smoke_tests or ()):
        fields.fail(join(path, "payloads"), "is required when no smoke test sends JSON (application/json); "
                    "give the request bodies to send")


def shadow_payloads(shadow: ShadowTestConfig, smoke_tests: Any) -> list[Any]:
    """The shadow test's request bodies: its own, else the JSON smoke tests' payloads."""
    if shadow.payloads:
        return list(shadow.payloads)
    return [json.loads(test.payload) for test in smoke_tests
            if test.content_type == "application/json" and not test.asynchronous and test.target_model is None
            and test.target_container_hostname is None and test.target_variant is None]


def _size(fields: FieldReader, data: dict, path: str, key: str, lowest: int, highest: int,
          required: bool) -> CapacitySize | None:
    value = data.get(key)
    field_path = join(path, key)
    expectation = "one of {instance_count: N} or {capacity_percent: P}"
    if value is None:
        if required:
            fields.fail(field_path, f"is required for this strategy ({expectation})")
        return None
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in SIZE_KINDS:
        fields.fail(field_path, f"must be {expectation}", value)
        return None
    kind, amount = next(iter(value.items()))
    maximum = highest if kind == "capacity_percent" else None
    checked = fields.integer(dict(value), field_path, kind, minimum=lowest if maximum else 1, maximum=maximum)
    return None if checked is None else CapacitySize(kind, checked)


def read_alarms(fields: FieldReader, value: Any, path: str) -> tuple[AlarmSpec, ...]:
    """1 to 10 alarms (AutoRollbackConfiguration's limit), each with a unique name."""
    if not isinstance(value, list) or not 1 <= len(value) <= 10:
        fields.fail(path or "alarms", "must be a list of 1 to 10 alarms (an alarm-less promotion cannot roll back)",
                    value if value is not None else [])
        return ()
    alarms = []
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            fields.fail(item_path, "must be a mapping (metric, threshold, ...)", item)
            continue
        alarm = _alarm(fields, dict(item), item_path)
        if alarm is not None:
            alarms.append(alarm)
    fields.unique([alarm.name for alarm in alarms], path or "alarms", "names (set name: on one of them)")
    return tuple(alarms)


def _alarm(fields: FieldReader, data: dict, path: str) -> AlarmSpec | None:
    errors_before = len(fields.errors)
    fields.no_unknown_keys(data, path, ALARM_FIELDS)
    metric = fields.string(data, path, "metric", expectation="a CloudWatch metric name, e.g. Invocation5XXErrors")
    namespace = fields.string(data, path, "namespace", default=SAGEMAKER_NAMESPACE)
    percentile = fields.string(data, path, "percentile", default=None, pattern=PERCENTILE_PATTERN,
                               expectation="a percentile like p99")
    statistic = None
    if "statistic" in data:
        if percentile is not None:
            fields.fail(join(path, "statistic"), "cannot be combined with percentile; keep one of them")
        statistic = fields.choice(data, path, "statistic", STATISTICS, default="Average")
    elif percentile is None:
        statistic = "Average"
    fleet = fields.choice(data, path, "fleet", FLEETS, default="all")
    dimensions = fields.string_map(data, path, "dimensions")
    if namespace != SAGEMAKER_NAMESPACE and fleet == "green":
        fields.fail(join(path, "fleet"), f"green applies to {SAGEMAKER_NAMESPACE} metrics only (this one is in "
                    f"{namespace}); drop fleet or give dimensions")
    if "threshold" not in data:
        fields.fail(join(path, "threshold"), "is required (a number)")
    threshold = data.get("threshold")
    if "threshold" in data and (not isinstance(threshold, int | float) or isinstance(threshold, bool)):
        fields.fail(join(path, "threshold"), "must be a number", threshold)
    evaluation_periods, datapoints, period = read_alarm_periods(fields, data, path)
    default_name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{metric or 'metric'}{'-' + percentile if percentile else ''}")
    name = fields.string(data, path, "name", default=default_name.lower()[:40], pattern=ALARM_NAME_PATTERN,
                         expectation="a name of at most 40 letters, digits, '_' or '-'")
    comparison = fields.choice(data, path, "comparison", COMPARISONS, default="GreaterThanOrEqualToThreshold")
    missing = fields.choice(data, path, "treat_missing_data", MISSING_DATA, default="notBreaching")
    if len(fields.errors) > errors_before:
        return None
    return AlarmSpec(name=name, metric=metric, namespace=namespace, statistic=statistic, percentile=percentile,
                     fleet=fleet, dimensions=dimensions, threshold=float(threshold), comparison=comparison,
                     period=period, evaluation_periods=evaluation_periods, datapoints_to_alarm=datapoints,
                     treat_missing_data=missing)


def read_alarm_periods(fields: FieldReader, data: dict, path: str) -> tuple[Any, Any, Any]:
    """An alarm's ``evaluation_periods``, ``datapoints_to_alarm`` (at most the former) and ``period`` (CloudWatch's)."""
    evaluation_periods = fields.integer(data, path, "evaluation_periods", minimum=1, maximum=100, default=1)
    datapoints = fields.integer(data, path, "datapoints_to_alarm", minimum=1, maximum=100,
                                default=evaluation_periods or 1)
    if evaluation_periods and datapoints and datapoints > evaluation_periods:
        fields.fail(join(path, "datapoints_to_alarm"), f"must be at most evaluation_periods ({evaluation_periods})",
                    datapoints)
    period = fields.integer(data, path, "period", minimum=10, maximum=86400, default=60)
    if period is not None and period % 60 and period not in (10, 20, 30):
        fields.fail(join(path, "period"), "must be 10, 20, 30 or a multiple of 60 (CloudWatch's periods)", period)
    return evaluation_periods, datapoints, period


def check_promotion_fits_waiter(fields: FieldReader, promotion: PromotionConfig | None, endpoint: Any) -> None:
    """The release waits for a promotion with ``endpoint.waiter``: it must outlast the deployment's timeout."""
    if promotion is None or endpoint is None:
        return
    waited = endpoint.waiter.delay_seconds * endpoint.waiter.max_attempts
    if waited < promotion.max_execution_timeout_seconds:
        fields.fail("promotion.max_execution_timeout_seconds", f"must fit in the release's wait (endpoint.waiter: "
                    f"delay_seconds x max_attempts = {waited} s); lower it or raise endpoint.waiter.max_attempts",
                    promotion.max_execution_timeout_seconds)


def parse_promotion(value: Any, where: str = "promotion") -> PromotionConfig:
    """A promotion given as a dict (DAG conf, operator argument); ValueError listing every problem."""
    fields = FieldReader(where, Path("."))
    data = fields.mapping(value, where, required=True)
    if "shadow_test" in data:  # accepted means honoured: only the release DAG runs one
        fields.fail(join(where, "shadow_test"), "runs in a release pipeline only (its promotion: section); "
                    "remove it here, or run ShadowTestOperator before this promotion")
    config = read_promotion(fields, data, path="") if not fields.errors else None
    if fields.errors or config is None:
        raise PipelineConfigError(fields.errors)
    return config


def parse_alarms(value: Any, where: str = "alarms") -> tuple[AlarmSpec, ...]:
    """Alarm specs given as a list of dicts; ValueError listing every problem."""
    fields = FieldReader(where, Path("."))
    alarms = read_alarms(fields, value, "")
    if fields.errors:
        raise PipelineConfigError(fields.errors)
    return alarms
