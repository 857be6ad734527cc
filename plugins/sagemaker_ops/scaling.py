"""Pure helpers of autoscaling: the Application Auto Scaling requests a ``scaling:`` spec becomes, and whether
what AWS describes already matches them. No AWS calls here (the operator is
:mod:`sagemaker_ops.operators.autoscaling`).

Every request spells out the values AWS would default (cooldowns, DisableScaleIn, MetricAggregationType,
Timezone), so a Describe* answer compares field by field with the request: equal means no call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sagemaker_ops.pipeline.scaling_section import MetricSpec, ScheduledActionSpec, StepScalingSpec, VariantScalingSpec
from sagemaker_rules.scaling_rules import (
    INSTANCE_COUNT,
    PROVISIONED_CONCURRENCY,
    SERVICE_NAMESPACE,
    metric_dimensions,
    resource_id,
)

INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"


def with_target_value(spec: VariantScalingSpec, target_value: float | None) -> VariantScalingSpec:
    """``spec`` with every target-tracking policy on invocations per instance holding ``target_value``
    instead (a benchmark's measured capacity); unchanged when None."""
    if target_value is None:
        return spec
    from dataclasses import replace

    tracking = tuple(replace(p, target_value=float(target_value)) if p.predefined == INVOCATIONS_METRIC else p
                     for p in spec.target_tracking)
    return replace(spec, target_tracking=tracking)


def target_key(endpoint_name: str, spec: VariantScalingSpec) -> dict[str, str]:
    """ServiceNamespace, ResourceId and ScalableDimension: what names a variant's scalable target."""
    return {"ServiceNamespace": SERVICE_NAMESPACE, "ResourceId": resource_id(endpoint_name, spec.variant),
            "ScalableDimension": spec.dimension}


def variant_key(endpoint_name: str, variant: dict[str, Any]) -> dict[str, str]:
    """The scalable target of a live variant (a ProductionVariants entry): its provisioned concurrency when
    serverless, else its instance count."""
    dimension = PROVISIONED_CONCURRENCY if variant.get("ServerlessConfig") else INSTANCE_COUNT
    return {"ServiceNamespace": SERVICE_NAMESPACE, "ResourceId": resource_id(endpoint_name, variant["VariantName"]),
            "ScalableDimension": dimension}


def register_request(endpoint_name: str, spec: VariantScalingSpec) -> dict[str, Any]:
    return {**target_key(endpoint_name, spec), "MinCapacity": spec.min_capacity, "MaxCapacity": spec.max_capacity}


def target_differs(existing: dict[str, Any] | None, request: dict[str, Any]) -> bool:
    return existing is None or any(existing.get(key) != request[key] for key in ("MinCapacity", "MaxCapacity"))


def _metric(metric: MetricSpec, endpoint_name: str, variant: str) -> dict[str, Any]:
    dimensions = metric.dimensions if metric.dimensions is not None else \
        metric_dimensions(metric.namespace, metric.metric, endpoint_name, variant)
    return {"MetricName": metric.metric, "Namespace": metric.namespace,
            "Dimensions": [{"Name": name, "Value": value} for name, value in sorted(dimensions.items())],
            "Statistic": metric.statistic, **({"Unit": metric.unit} if metric.unit else {})}


def policy_requests(endpoint_name: str, spec: VariantScalingSpec) -> list[dict[str, Any]]:
    """PutScalingPolicy requests: the target-tracking policies, then the step policies."""
    key = target_key(endpoint_name, spec)
    requests = []
    for policy in spec.target_tracking:
        configuration: dict[str, Any] = {"TargetValue": policy.target_value,
                                         "ScaleInCooldown": policy.scale_in_cooldown_seconds,
                                         "ScaleOutCooldown": policy.scale_out_cooldown_seconds,
                                         "DisableScaleIn": policy.disable_scale_in}
        if policy.predefined:
            configuration["PredefinedMetricSpecification"] = {"PredefinedMetricType": policy.predefined}
        else:
            configuration["CustomizedMetricSpecification"] = _metric(policy.customized, endpoint_name, spec.variant)
        requests.append({**key, "PolicyName": policy.name, "PolicyType": "TargetTrackingScaling",
                         "TargetTrackingScalingPolicyConfiguration": configuration})
    for policy in spec.step_scaling:
        requests.append({**key, "PolicyName": policy.name, "PolicyType": "StepScaling",
                         "StepScalingPolicyConfiguration": _step_configuration(policy)})
    return requests


def _step_configuration(policy: StepScalingSpec) -> dict[str, Any]:
    steps = []
    for step in policy.steps:
        item: dict[str, Any] = {"ScalingAdjustment": step.adjustment}
        if step.lower_bound is not None:
            item["MetricIntervalLowerBound"] = step.lower_bound
        if step.upper_bound is not None:
            item["MetricIntervalUpperBound"] = step.upper_bound
        steps.append(item)
    configuration = {"AdjustmentType": policy.adjustment_type, "StepAdjustments": steps,
                     "Cooldown": policy.cooldown_seconds, "MetricAggregationType": policy.metric_aggregation_type}
    if policy.min_adjustment_magnitude is not None:
        configuration["MinAdjustmentMagnitude"] = policy.min_adjustment_magnitude
    return configuration


def policy_differs(existing: dict[str, Any] | None, request: dict[str, Any]) -> bool:
    """Whether DescribeScalingPolicies' ``existing`` policy differs from the PutScalingPolicy ``request``."""
    if existing is None or existing.get("PolicyType") != request["PolicyType"]:
        return True
    key = ("TargetTrackingScalingPolicyConfiguration" if request["PolicyType"] == "TargetTrackingScaling"
           else "StepScalingPolicyConfiguration")
    return _normalised(existing.get(key)) != _normalised(request[key])


def _normalised(value: Any) -> Any:
    """Numbers as floats, dimension lists sorted: how two equal configurations compare equal."""
    if isinstance(value, dict):
        return {key: _normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [_normalised(item) for item in value]
        return sorted(items, key=repr) if all(isinstance(item, dict) and "Name" in item for item in items) else items
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def step_alarm_name(endpoint_name: str, variant: str, policy_name: str) -> str:
    return f"{step_alarm_prefix(endpoint_name, variant)}{policy_name}"


def step_alarm_prefix(endpoint_name: str, variant: str) -> str:
    """Every step-scaling alarm of a variant starts so: how alarms no longer in the spec are found."""
    return f"{endpoint_name}-{variant}-scaling-"


def step_alarm_requests(endpoint_name: str, spec: VariantScalingSpec,
                        policy_arns: dict[str, str]) -> list[dict[str, Any]]:
    """PutMetricAlarm requests of the step policies' alarms, each invoking its policy (AlarmActions)."""
    requests = []
    for policy in spec.step_scaling:
        alarm = policy.alarm
        metric = _metric(alarm.metric, endpoint_name, spec.variant)
        metric.pop("Unit", None)
        requests.append({
            "AlarmName": step_alarm_name(endpoint_name, spec.variant, policy.name),
            "AlarmDescription": f"Invokes step scaling policy {policy.name} of "
                                f"{resource_id(endpoint_name, spec.variant)}.",
            **metric, "Period": alarm.period, "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm, "Threshold": alarm.threshold,
            "ComparisonOperator": alarm.comparison, "TreatMissingData": alarm.treat_missing_data,
            "AlarmActions": [policy_arns[policy.name]],
        })
    return requests


def scheduled_action_requests(endpoint_name: str, spec: VariantScalingSpec) -> list[dict[str, Any]]:
    return [_scheduled_request(endpoint_name, spec, action) for action in spec.scheduled_actions]


def _scheduled_request(endpoint_name: str, spec: VariantScalingSpec, action: ScheduledActionSpec) -> dict[str, Any]:
    capacity = {key: value for key, value in (("MinCapacity", action.min_capacity),
                                              ("MaxCapacity", action.max_capacity)) if value is not None}
    request = {**target_key(endpoint_name, spec), "ScheduledActionName": action.name, "Schedule": action.schedule,
               "Timezone": action.timezone, "ScalableTargetAction": capacity}
    for key, value in (("StartTime", action.start_time), ("EndTime", action.end_time)):
        if value is not None:
            request[key] = datetime.fromisoformat(value)
    return request


def scheduled_action_differs(existing: dict[str, Any] | None, request: dict[str, Any]) -> bool:
    if existing is None:
        return True
    for key in ("Schedule", "ScalableTargetAction", "StartTime", "EndTime"):
        have, want = existing.get(key), request.get(key)
        if isinstance(have, datetime) and isinstance(want, datetime):
            have, want = have.timestamp(), want.timestamp()
        if have != want:
            return True
    return (existing.get("Timezone") or "UTC") != request["Timezone"]
