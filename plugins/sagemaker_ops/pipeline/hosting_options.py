"""The endpoint's hosting options (``endpoint.data_capture``, ``endpoint.async_inference``) and the
rules AWS applies across sections (Serverless Inference excludes most other options)."""

from __future__ import annotations

import re
from typing import Any

from sagemaker_ops.pipeline.fields import S3_URI, FieldReader, join
from sagemaker_ops.pipeline.models import (
    CAPTURE_MODES,
    AsyncInferenceConfig,
    DataCaptureConfig,
    EndpointConfig,
    ModelConfig,
)

SNS_TOPIC_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]*:\d{12}:[a-zA-Z0-9_.-]+$")
MEDIA_TYPE_PATTERN = re.compile(r"^[\w.+-]+/[\w.+*-]+$")
# AWS bounds (botocore's sagemaker service model).
MAX_CONTENT_TYPES = 10
MAX_ASYNC_CONCURRENCY_PER_INSTANCE = 1000


def read_data_capture(fields: FieldReader, value: Any, bucket: str | None) -> DataCaptureConfig:
    path = "endpoint.data_capture"
    data = fields.mapping(value, path)
    fields.no_unknown_keys(data, path, {"enabled", "sampling_percentage", "destination_s3_uri", "capture",
                                        "csv_content_types", "json_content_types"})
    capture = data.get("capture", ["input", "output"])
    if (not isinstance(capture, list) or not capture or len(set(map(str, capture))) != len(capture)
            or not set(map(str, capture)) <= set(CAPTURE_MODES)):
        fields.fail(f"{path}.capture", "must be a list of input and/or output (each at most once)", capture)
        capture = []
    return DataCaptureConfig(
        enabled=fields.boolean(data, path, "enabled", default=True),
        sampling_percentage=fields.integer(data, path, "sampling_percentage", minimum=0, maximum=100),
        destination_s3_uri=fields.string(data, path, "destination_s3_uri", default=f"s3://{bucket}/data-capture",
                                         **S3_URI),
        capture=tuple(capture),
        csv_content_types=_content_types(fields, data, path, "csv_content_types", default=["text/csv"]),
        json_content_types=_content_types(fields, data, path, "json_content_types", default=["application/json"]),
    )


def _content_types(fields: FieldReader, data: dict, path: str, key: str, *, default: list[str]) -> tuple[str, ...]:
    value = data.get(key, default)
    if (not isinstance(value, list) or not 1 <= len(value) <= MAX_CONTENT_TYPES
            or not all(isinstance(item, str) and MEDIA_TYPE_PATTERN.match(item) for item in value)):
        fields.fail(join(path, key), f"must be a list of 1 to {MAX_CONTENT_TYPES} content types like "
                                     f"{default[0]}", value)
        return tuple(default)
    return tuple(value)


def read_async_inference(fields: FieldReader, value: Any) -> AsyncInferenceConfig:
    path = "endpoint.async_inference"
    data = fields.mapping(value, path)
    fields.no_unknown_keys(data, path, {"output_path", "failure_path", "success_topic", "error_topic",
                                        "max_concurrent_invocations_per_instance"})
    topic = {"default": None, "pattern": SNS_TOPIC_ARN_PATTERN,
             "expectation": "an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:name"}
    return AsyncInferenceConfig(
        output_path=fields.string(data, path, "output_path", **S3_URI),
        failure_path=fields.string(data, path, "failure_path", **S3_URI),
        success_topic=fields.string(data, path, "success_topic", **topic),
        error_topic=fields.string(data, path, "error_topic", **topic),
        max_concurrent_invocations_per_instance=fields.integer(
            data, path, "max_concurrent_invocations_per_instance", minimum=1,
            maximum=MAX_ASYNC_CONCURRENCY_PER_INSTANCE, default=None),
    )


def check_serverless_exclusions(fields: FieldReader, model: ModelConfig, endpoint: EndpointConfig) -> None:
    """Serverless Inference excludes several variants, data capture, async, MME and multi-container."""
    serverless = next((variant.name for variant in endpoint.variants if variant.serverless), None)
    if serverless is None:
        return
    why = f"(variant {serverless} is serverless, and Serverless Inference does not support "
    if len(endpoint.variants) > 1:
        fields.fail("endpoint.variants", f"must hold a single variant {why}multiple production variants), "
                                         f"got {len(endpoint.variants)}")
    if endpoint.data_capture is not None:
        fields.fail("endpoint.data_capture", f"cannot be used {why}data capture)")
    if endpoint.async_inference is not None:
        fields.fail("endpoint.async_inference", f"cannot be used {why}asynchronous inference)")
    if model.kind == "multi-model":
        fields.fail("model.multi_model", f"cannot be used {why}multi-model endpoints)")
    if model.kind == "multi-container":
        fields.fail("model.containers", f"cannot be used {why}multi-container endpoints)")
