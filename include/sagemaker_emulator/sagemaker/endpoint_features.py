"""Endpoint-config features beyond the production variants: data capture and asynchronous inference.

The state layer's share of them: what CreateEndpointConfig accepts, and what DescribeEndpoint shows
of the configuration an endpoint runs. The data path lives in ``runtime/capture.py`` and
``runtime/async_queue.py``.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from sagemaker_emulator.s3_uri import is_s3_uri
from sagemaker_emulator.sagemaker.errors import ValidationException


def validate_features(spec: Mapping[str, Any]) -> None:
    """CreateEndpointConfig's rules for DataCaptureConfig and AsyncInferenceConfig."""
    # Serverless variants with data capture are refused by sagemaker/variants.py (feature exclusions).
    capture = spec.get("DataCaptureConfig")
    if capture:
        _require_s3_uri("DataCaptureConfig.DestinationS3Uri", capture["DestinationS3Uri"])
    asynchronous = spec.get("AsyncInferenceConfig")
    if asynchronous:
        serverless = [v["VariantName"] for v in spec["ProductionVariants"] if v.get("ServerlessConfig")]
        if serverless:
            raise ValidationException(
                f"Production variant {serverless[0]} is serverless, and Serverless Inference does not support "
                "asynchronous inference (AsyncInferenceConfig).")
        output = asynchronous["OutputConfig"]
        if not output.get("S3OutputPath"):
            raise ValidationException("AsyncInferenceConfig.OutputConfig.S3OutputPath is required.")
        for field in ("S3OutputPath", "S3FailurePath"):
            if output.get(field):
                _require_s3_uri(f"AsyncInferenceConfig.OutputConfig.{field}", output[field])


def _require_s3_uri(field: str, value: str) -> None:
    # The API pattern also admits https:// URLs; the emulator writes through s3:// URIs only.
    if not is_s3_uri(value):
        raise ValidationException(f"{field} '{value}' is not a valid S3 URI: it must look like s3://bucket/prefix.")


def describe_features(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The DescribeEndpoint members that come from the endpoint configuration in service."""
    described: dict[str, Any] = {}
    capture = spec.get("DataCaptureConfig")
    if capture:
        described["DataCaptureConfig"] = capture_summary(capture)
    if spec.get("AsyncInferenceConfig"):
        described["AsyncInferenceConfig"] = copy.deepcopy(spec["AsyncInferenceConfig"])
    return described


def capture_summary(capture: Mapping[str, Any]) -> dict[str, Any]:
    """DataCaptureConfigSummary: capture runs whenever it is enabled (EnableCapture defaults to true)."""
    enabled = bool(capture.get("EnableCapture", True))
    summary = {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
        "DestinationS3Uri": capture["DestinationS3Uri"],
    }
    if capture.get("KmsKeyId"):
        summary["KmsKeyId"] = capture["KmsKeyId"]
    return summary
