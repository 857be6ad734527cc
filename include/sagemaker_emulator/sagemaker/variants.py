"""CreateEndpointConfig rules for production variants beyond what botocore's shapes check.

The shapes already reject an instance type outside AWS's enum and a MemorySizeInMB outside
1024..6144 (with AWS's own wording). Here: the instance type must be in the emulator's catalog,
and a serverless variant must respect the constraints and feature exclusions AWS documents for
Serverless Inference.
"""

from __future__ import annotations

from typing import Any

from sagemaker_rules.instance_catalog import CATALOG_FILE, UnknownInstanceType, instance_type
from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_emulator.sagemaker.typed_requests import DesiredWeightAndCapacity, EndpointConfigSpec, ProductionVariant

SERVERLESS_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)


def validate_endpoint_config(spec: EndpointConfigSpec, models: dict[str, Any]) -> None:
    """Raise ``ValidationException`` for a config the emulator cannot host as AWS would."""
    variants = spec.production_variants
    for variant in variants:
        if variant.serverless_config:
            _check_serverless(variant, spec, len(variants), models[variant.model_name])
        elif variant.instance_type:
            require_cataloged(variant.instance_type, f"production variant {variant.variant_name}")


def require_cataloged(name: str, owner: str) -> None:
    """botocore's enum already refused unknown names; the emulator also needs the type's figures."""
    try:
        instance_type(name)
    except UnknownInstanceType:
        raise ValidationException(
            f"The instance type {name} of {owner} is a valid SageMaker instance type but is not in the "
            f"emulator's instance catalog. Add it to {CATALOG_FILE} with its vCPUs, memory, GPUs and hourly "
            "price.") from None


def _check_serverless(variant: ProductionVariant, spec: EndpointConfigSpec, variant_count: int, model: Any) -> None:
    name = variant.variant_name
    config = variant.serverless_config
    memory = config.memory_size_in_mb
    if memory not in SERVERLESS_MEMORY_SIZES_MB:
        raise ValidationException(
            f"MemorySizeInMB {memory} of production variant {name} is not valid. Valid values are in 1 GB "
            "increments: 1024 MB, 2048 MB, 3072 MB, 4096 MB, 5120 MB, or 6144 MB.")
    provisioned = config.provisioned_concurrency
    if provisioned is not None and provisioned > config.max_concurrency:
        raise ValidationException(
            f"ProvisionedConcurrency {provisioned} of production variant {name} must be less than or equal to "
            f"MaxConcurrency {config.max_concurrency}.")
    if variant.instance_type or variant.initial_instance_count is not None:
        raise ValidationException(
            f"Production variant {name} has a ServerlessConfig and an InstanceType or InitialInstanceCount: "
            "a variant is either serverless or instance-based. Remove one of them.")
    # The feature exclusions of Serverless Inference (AWS developer guide, "Feature exclusions").
    if variant_count > 1:
        raise _unsupported(name, "multiple production variants")
    if spec.data_capture_config and spec.data_capture_config.enabled:
        raise _unsupported(name, "data capture (DataCaptureConfig)")
    if len(model.containers) > 1:
        raise _unsupported(name, "inference pipelines (a model with several Containers)")
    if any(c.is_multi_model for c in model.containers):
        raise _unsupported(name, "multi-model endpoints (a container with Mode MultiModel)")


def _unsupported(variant: str, feature: str) -> ValidationException:
    return ValidationException(
        f"Production variant {variant} is serverless, and Serverless Inference does not support {feature}.")


def validate_capacity_change(variant: str, serverless: dict[str, Any] | None, desired: DesiredWeightAndCapacity) -> None:
    """UpdateEndpointWeightsAndCapacities: instance counts for instance-based variants, ServerlessUpdateConfig
    for serverless ones (``serverless`` is the variant's desired ServerlessConfig, None if it has none)."""
    update = desired.serverless_update_config
    if serverless is None:
        if update is not None:
            raise ValidationException(
                f"Variant {variant} is instance-based: ServerlessUpdateConfig applies only to serverless variants.")
        return
    if desired.desired_instance_count is not None:
        raise ValidationException(
            f"Variant {variant} is serverless and has no instance count: change its concurrency with "
            "ServerlessUpdateConfig instead of DesiredInstanceCount.")
    merged = {**serverless, **(update.to_aws() if update else {})}
    provisioned = merged.get("ProvisionedConcurrency")
    if provisioned is not None and provisioned > merged["MaxConcurrency"]:
        raise ValidationException(
            f"ProvisionedConcurrency {provisioned} of production variant {variant} must be less than or equal to "
            f"MaxConcurrency {merged['MaxConcurrency']}.")
