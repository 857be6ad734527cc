"""Plan an A/B test: two released single-model pipelines as the two variants of one endpoint.

Pure helpers for ``dags/ab_test.py``: which pipelines can be a variant, and the checked, flat plan
(one XCom value per operator argument) the DAG's tasks read. Everything is validated here, before
any AWS call, with messages that name the Param.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sagemaker_ops.pipeline.fields import SAGEMAKER_NAME_PATTERN
from sagemaker_ops.pipeline.models import PipelineConfig

ROLES = {"champion": "Champion", "challenger": "Challenger"}  # Param prefix -> variant name
AB_TEST_TAG_KEY = "sagemaker-ops:ab-test"


class AbTestPlanError(ValueError):
    """The Params do not describe a runnable A/B test."""


def ab_candidates(pipelines: Iterable[PipelineConfig]) -> list[str]:
    """Pipelines whose model can be a variant: one model, served in real time on instances."""
    return sorted(
        pipeline.name for pipeline in pipelines
        if pipeline.model.kind == "single"
        and pipeline.endpoint.async_inference is None
        and all(variant.serverless is None for variant in pipeline.endpoint.variants)
    )


def default_pair(candidates: list[str], preferred: tuple[str, str] = ("iris", "iris-tree")) -> list[str | None]:
    """The Params' default champion and challenger: the preferred pair where it exists, else the first two."""
    if set(preferred) <= set(candidates):
        return list(preferred)
    return (candidates[:2] + [None, None])[:2]


def plan_ab_test(pipelines: Iterable[PipelineConfig], params: Mapping[str, Any]) -> dict[str, Any]:
    """
    The A/B test's plan from the DAG's Params; raise :class:`AbTestPlanError` naming the Param.

    Both variants run on the champion's first instance type, one instance each, so the test
    compares models, not hardware. The traffic check sends the champion's smoke-test payload to
    either variant, so the two pipelines must take the same request format.
    """
    pipelines = {pipeline.name: pipeline for pipeline in pipelines}
    candidates = ab_candidates(pipelines.values())
    endpoint_name = params.get("endpoint_name")
    if not isinstance(endpoint_name, str) or not SAGEMAKER_NAME_PATTERN.match(endpoint_name):
        raise AbTestPlanError(f"Param endpoint_name must be a SageMaker endpoint name, got {endpoint_name!r}.")
    released = {pipeline.endpoint.name: name for name, pipeline in pipelines.items()}
    if endpoint_name in released:
        raise AbTestPlanError(f"Param endpoint_name {endpoint_name!r} is the endpoint of pipeline "
                              f"{released[endpoint_name]!r}; an A/B test needs an endpoint of its own.")
    chosen = {}
    for role in ROLES:
        name = params.get(role)
        if name not in candidates:
            raise AbTestPlanError(f"Param {role} must name a single-model, real-time pipeline "
                                  f"({', '.join(candidates)}), got {name!r}.")
        chosen[role] = pipelines[name]
    if chosen["champion"].name == chosen["challenger"].name:
        raise AbTestPlanError("Params champion and challenger name the same pipeline; an A/B test needs two models.")
    champion_test, challenger_test = (chosen[role].smoke_test for role in ROLES)
    if champion_test.content_type != challenger_test.content_type:
        raise AbTestPlanError(
            f"Pipelines {chosen['champion'].name} and {chosen['challenger'].name} take different requests "
            f"({champion_test.content_type} and {challenger_test.content_type}); the variants of one endpoint "
            "must answer the same request."
        )
    initial, shifted = _weights(params, ""), _weights(params, "shifted_")
    plan: dict[str, Any] = {
        "endpoint_name": endpoint_name,
        "instance_type": chosen["champion"].endpoint.image_instance_type,
        "initial_weights": initial,
        "shifted_weights": shifted,
        "invocations": _invocations(params.get("invocations")),
        "significance": _significance(params.get("significance")),
        "payload_file": str(champion_test.payload_file),
        "content_type": champion_test.content_type,
        "accept": champion_test.accept,
        "tags": {**chosen["champion"].resource_tags, AB_TEST_TAG_KEY: endpoint_name},
    }
    for role, pipeline in chosen.items():
        plan.update(_model_fields(role, pipeline))
        plan[f"{role}_initial_weight"] = initial[ROLES[role]]
    return plan


def _model_fields(role: str, pipeline: PipelineConfig) -> dict[str, Any]:
    model = pipeline.model
    return {
        f"{role}_pipeline": pipeline.name,
        f"{role}_source_dir": str(model.source_dir),
        f"{role}_bucket": pipeline.artifacts.bucket,
        f"{role}_prefix": pipeline.artifacts.prefix,
        f"{role}_role_arn": model.role_arn,
        f"{role}_image_uri": model.image_uri,
        f"{role}_framework": model.framework,
        f"{role}_framework_version": model.framework_version,
        f"{role}_environment": dict(model.environment),
    }


def _weights(params: Mapping[str, Any], prefix: str) -> dict[str, float]:
    weights = {}
    for role, variant in ROLES.items():
        key = f"{prefix}{role}_weight"
        value = params.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise AbTestPlanError(f"Param {key} must be a number >= 0, got {value!r}.")
        weights[variant] = float(value)
    if not any(weights.values()):
        raise AbTestPlanError(f"Params {prefix}champion_weight and {prefix}challenger_weight are both 0; "
                              "at least one variant must take traffic.")
    return weights


def _invocations(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AbTestPlanError(f"Param invocations must be an integer >= 1, got {value!r}.")
    return value


def _significance(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1:
        raise AbTestPlanError(f"Param significance must be a number between 0 and 1, got {value!r}.")
    return float(value)
