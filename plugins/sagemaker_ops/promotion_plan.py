"""Plan a manual promotion (``dags/promote_variant.py``): the DAG's Params become checked operator arguments.

The Params' JSON schema rejects malformed input when the run is triggered; this module checks what a
schema cannot say (the rules across fields, the same ones the ``promotion:`` section follows) before any
AWS call, with messages naming the Param.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagemaker_ops.pipeline.fields import SAGEMAKER_NAME_PATTERN, PipelineConfigError
from sagemaker_ops.pipeline.promotion_section import STRATEGIES, parse_promotion
from sagemaker_ops.promotion import deployment_config

MODES = ("blue_green", "weight_shift")
SIZE_UNITS = ("instance_count", "capacity_percent")
# The Param that carries each strategy's size.
SIZE_PARAMS = {"canary": ("canary_size", "canary_size"), "linear": ("linear_step", "step_size"),
               "rolling": ("rolling_batch", "step_size")}


class PromotionPlanError(ValueError):
    """The Params do not describe a runnable promotion."""


def promotion_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``promotion:`` section the Params describe (its alarms from the two thresholds)."""
    strategy = params.get("strategy")
    section: dict[str, Any] = {
        "strategy": strategy,
        "wait_interval_seconds": params.get("wait_interval_seconds"),
        "termination_wait_seconds": params.get("termination_wait_seconds"),
        "max_execution_timeout_seconds": params.get("max_execution_timeout_seconds"),
        "alarms": alarms_from_params(params),
    }
    if strategy in SIZE_PARAMS:
        field, param = SIZE_PARAMS[strategy]
        section[field] = {params.get("size_unit"): params.get(param)}
    return section


def alarms_from_params(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The 5XX error-rate alarm (both fleets) and the green fleet's ModelLatency p99 alarm, when set."""
    alarms = []
    if params.get("error_rate_threshold") is not None:
        alarms.append({"metric": "Invocation5XXErrors", "threshold": params["error_rate_threshold"]})
    if params.get("latency_p99_threshold_ms") is not None:
        alarms.append({"metric": "ModelLatency", "percentile": "p99", "fleet": "green",
                       "threshold": params["latency_p99_threshold_ms"] * 1000})  # ModelLatency is in microseconds
    return alarms


def plan_promotion(params: Mapping[str, Any]) -> dict[str, Any]:
    """The checked plan (one XCom value per operator argument); :class:`PromotionPlanError` names the Param."""
    endpoint_name = params.get("endpoint_name")
    if not isinstance(endpoint_name, str) or not SAGEMAKER_NAME_PATTERN.match(endpoint_name):
        raise PromotionPlanError(f"Param endpoint_name must be a SageMaker endpoint name, got {endpoint_name!r}.")
    mode = params.get("mode")
    if mode not in MODES:
        raise PromotionPlanError(f"Param mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if params.get("strategy") not in STRATEGIES:
        raise PromotionPlanError(f"Param strategy must be one of {', '.join(STRATEGIES)}, got "
                                 f"{params.get('strategy')!r}.")
    plan: dict[str, Any] = {"endpoint_name": endpoint_name, "mode": mode, "dry_run": bool(params.get("dry_run"))}
    alarms = alarms_from_params(params)
    if not alarms:
        raise PromotionPlanError("Set error_rate_threshold and/or latency_p99_threshold_ms: a promotion without "
                                 "alarms cannot roll back.")
    if mode == "blue_green":
        config = params.get("endpoint_config_name")
        if not isinstance(config, str) or not SAGEMAKER_NAME_PATTERN.match(config):
            raise PromotionPlanError("Param endpoint_config_name must name the endpoint config to promote "
                                     f"(an existing one), got {config!r}.")
        try:
            promotion = parse_promotion(promotion_from_params(params), where="Params")
        except PipelineConfigError as error:
            raise PromotionPlanError("\n".join(error.errors)) from error
        plan.update(endpoint_config_name=config, promotion=promotion.as_dict(),
                    alarms=promotion.as_dict()["alarms"],
                    deployment_config=deployment_config(promotion, ["<alarm names>"]))
    else:
        steps = params.get("weight_steps") or []
        if not steps or steps != sorted(set(steps)) or not all(isinstance(s, int) and 1 <= s <= 100 for s in steps):
            raise PromotionPlanError(f"Param weight_steps must be ascending percentages from 1 to 100, got {steps!r}.")
        for param in ("from_variant", "to_variant"):
            if not isinstance(params.get(param), str) or not SAGEMAKER_NAME_PATTERN.match(params[param]):
                raise PromotionPlanError(f"Param {param} must name a variant of the endpoint, "
                                         f"got {params.get(param)!r}.")
        if params["from_variant"] == params["to_variant"]:
            raise PromotionPlanError("Params from_variant and to_variant name the same variant.")
        plan.update(from_variant=params["from_variant"], to_variant=params["to_variant"], weight_steps=list(steps),
                    bake_seconds=params.get("wait_interval_seconds", 60), alarms=alarms,
                    alarm_variants=[params["to_variant"]])
    return plan
