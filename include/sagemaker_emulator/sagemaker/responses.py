"""SageMaker control-plane wire protocol: JSON 1.1 with ``X-Amz-Target: SageMaker.<Operation>``.

Only parsing, validation against botocore's input shape (and the refusal of members the emulator does
not support yet), the turn into typed requests, dispatch and serialisation live here; behaviour lives
in ``models.SageMakerBackend``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from sagemaker_emulator.sagemaker.errors import AwsError, UnknownOperation
from sagemaker_emulator.sagemaker.models import SageMakerBackend
from sagemaker_emulator.sagemaker.shapes import validate_input
from sagemaker_emulator.sagemaker.typed_requests import REQUEST_TYPES
from sagemaker_emulator.sagemaker.unsupported import refuse_unsupported

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

OPERATIONS = (
    "CreateModel", "DescribeModel", "DeleteModel", "ListModels",
    "CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig", "ListEndpointConfigs",
    "CreateEndpoint", "DescribeEndpoint", "UpdateEndpoint", "DeleteEndpoint", "ListEndpoints",
    "UpdateEndpointWeightsAndCapacities",
    "CreateProcessingJob", "DescribeProcessingJob", "ListProcessingJobs", "StopProcessingJob",
    "CreateDataQualityJobDefinition", "DescribeDataQualityJobDefinition", "ListDataQualityJobDefinitions",
    "DeleteDataQualityJobDefinition",
    "CreateMonitoringSchedule", "DescribeMonitoringSchedule", "UpdateMonitoringSchedule", "DeleteMonitoringSchedule",
    "ListMonitoringSchedules", "StopMonitoringSchedule", "StartMonitoringSchedule", "ListMonitoringExecutions",
    "AddTags", "ListTags", "DeleteTags",
    "CreateInferenceRecommendationsJob", "DescribeInferenceRecommendationsJob", "ListInferenceRecommendationsJobs",
    "StopInferenceRecommendationsJob", "ListInferenceRecommendationsJobSteps", "GetScalingConfigurationRecommendation",
)


def snake_case(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def error_body(error: AwsError) -> bytes:
    return json.dumps({"__type": error.code, "message": error.message, **error.fields}).encode()


def _method(backend: SageMakerBackend, operation: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    name = snake_case(operation)
    owner = next(o for o in (backend, *backend.services) if hasattr(o, name))
    return getattr(owner, name)


def handle(backend: SageMakerBackend, target: str, body: bytes) -> tuple[int, bytes]:
    """Run one control-plane request; return (HTTP status, JSON body)."""
    operation = target.split(".", 1)[1] if "." in target else target
    try:
        if operation not in OPERATIONS:
            raise UnknownOperation(operation)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise AwsError("SerializationException", "Request body is not valid JSON") from None
        if not isinstance(params, dict):
            raise AwsError("SerializationException", "Request body must be a JSON object")
        validate_input("sagemaker", operation, params)
        refuse_unsupported(operation, params)
        request = REQUEST_TYPES[operation].from_aws(params) if operation in REQUEST_TYPES else params
        return 200, json.dumps(_method(backend, operation)(request)).encode()
    except AwsError as error:
        return error.status, error_body(error)
