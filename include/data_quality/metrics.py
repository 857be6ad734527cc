"""CloudWatch metrics of a check, as PutMetricData MetricData entries (sagemaker-api.md §4.5)."""

from __future__ import annotations

from .constraints import feature_config
from .profile import FRACTIONAL, INTEGRAL, DatasetProfile

ENDPOINT_NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"
BATCH_NAMESPACE = "/aws/sagemaker/ModelMonitoring/data-metric"


def namespace_and_dimensions(endpoint_name: str | None, schedule_name: str | None) -> tuple[str, list]:
    if endpoint_name:
        dimensions = [{"Name": "EndpointName", "Value": endpoint_name}]
        if schedule_name:
            dimensions.append({"Name": "ScheduleName", "Value": schedule_name})
        return ENDPOINT_NAMESPACE, dimensions
    return BATCH_NAMESPACE, [{"Name": "MonitoringSchedule", "Value": schedule_name}] if schedule_name else []


def metric_data(current: DatasetProfile, baseline_constraints: dict, distances: dict, dimensions: list) -> list[dict]:
    """feature_data_<f> (numbers), feature_non_null_<f> and feature_baseline_drift_<f>, for the
    baseline's features whose emit_metrics is not Disabled."""
    features = baseline_constraints.get("features") or [{"name": name} for name in current.columns]
    if feature_config(baseline_constraints, {}).get("emit_metrics") == "Disabled":
        return []
    entries = []
    for feature in features:
        name = feature["name"]
        column = current.columns.get(name)
        if column is None or feature_config(baseline_constraints, feature).get("emit_metrics") == "Disabled":
            continue
        if column.inferred_type in (INTEGRAL, FRACTIONAL) and column.count:
            entries.append(_entry(f"feature_data_{name}", dimensions, StatisticValues={
                "SampleCount": float(column.count), "Sum": float(column.total),
                "Minimum": float(column.minimum), "Maximum": float(column.maximum)}))
        if current.rows:
            entries.append(_entry(f"feature_non_null_{name}", dimensions, Value=column.present / current.rows))
        if name in distances:
            entries.append(_entry(f"feature_baseline_drift_{name}", dimensions, Value=float(distances[name])))
    return entries


def _entry(metric_name: str, dimensions: list, **value) -> dict:
    return {"MetricName": metric_name, "Dimensions": [dict(d) for d in dimensions], **value, "Unit": "None"}
