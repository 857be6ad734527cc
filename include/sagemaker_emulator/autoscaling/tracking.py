"""The two CloudWatch alarms Application Auto Scaling creates for a target tracking policy.

AWS (application-auto-scaling-target-tracking; alarm descriptions observed in public repos):
``TargetTracking-<resource>-AlarmHigh-<uuid>``: metric above the target for 3 datapoints within 3
minutes; ``TargetTracking-<resource>-AlarmLow-<uuid>``: below the scale-in threshold for 15 datapoints
within 15 minutes (the threshold is "usually more than 10% lower": the emulator uses 90% of the
target); description "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy <arn>."; no AlarmLow
when DisableScaleIn is true (that policy never removes capacity). Their alarm action is the policy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_rules.scaling_rules import INSTANCE_COUNT, PROVISIONED_CONCURRENCY, TARGET_TRACKING_ALARM_PERIODS

LOW_THRESHOLD_SHARE = 0.9
HIGH_DATAPOINTS, LOW_DATAPOINTS = TARGET_TRACKING_ALARM_PERIODS, 15


@dataclass(frozen=True)
class TrackedMetric:
    namespace: str
    name: str
    statistic: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str | None = None


# predefined metric -> (CloudWatch metric name, statistic, the dimension it fits)
PREDEFINED = {
    "SageMakerVariantInvocationsPerInstance": ("InvocationsPerInstance", "Sum",
                                               INSTANCE_COUNT),
    "SageMakerVariantProvisionedConcurrencyUtilization": ("ServerlessProvisionedConcurrencyUtilization", "Average",
                                                          PROVISIONED_CONCURRENCY),
}
NOT_PUBLISHED = ("SageMakerVariantConcurrentRequestsPerModelHighResolution",
                 "SageMakerInferenceComponentInvocationsPerCopy",
                 "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")


def tracked_metric(config: dict[str, Any], endpoint: str, variant: str, dimension: str) -> TrackedMetric:
    """The metric a TargetTrackingScalingPolicyConfiguration tracks, or a ValidationException saying why
    the emulator cannot track it."""
    predefined, customized = config.get("PredefinedMetricSpecification"), config.get("CustomizedMetricSpecification")
    if bool(predefined) == bool(customized):
        raise ValidationException("Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification "
                                  "must be given in TargetTrackingScalingPolicyConfiguration.")
    if predefined:
        kind = predefined["PredefinedMetricType"]
        if kind in NOT_PUBLISHED:
            raise ValidationException(
                f"PredefinedMetricType {kind} is not supported by the emulator: it publishes no per-model "
                "concurrency or inference-component metrics. Use SageMakerVariantInvocationsPerInstance or a "
                "CustomizedMetricSpecification.")
        if kind not in PREDEFINED:
            raise ValidationException(f"PredefinedMetricType {kind} is not valid for a SageMaker variant: use one of "
                                      f"{', '.join(PREDEFINED)}.")
        name, statistic, fits = PREDEFINED[kind]
        if fits != dimension:
            raise ValidationException(f"PredefinedMetricType {kind} does not fit the scalable dimension {dimension}; "
                                      f"it tracks {fits}.")
        return TrackedMetric("AWS/SageMaker", name, statistic, (("EndpointName", endpoint), ("VariantName", variant)))
    if customized.get("Metrics"):
        raise ValidationException("CustomizedMetricSpecification with Metrics (metric math) is not supported by the "
                                  "emulator: give MetricName, Namespace, Dimensions and Statistic instead.")
    missing = [key for key in ("MetricName", "Namespace", "Statistic") if not customized.get(key)]
    if missing:
        raise ValidationException(f"CustomizedMetricSpecification needs {', '.join(missing)}.")
    dims = tuple((d["Name"], d["Value"]) for d in customized.get("Dimensions") or [])
    return TrackedMetric(customized["Namespace"], customized["MetricName"], customized["Statistic"], dims,
                         customized.get("Unit"))


def alarm_specs(policy_arn: str, resource_id: str, config: dict[str, Any], metric: TrackedMetric
                ) -> list[dict[str, Any]]:
    """PutMetricAlarm members (snake case, as moto takes them) of AlarmHigh and, unless DisableScaleIn,
    AlarmLow."""
    target = float(config["TargetValue"])
    common = {"namespace": metric.namespace, "metric_name": metric.name, "statistic": metric.statistic,
              "period": 60, "dimensions": [{"Name": n, "Value": v} for n, v in metric.dimensions],
              "unit": metric.unit, "alarm_actions": [policy_arn],
              "description": f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."}
    specs = [{**common, "name": f"TargetTracking-{resource_id}-AlarmHigh-{uuid.uuid4()}",
              "comparison_operator": "GreaterThanThreshold", "threshold": target,
              "evaluation_periods": HIGH_DATAPOINTS, "datapoints_to_alarm": HIGH_DATAPOINTS}]
    if not config.get("DisableScaleIn"):
        specs.append({**common, "name": f"TargetTracking-{resource_id}-AlarmLow-{uuid.uuid4()}",
                      "comparison_operator": "LessThanThreshold", "threshold": round(target * LOW_THRESHOLD_SHARE, 6),
                      "evaluation_periods": LOW_DATAPOINTS, "datapoints_to_alarm": LOW_DATAPOINTS})
    return specs


def is_high_alarm(name: str) -> bool:
    return "-AlarmHigh-" in name
