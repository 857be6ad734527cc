"""Application Auto Scaling's checks for SageMaker targets, beyond botocore's shapes (and moto's).

AWS's wording where it is known: "The status should be in 'InService' to register it as a scalable
target" (observed, k8s operator); "No scalable target registered for service namespace: ..., resource
ID: ..., scalable dimension: ..." and "No scaling policy found for ..." (ObjectNotFoundException).
Elsewhere the message names the field and the fix.
"""

from __future__ import annotations

import re
from typing import Any

from sagemaker_emulator.sagemaker.errors import AwsError, ValidationException
from sagemaker_rules.scaling_rules import INSTANCE_COUNT, PROVISIONED_CONCURRENCY

_RESOURCE_ID = re.compile(r"^endpoint/([^/]+)/variant/([^/]+)$")


class ObjectNotFound(AwsError):
    def __init__(self, message: str):
        super().__init__("ObjectNotFoundException", message)


def parse_resource_id(resource_id: str) -> tuple[str, str]:
    """``endpoint/<endpoint>/variant/<variant>`` -> (endpoint, variant)."""
    match = _RESOURCE_ID.match(resource_id or "")
    if match is None:
        if (resource_id or "").startswith("inference-component/"):
            raise ValidationException(f"ResourceId {resource_id} names an inference component; the emulator has no "
                                      "inference components. Scale a variant: endpoint/<endpoint>/variant/<variant>.")
        raise ValidationException(f"Unsupported resource ID {resource_id!r} for service namespace sagemaker: it must "
                                  "be endpoint/<endpoint name>/variant/<variant name>.")
    return match.group(1), match.group(2)


def _where(params: dict[str, Any]) -> str:
    return (f"service namespace: {params.get('ServiceNamespace')}, resource ID: {params.get('ResourceId')}, "
            f"scalable dimension: {params.get('ScalableDimension')}")


def no_target(params: dict[str, Any]) -> ObjectNotFound:
    return ObjectNotFound(f"No scalable target registered for {_where(params)}")


def no_policy(params: dict[str, Any]) -> ObjectNotFound:
    return ObjectNotFound(f"No scaling policy found for {_where(params)}, policy name: {params.get('PolicyName')}")


def no_scheduled_action(params: dict[str, Any]) -> ObjectNotFound:
    return ObjectNotFound(f"No scheduled action found for {_where(params)}, scheduled action name: "
                          f"{params.get('ScheduledActionName')}")


def check_registration(params: dict[str, Any], endpoint: Any, existing: dict[str, Any] | None) -> tuple[int, int]:
    """RegisterScalableTarget against the endpoint (a models.Endpoint); returns the (min, max) in force."""
    _, variant_name = parse_resource_id(params["ResourceId"])
    dimension = params["ScalableDimension"]
    if endpoint.status != "InService":
        raise ValidationException("The status should be in 'InService' to register it as a scalable target")
    variant = next((v for v in endpoint.variants if v.name == variant_name), None)
    if variant is None:
        raise ValidationException(f'The variant name "{variant_name}" is not present in endpoint "{endpoint.arn}". '
                                  f"Existing variants: {', '.join(v.name for v in endpoint.variants)}.")
    serverless = variant.desired_serverless
    if dimension == INSTANCE_COUNT and serverless is not None:
        raise ValidationException(f"Variant {variant_name} is serverless and has no instance count: register "
                                  f"{PROVISIONED_CONCURRENCY} for its provisioned concurrency instead.")
    if dimension == PROVISIONED_CONCURRENCY and (serverless or {}).get("ProvisionedConcurrency") is None:
        raise ValidationException(f"{PROVISIONED_CONCURRENCY} fits only a serverless variant with "
                                  f"ProvisionedConcurrency; variant {variant_name} has none. Use {INSTANCE_COUNT} "
                                  "for an instance-based variant.")
    low = params.get("MinCapacity", existing["min"] if existing else None)
    high = params.get("MaxCapacity", existing["max"] if existing else None)
    if low is None or high is None:
        raise ValidationException("MinCapacity and MaxCapacity are required when registering a new scalable target.")
    if low > high:
        raise ValidationException(f"Minimum capacity ({low}) cannot be greater than maximum capacity ({high}).")
    if dimension == INSTANCE_COUNT and low < 1 and "AsyncInferenceConfig" not in endpoint.features:
        raise ValidationException(f"MinCapacity {low} is not valid for variant {variant_name}: only asynchronous "
                                  "endpoints scale to zero instances; a real-time variant's minimum is 1.")
    return int(low), int(high)


def check_policy_type(params: dict[str, Any]) -> str:
    kind = params.get("PolicyType") or ""
    if kind not in ("TargetTrackingScaling", "StepScaling"):
        raise ValidationException(f"PolicyType {kind or '(none)'} is not supported for SageMaker variants: use "
                                  "TargetTrackingScaling or StepScaling.")
    member = ("TargetTrackingScalingPolicyConfiguration" if kind == "TargetTrackingScaling"
              else "StepScalingPolicyConfiguration")
    if not params.get(member):
        raise ValidationException(f"{member} is required for a {kind} policy.")
    return kind


def check_target_action(params: dict[str, Any], target: dict[str, Any]) -> None:
    action = params.get("ScalableTargetAction") or {}
    low, high = action.get("MinCapacity"), action.get("MaxCapacity")
    if low is None and high is None:
        raise ValidationException("ScalableTargetAction must set MinCapacity, MaxCapacity or both.")
    if (low if low is not None else target["min"]) > (high if high is not None else target["max"]):
        raise ValidationException("Minimum capacity cannot be greater than maximum capacity in ScalableTargetAction.")
