"""The ``endpoint:`` section: its name, variants (on instances or serverless) and waiter settings.

Its hosting options (``data_capture``, ``async_inference``) are read by
:mod:`sagemaker_ops.pipeline.hosting_options`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagemaker_ops.pipeline.fields import (
    INSTANCE_TYPE_PATTERN,
    MISSING,
    SAGEMAKER_NAME_PATTERN,
    FieldReader,
    join,
)
from sagemaker_ops.pipeline.hosting_options import read_async_inference, read_data_capture
from sagemaker_ops.pipeline.models import EndpointConfig, ServerlessConfig, VariantConfig, WaiterConfig

# AWS bounds (botocore's sagemaker service model and the Serverless Inference docs).
SERVERLESS_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200


def read_endpoint(fields: FieldReader, data: dict, pipeline_name: str | None, bucket: str | None) -> EndpointConfig:
    fields.no_unknown_keys(data, "endpoint", {"name", "variants", "replace_failed", "waiter", "data_capture",
                                              "async_inference"})
    variants_data = fields.item_list(data, "endpoint", "variants", "variants")
    variants = tuple(_variant(fields, item, f"endpoint.variants[{index}]") for index, item in enumerate(variants_data))
    fields.unique([variant.name for variant in variants if variant], "endpoint.variants", "names")
    waiter = fields.mapping(data.get("waiter", {}), "endpoint.waiter")
    fields.no_unknown_keys(waiter, "endpoint.waiter", {"deferrable", "delay_seconds", "max_attempts"})
    return EndpointConfig(
        name=fields.string(data, "endpoint", "name", default=pipeline_name, pattern=SAGEMAKER_NAME_PATTERN,
                           max_length=63, expectation="a SageMaker endpoint name"),
        variants=tuple(variant for variant in variants if variant),
        data_capture=read_data_capture(fields, data["data_capture"], bucket) if "data_capture" in data else None,
        async_inference=read_async_inference(fields, data["async_inference"]) if "async_inference" in data else None,
        replace_failed=fields.boolean(data, "endpoint", "replace_failed", default=True),
        waiter=WaiterConfig(
            deferrable=fields.boolean(waiter, "endpoint.waiter", "deferrable", default=False),
            delay_seconds=fields.integer(waiter, "endpoint.waiter", "delay_seconds", default=30, minimum=1),
            max_attempts=fields.integer(waiter, "endpoint.waiter", "max_attempts", default=120, minimum=1),
        ),
    )


def _variant(fields: FieldReader, item: Any, path: str) -> VariantConfig | None:
    if not isinstance(item, Mapping):
        fields.fail(path, "must be a mapping (name, instance_type, instance_count, weight)", item)
        return None
    data = dict(item)
    fields.no_unknown_keys(data, path, {"name", "instance_type", "instance_count", "weight", "serverless"})
    name = fields.string(data, path, "name", pattern=SAGEMAKER_NAME_PATTERN, max_length=63,
                         expectation="a SageMaker variant name")
    weight = fields.number(data, path, "weight", default=1.0, minimum=0.0)
    if "serverless" in data:
        for key in sorted({"instance_type", "instance_count"} & set(data)):
            fields.fail(join(path, key), "cannot be combined with serverless (serverless capacity is "
                                         "memory_size_mb and max_concurrency, not instances)", data[key])
        return VariantConfig(name=name, instance_type=None, instance_count=None, weight=weight,
                             serverless=_serverless(fields, data["serverless"], join(path, "serverless")))
    return VariantConfig(
        name=name,
        instance_type=fields.string(data, path, "instance_type", pattern=INSTANCE_TYPE_PATTERN,
                                    expectation="an ml.* instance type like ml.m5.large"),
        instance_count=fields.integer(data, path, "instance_count", minimum=1),
        weight=weight,
    )


def _serverless(fields: FieldReader, value: Any, path: str) -> ServerlessConfig:
    if not isinstance(value, Mapping):
        fields.fail(path, "must be a mapping (memory_size_mb, max_concurrency)", value)
        value = {}
    data = dict(value)
    fields.no_unknown_keys(data, path, {"memory_size_mb", "max_concurrency", "provisioned_concurrency"})
    sizes = ", ".join(str(size) for size in SERVERLESS_MEMORY_SIZES_MB)
    memory = data.get("memory_size_mb", MISSING)
    if memory is MISSING:
        fields.fail(f"{path}.memory_size_mb", f"is required (one of {sizes})")
    elif not isinstance(memory, int) or isinstance(memory, bool) or memory not in SERVERLESS_MEMORY_SIZES_MB:
        fields.fail(f"{path}.memory_size_mb", f"must be one of {sizes} (1 GB steps)", memory)
    concurrency = fields.integer(data, path, "max_concurrency", minimum=1, maximum=SERVERLESS_MAX_CONCURRENCY)
    provisioned = fields.integer(data, path, "provisioned_concurrency", minimum=1, maximum=concurrency or 1,
                                 default=None)  # AWS: 1 to MaxConcurrency
    return ServerlessConfig(memory_size_mb=memory, max_concurrency=concurrency, provisioned_concurrency=provisioned)
