"""Shadow variants (``ShadowProductionVariants`` of CreateEndpointConfig): the state layer's share.

AWS's rules (CreateEndpointConfig reference and the "Shadow tests" guide): at most one shadow variant,
and a config with a shadow has exactly one production variant; a shadow has the fields of a production
variant; shadow testing does not work with serverless inference, asynchronous inference, multi-container
or multi-model endpoints. The shadow's ``InitialVariantWeight`` is the share of requests copied to it,
relative to the production variants' total weight. The data path lives in ``runtime/shadow.py``.
"""

from __future__ import annotations

from typing import Any, Callable

from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_emulator.sagemaker.typed_requests import EndpointConfigSpec, ProductionVariant
from sagemaker_emulator.sagemaker.variants import require_cataloged


def shadow_variants(spec: EndpointConfigSpec) -> list[ProductionVariant]:
    return spec.shadow_production_variants or []


def copy_share(spec: EndpointConfigSpec) -> float:
    """The share of requests copied to the shadow: its weight over the production variants' total, at most 1."""
    shadows = shadow_variants(spec)
    if not shadows:
        return 0.0
    production = sum(v.weight for v in spec.production_variants)
    return min(1.0, shadows[0].weight / production) if production > 0 else 0.0


def validate_shadow_variants(spec: EndpointConfigSpec, get_model: Callable[[str], Any]) -> None:
    """Raise ``ValidationException`` for a ShadowProductionVariants AWS would refuse or the emulator cannot host."""
    shadows = shadow_variants(spec)
    if not shadows:
        return
    if len(shadows) > 1:
        raise ValidationException(
            f"ShadowProductionVariants has {len(shadows)} variants: an endpoint configuration can have at most "
            "one shadow variant.")
    if len(spec.production_variants) != 1:
        raise ValidationException(
            f"An endpoint configuration with ShadowProductionVariants must have exactly one production variant; "
            f"it has {len(spec.production_variants)}. Split the traffic between models with production variant "
            "weights, or shadow-test one model against a single production variant.")
    shadow = shadows[0]
    name = shadow.variant_name
    production_names = {v.variant_name for v in spec.production_variants}
    if name in production_names:
        raise ValidationException(
            f"Variant names must be unique within an endpoint configuration: {[name]} is both a production "
            "variant and a shadow variant. Rename the shadow variant.")
    if not shadow.model_name:
        raise ValidationException(f"ModelName is required for shadow variant {name}.")
    model = get_model(shadow.model_name)
    if shadow.serverless_config or any(v.serverless_config for v in spec.production_variants):
        raise _incompatible(name, "serverless inference (ServerlessConfig)")
    if spec.async_inference_config:
        raise _incompatible(name, "asynchronous inference (AsyncInferenceConfig)")
    if not shadow.instance_type or shadow.initial_instance_count is None:
        raise ValidationException(f"InstanceType and InitialInstanceCount are required for shadow variant {name}.")
    require_cataloged(shadow.instance_type, f"shadow variant {name}")
    for owner, model_name in ((name, shadow.model_name), *((v.variant_name, v.model_name)
                                                          for v in spec.production_variants)):
        containers = (model if model_name == shadow.model_name else get_model(model_name)).containers
        if len(containers) > 1:
            raise _incompatible(owner, "multi-container endpoints (a model with several Containers)")
        if any(c.is_multi_model for c in containers):
            raise _incompatible(owner, "multi-model endpoints (a container with Mode MultiModel)")


def _incompatible(variant: str, feature: str) -> ValidationException:
    return ValidationException(
        f"Shadow variants are not supported with {feature}, which variant {variant} uses. "
        "Remove ShadowProductionVariants or the feature.")


def refuse_guarded_with_shadows(current_features: dict[str, Any], new_spec: EndpointConfigSpec) -> None:
    """Design decision (AWS documents no guardrails for shadows): an update involving a shadow variant
    runs all at once, without DeploymentConfig."""
    if shadow_variants(new_spec) or current_features.get("ShadowProductionVariants"):
        raise ValidationException(
            "The emulator does not support DeploymentConfig for endpoints with shadow variants "
            "(ShadowProductionVariants in the current or the new endpoint configuration): update the endpoint "
            "without DeploymentConfig, which replaces both fleets all at once.")


def describe_shadows(spec: EndpointConfigSpec, models: dict[str, Any]) -> list[dict[str, Any]]:
    """DescribeEndpoint's ShadowProductionVariants: ProductionVariantSummary entries of the config's shadows."""
    return [{
        "VariantName": v.variant_name,
        "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image}],
        "CurrentWeight": v.weight, "DesiredWeight": v.weight,
        "CurrentInstanceCount": v.instance_count, "DesiredInstanceCount": v.instance_count,
    } for v in shadow_variants(spec) for image in [models[v.model_name].containers[0].image or ""]]
