"""The scaling: section: the shipped files' numbers, the requests they become, and each mistake named by its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagemaker_ops.pipeline import load_pipeline
from sagemaker_ops.scaling import policy_differs, policy_requests, register_request, with_target_value
from sagemaker_rules.scaling_rules import PROVISIONED_CONCURRENCY
from tests.unit.pipeline_documents import PIPELINES, document_errors, load_document, shipped_document

TRACKING = {"metric": "SageMakerVariantInvocationsPerInstance", "target_value": 10}


def with_scaling(document: dict, **variant) -> dict:
    name = document["endpoint"]["variants"][0]["name"]
    return {**document, "scaling": {"variants": [{"name": name, "min_capacity": 1, "max_capacity": 4,
                                                  "target_tracking": [TRACKING], **variant}]}}


def test_iris_scales_with_the_chapters_numbers():
    iris = load_pipeline(PIPELINES / "iris.yaml")
    [variant] = iris.scaling.variants
    [policy] = variant.target_tracking
    assert (variant.variant, variant.min_capacity, variant.max_capacity) == ("AllTraffic", 1, 4)
    assert (policy.predefined, policy.target_value) == ("SageMakerVariantInvocationsPerInstance", 10.0)
    assert (policy.scale_in_cooldown_seconds, policy.scale_out_cooldown_seconds) == (300, 60)
    assert register_request("iris", variant) == {
        "ServiceNamespace": "sagemaker", "ResourceId": "endpoint/iris/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 1, "MaxCapacity": 4}


def test_iris_async_scales_from_zero_on_its_backlog():
    [variant] = load_pipeline(PIPELINES / "iris-async.yaml").scaling.variants
    tracking, step = policy_requests("iris-async", variant)
    metric = tracking["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    assert (variant.min_capacity, metric["MetricName"], metric["Dimensions"]) == (
        0, "ApproximateBacklogSizePerInstance", [{"Name": "EndpointName", "Value": "iris-async"}])
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"ScalingAdjustment": 1, "MetricIntervalLowerBound": 0.0}]


def test_a_benchmark_target_replaces_the_invocations_target_and_is_a_change():
    [variant] = load_pipeline(PIPELINES / "iris.yaml").scaling.variants
    [before], [after] = policy_requests("iris", variant), policy_requests("iris", with_target_value(variant, 37))
    assert after["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 37.0
    assert policy_differs({**before, "PolicyARN": "arn"}, after)
    assert not policy_differs({**before, "PolicyARN": "arn"}, before)


def test_a_serverless_variant_scales_its_provisioned_concurrency(tmp_path: Path):
    document = shipped_document("iris-serverless")
    document["endpoint"]["variants"][0]["serverless"]["provisioned_concurrency"] = 2
    pipeline = load_document(tmp_path, with_scaling(document, max_capacity=5, target_tracking=[
        {"metric": "SageMakerVariantProvisionedConcurrencyUtilization", "target_value": 0.5}]))
    assert pipeline.scaling.variants[0].dimension == PROVISIONED_CONCURRENCY


@pytest.mark.parametrize(("name", "variant", "message"), [
    ("min-above-max", {"min_capacity": 5}, "scaling.variants[0].min_capacity must be at most max_capacity (4); "
                                            "lower it or raise max_capacity, got 5"),
    ("real-time-zero", {"min_capacity": 0}, "scaling.variants[0].min_capacity must be >= 1: only asynchronous "
                                            "endpoints scale to zero"),
    ("unknown-variant", {"name": "Blue"}, "scaling.variants[0].name must name a variant of endpoint.variants "
                                          "(AllTraffic), got 'Blue'"),
    ("count-outside", {"min_capacity": 3}, "scaling.variants[0].min_capacity and max_capacity must include the "
                                           "variant's instance_count (2)"),
    ("cpu-metric-typo", {"target_tracking": [{"customized_metric": {"metric": "CPUUtilisation",
                                                                    "namespace": "/aws/sagemaker/Endpoints"},
                                              "target_value": 50}]},
     "customized_metric.metric is not a metric SageMaker publishes in /aws/sagemaker/Endpoints"),
    ("foreign-metric", {"target_tracking": [{"customized_metric": {"metric": "Queue", "namespace": "Acme"},
                                             "target_value": 50}]},
     "customized_metric.dimensions is required for a metric outside SageMaker's namespaces"),
    ("both-metrics", {"target_tracking": [{**TRACKING, "customized_metric": {"metric": "Invocations"}}]},
     "target_tracking[0] needs exactly one of metric"),
    ("serverless-metric", {"target_tracking": [{"metric": "SageMakerVariantProvisionedConcurrencyUtilization",
                                                "target_value": 0.5}]},
     "target_tracking[0].metric does not fit an instance-based variant (use SageMakerVariantInvocationsPerInstance"),
    ("zero-target", {"target_tracking": [{**TRACKING, "target_value": 0}]},
     "target_tracking[0].target_value must be a number > 0"),
    ("overlap", {"step_scaling": [{"steps": [{"lower_bound": 0, "upper_bound": 10, "adjustment": 1},
                                             {"lower_bound": 5, "adjustment": 2}],
                                   "alarm": {"metric": "ModelLatency", "threshold": 1}}]},
     "step_scaling[0].steps must not overlap: one step ends at 10, the next starts at 5"),
    ("magnitude", {"step_scaling": [{"steps": [{"lower_bound": 0, "adjustment": 1}], "min_adjustment_magnitude": 2,
                                     "alarm": {"metric": "ModelLatency", "threshold": 1}}]},
     "min_adjustment_magnitude applies to adjustment_type PercentChangeInCapacity only"),
    ("async-metric", {"step_scaling": [{"steps": [{"lower_bound": 0, "adjustment": 1}],
                                        "alarm": {"metric": "HasBacklogWithoutCapacity", "threshold": 1}}]},
     "step_scaling[0].alarm.metric is published by asynchronous endpoints only"),
    ("timezone", {"scheduled_actions": [{"name": "n", "schedule": "rate(1 day)", "timezone": "Mars/Olympus",
                                         "min_capacity": 1}]},
     "scheduled_actions[0].timezone must be an IANA time zone like Europe/Berlin, got 'Mars/Olympus'"),
    ("window", {"scheduled_actions": [{"name": "n", "schedule": "rate(1 day)", "max_capacity": 2,
                                       "start_time": "2026-02-01T00:00:00", "end_time": "2026-01-01T00:00:00"}]},
     "scheduled_actions[0].end_time must be after start_time"),
    ("no-capacity", {"scheduled_actions": [{"name": "n", "schedule": "at(2026-01-01T08:00:00)"}]},
     "scheduled_actions[0] needs min_capacity and/or max_capacity"),
    ("duplicate-policy", {"target_tracking": [TRACKING, TRACKING]}, "must have unique policy names"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 20 else "")
def test_each_mistake_is_named_by_its_field(tmp_path: Path, name, variant, message):
    errors = document_errors(tmp_path, with_scaling(shipped_document("iris"), **variant))
    assert any(message in error for error in errors), errors


def test_async_at_zero_needs_its_scale_from_zero_step(tmp_path: Path):
    document = shipped_document("iris-async")
    del document["scaling"]["variants"][0]["step_scaling"]
    [error] = document_errors(tmp_path, document)
    assert error.endswith("scaling.variants[0].step_scaling needs a step policy on HasBacklogWithoutCapacity with "
                          "min_capacity 0: target tracking alone never scales out from zero instances")


def test_a_serverless_variant_needs_provisioned_concurrency_within_its_max_concurrency(tmp_path: Path):
    document = shipped_document("iris-serverless")
    errors = document_errors(tmp_path, with_scaling(document, max_capacity=9, target_tracking=[
        {"metric": "SageMakerVariantProvisionedConcurrencyUtilization", "target_value": 0.5}]))
    assert any("set endpoint.variants[].serverless.provisioned_concurrency" in error for error in errors)
    assert any("max_capacity must be at most the variant's serverless.max_concurrency (5), got 9" in error
               for error in errors)
