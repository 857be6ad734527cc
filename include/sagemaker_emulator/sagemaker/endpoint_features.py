"""Endpoint-config features beyond the production variants: data capture and asynchronous inference.

The state layer's share of them: what CreateEndpointConfig accepts, and what DescribeEndpoint shows
of the configuration an endpoint runs. The data path lives in ``runtime/capture.py`` and
``runtime/async_queue.py``.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.s3_uri import is_s3_uri
from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_emulator.sagemaker.shadows import describe_shadows
from sagemaker_emulator.sagemaker.typed_requests import DataCaptureConfig, EndpointConfigSpec


def validate_features(spec: EndpointConfigSpec) -> None:
    """CreateEndpointConfig's rules for DataCaptureConfig and AsyncInferenceConfig."""
    # Serverless variants with data capture are refused by sagemaker/variants.py (feature exclusions).
    if spec.data_capture_config:
        _require_s3_uri("DataCaptureConfig.DestinationS3Uri", spec.data_capture_config.destination_s3_uri)
    asynchronous = spec.async_inference_config
    if asynchronous:
        serverless = [v.variant_name for v in spec.production_variants if v.serverless_config]
        if serverless:
            raise ValidationException(
                f"Production variant {serverless[0]} is serverless, and Serverless Inference does not support "
                "asynchronous inference (AsyncInferenceConfig).")
        output = asynchronous.output_config
        if not output.s3_output_path:
            raise ValidationException("AsyncInferenceConfig.OutputConfig.S3OutputPath is required.")
        for field, value in (("S3OutputPath", output.s3_output_path), ("S3FailurePath", output.s3_failure_path)):
            if value:
                _require_s3_uri(f"AsyncInferenceConfig.OutputConfig.{field}", value)


def _require_s3_uri(field: str, value: str) -> None:
    # The API pattern also admits https:// URLs; the emulator writes through s3:// URIs only.
    if not is_s3_uri(value):
        raise ValidationException(f"{field} '{value}' is not a valid S3 URI: it must look like s3://bucket/prefix.")


def describe_features(spec: EndpointConfigSpec, models: dict[str, Any]) -> dict[str, Any]:
    """The DescribeEndpoint members that come from the endpoint configuration in service."""
    described: dict[str, Any] = {}
    if spec.shadow_production_variants:
        described["ShadowProductionVariants"] = describe_shadows(spec, models)
    if spec.data_capture_config:
        described["DataCaptureConfig"] = capture_summary(spec.data_capture_config)
    if spec.async_inference_config:
        described["AsyncInferenceConfig"] = spec.async_inference_config.to_aws()
    return described


def capture_summary(capture: DataCaptureConfig) -> dict[str, Any]:
    """DataCaptureConfigSummary: capture runs whenever it is enabled (EnableCapture defaults to true)."""
    summary = {
        "EnableCapture": capture.enabled,
        "CaptureStatus": "Started" if capture.enabled else "Stopped",
        "CurrentSamplingPercentage": capture.initial_sampling_percentage,
        "DestinationS3Uri": capture.destination_s3_uri,
    }
    if capture.kms_key_id:
        summary["KmsKeyId"] = capture.kms_key_id
    return summary
