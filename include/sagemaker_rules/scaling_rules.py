"""Application Auto Scaling facts for SageMaker endpoints (sagemaker-api.md §8-9), kept once.

Which scalable dimension a variant has, which predefined metric fits which dimension, the dimensions
each SageMaker CloudWatch metric is published with, the ``ResourceId`` shape and the schedule
expressions ``PutScheduledAction`` accepts. ``sagemaker_ops`` checks a pipeline file against these
before any AWS call. Pure Python.
"""

from __future__ import annotations

import re

SERVICE_NAMESPACE = "sagemaker"
INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"

# Predefined target-tracking metrics and the scalable dimension each fits.
PREDEFINED_METRICS = {
    "SageMakerVariantInvocationsPerInstance": INSTANCE_COUNT,
    "SageMakerVariantConcurrentRequestsPerModelHighResolution": INSTANCE_COUNT,
    "SageMakerVariantProvisionedConcurrencyUtilization": PROVISIONED_CONCURRENCY,
}

_VARIANT = ("EndpointName", "VariantName")
_ENDPOINT = ("EndpointName",)
# The dimensions SageMaker publishes each metric with, per namespace (monitoring-cloudwatch.md, async docs).
METRIC_DIMENSIONS = {
    "AWS/SageMaker": {
        **{name: _VARIANT for name in (
            "Invocations", "InvocationsPerInstance", "ModelLatency", "OverheadLatency", "Invocation4XXErrors",
            "Invocation5XXErrors", "InvocationModelErrors", "ConcurrentRequestsPerModel", "ModelSetupTime",
            "ServerlessProvisionedConcurrencyExecutions", "ServerlessProvisionedConcurrencyUtilization",
            "ServerlessProvisionedConcurrencyInvocations", "ServerlessProvisionedConcurrencySpilloverInvocations")},
        # Asynchronous endpoints: the queue is the endpoint's, not a variant's.
        **{name: _ENDPOINT for name in (
            "ApproximateBacklogSize", "ApproximateBacklogSizePerInstance", "HasBacklogWithoutCapacity",
            "ApproximateAgeOfOldestRequest")},
    },
    "/aws/sagemaker/Endpoints": {name: _VARIANT for name in (
        "CPUUtilization", "MemoryUtilization", "GPUUtilization", "GPUMemoryUtilization", "DiskUtilization")},
}
ASYNC_ONLY_METRICS = frozenset(name for name, dims in METRIC_DIMENSIONS["AWS/SageMaker"].items() if dims == _ENDPOINT)

# Target tracking's two alarms (AWS-owned): 3 of 3 one-minute periods above target scale out.
TARGET_TRACKING_ALARM_PERIODS = 3
DEFAULT_COOLDOWN_SECONDS = 300  # ScaleInCooldown / ScaleOutCooldown / step Cooldown for SageMaker variants

ADJUSTMENT_TYPES = ("ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity")
METRIC_AGGREGATION_TYPES = ("Average", "Minimum", "Maximum")
STATISTICS = ("Average", "Minimum", "Maximum", "SampleCount", "Sum")

SCHEDULE_PATTERN = re.compile(
    r"^(at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)"
    r"|rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\)"
    r"|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$")
SCHEDULE_EXPECTATION = ("a schedule expression: at(yyyy-mm-ddThh:mm:ss), "
                        "rate(<n> minute|minutes|hour|hours|day|days) or "
                        "cron(Minutes Hours Day-of-month Month Day-of-week Year)")
# PolicyName / ScheduledActionName: 1 to 256 printable characters (no ':' or '/' in the ARN-carried name).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,256}$")


def resource_id(endpoint_name: str, variant_name: str) -> str:
    """``endpoint/<endpoint>/variant/<variant>``: the ResourceId of a variant's scalable target."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def metric_dimensions(namespace: str, metric: str, endpoint_name: str, variant_name: str) -> dict[str, str]:
    """The dimensions ``metric`` is published with for this endpoint/variant ({} for an unknown metric)."""
    names = METRIC_DIMENSIONS.get(namespace, {}).get(metric, ())
    values = {"EndpointName": endpoint_name, "VariantName": variant_name}
    return {name: values[name] for name in names}
