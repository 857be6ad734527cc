"""Typed requests: the wire layer's validated dicts become these objects, and raw AWS dicts stop here.

Each class names the members the emulator acts on as snake_case attributes (``ModelDataUrl`` is
``model_data_url``); members it accepts without acting on them (``VpcConfig``, ``KmsKeyId``, ...) ride
along in ``extra``, so ``to_aws()`` gives back exactly what the caller sent and Describe* answers as
AWS does. The runtime and the controllers read attributes, never AWS member names.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, TypeVar

Shape = TypeVar("Shape", bound="AwsShape")


def tags_member() -> Any:
    """A request's ``Tags`` (``[{"Key", "Value"}]``), held as a dict; they live on the resource, not in Describe*."""
    return field(default_factory=dict, metadata={"aws": "Tags", "tags": True})


def aws_name(name: str) -> Any:
    """A field whose AWS member name is not the CamelCase of its own (``MemorySizeInMB``)."""
    return field(default=None, metadata={"aws": name})


def _camel(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


@lru_cache(maxsize=None)
def _members(cls: type) -> tuple[tuple[str, str, type | None, bool], ...]:
    """(attribute, AWS member, nested shape class or None, is a list) for every field but ``extra`` and tags."""
    hints = typing.get_type_hints(cls)
    members = []
    for f in dataclasses.fields(cls):
        if f.name == "extra" or f.metadata.get("tags"):
            continue
        nested, many = _nested(hints[f.name])
        members.append((f.name, f.metadata.get("aws") or _camel(f.name), nested, many))
    return tuple(members)


def _nested(hint: Any) -> tuple[type | None, bool]:
    for arg in (hint, *typing.get_args(hint)):
        if isinstance(arg, type) and issubclass(arg, AwsShape):
            return arg, False
        if typing.get_origin(arg) is list:
            inner = typing.get_args(arg)[0]
            if isinstance(inner, type) and issubclass(inner, AwsShape):
                return inner, True
    return None, False


@dataclass(kw_only=True)
class AwsShape:
    """A request structure: typed members, plus the members the emulator only keeps (``extra``)."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_aws(cls: type[Shape], value: Mapping[str, Any]) -> Shape:
        known, kwargs = set(), {}
        for attribute, member, nested, many in _members(cls):
            known.add(member)
            if value.get(member) is None:
                continue
            raw = value[member]
            if nested is None:
                kwargs[attribute] = copy.deepcopy(raw)
            else:
                kwargs[attribute] = [nested.from_aws(v) for v in raw] if many else nested.from_aws(raw)
        extra = {k: copy.deepcopy(v) for k, v in value.items() if k not in known and k != "Tags"}
        if any(f.metadata.get("tags") for f in dataclasses.fields(cls)):
            kwargs["tags"] = {tag["Key"]: tag.get("Value", "") for tag in value.get("Tags") or ()}
        return cls(**kwargs, extra=extra)

    def to_aws(self) -> dict[str, Any]:
        """The AWS shape back, as the caller sent it (``Tags`` excepted: they live on the resource)."""
        out: dict[str, Any] = {}
        for attribute, member, nested, many in _members(type(self)):
            value = getattr(self, attribute)
            if value is None:
                continue
            if nested is None:
                out[member] = copy.deepcopy(value)
            else:
                out[member] = [v.to_aws() for v in value] if many else value.to_aws()
        return {**out, **copy.deepcopy(self.extra)}


# -- CreateModel ------------------------------------------------------------------------------------

@dataclass(kw_only=True)
class MultiModelConfig(AwsShape):
    model_cache_setting: str | None = None


@dataclass(kw_only=True)
class ContainerDefinition(AwsShape):
    container_hostname: str | None = None
    image: str | None = None
    mode: str | None = None
    model_data_url: str | None = None
    environment: dict[str, str] | None = None
    multi_model_config: MultiModelConfig | None = None

    @property
    def is_multi_model(self) -> bool:
        return self.mode == "MultiModel"

    @property
    def caches_models(self) -> bool:
        """ModelCacheSetting: Enabled unless said otherwise."""
        return (self.multi_model_config is None or self.multi_model_config.model_cache_setting != "Disabled")

    def name(self, index: int) -> str:
        """How SageMaker names the container: its hostname, else container_<n> (1-based)."""
        return self.container_hostname or f"container_{index + 1}"


@dataclass(kw_only=True)
class InferenceExecutionConfig(AwsShape):
    mode: str | None = None


@dataclass(kw_only=True)
class ModelSpec(AwsShape):
    """CreateModel's request."""

    model_name: str | None = None
    tags: dict[str, str] = tags_member()
    primary_container: ContainerDefinition | None = None
    containers: list[ContainerDefinition] | None = None
    inference_execution_config: InferenceExecutionConfig | None = None

    @property
    def all_containers(self) -> list[ContainerDefinition]:
        if self.primary_container is not None:
            return [self.primary_container]
        return list(self.containers or [])

    @property
    def execution_mode(self) -> str:
        """How several containers serve: Serial (a pipeline, the default) or Direct."""
        return (self.inference_execution_config.mode if self.inference_execution_config else None) or "Serial"


# -- CreateEndpointConfig ---------------------------------------------------------------------------

@dataclass(kw_only=True)
class ServerlessConfig(AwsShape):
    memory_size_in_mb: int | None = aws_name("MemorySizeInMB")
    max_concurrency: int | None = None
    provisioned_concurrency: int | None = None


@dataclass(kw_only=True)
class ProductionVariant(AwsShape):
    variant_name: str | None = None
    model_name: str | None = None
    initial_instance_count: int | None = None
    instance_type: str | None = None
    initial_variant_weight: float | None = None
    serverless_config: ServerlessConfig | None = None
    model_data_download_timeout_in_seconds: int | None = None
    container_startup_health_check_timeout_in_seconds: int | None = None

    @property
    def weight(self) -> float:
        return float(1.0 if self.initial_variant_weight is None else self.initial_variant_weight)

    @property
    def instance_count(self) -> int:
        return int(1 if self.initial_instance_count is None else self.initial_instance_count)


@dataclass(kw_only=True)
class CaptureOption(AwsShape):
    capture_mode: str | None = None


@dataclass(kw_only=True)
class CaptureContentTypeHeader(AwsShape):
    csv_content_types: list[str] | None = None
    json_content_types: list[str] | None = None


@dataclass(kw_only=True)
class DataCaptureConfig(AwsShape):
    enable_capture: bool | None = None
    initial_sampling_percentage: int | None = None
    destination_s3_uri: str | None = None
    kms_key_id: str | None = None
    capture_options: list[CaptureOption] | None = None
    capture_content_type_header: CaptureContentTypeHeader | None = None

    @property
    def enabled(self) -> bool:
        """EnableCapture defaults to true."""
        return self.enable_capture is not False

    @property
    def modes(self) -> set[str]:
        return {option.capture_mode for option in self.capture_options or ()}


@dataclass(kw_only=True)
class AsyncInferenceClientConfig(AwsShape):
    max_concurrent_invocations_per_instance: int | None = None


@dataclass(kw_only=True)
class AsyncInferenceNotificationConfig(AwsShape):
    success_topic: str | None = None
    error_topic: str | None = None
    include_inference_response_in: list[str] | None = None


@dataclass(kw_only=True)
class AsyncInferenceOutputConfig(AwsShape):
    s3_output_path: str | None = None
    s3_failure_path: str | None = None
    notification_config: AsyncInferenceNotificationConfig | None = None


@dataclass(kw_only=True)
class AsyncInferenceConfig(AwsShape):
    client_config: AsyncInferenceClientConfig | None = None
    output_config: AsyncInferenceOutputConfig | None = None

    @property
    def notifications(self) -> AsyncInferenceNotificationConfig:
        found = self.output_config.notification_config if self.output_config else None
        return found or AsyncInferenceNotificationConfig()


@dataclass(kw_only=True)
class EndpointConfigSpec(AwsShape):
    """CreateEndpointConfig's request."""

    endpoint_config_name: str | None = None
    tags: dict[str, str] = tags_member()
    production_variants: list[ProductionVariant] = field(default_factory=list)
    shadow_production_variants: list[ProductionVariant] | None = None  # at most one (sagemaker/shadows.py)
    data_capture_config: DataCaptureConfig | None = None
    async_inference_config: AsyncInferenceConfig | None = None


# -- CreateEndpoint, UpdateEndpoint, UpdateEndpointWeightsAndCapacities -------------------------------

@dataclass(kw_only=True)
class CapacitySize(AwsShape):
    type: str | None = None  # INSTANCE_COUNT | CAPACITY_PERCENT
    value: int | None = None


@dataclass(kw_only=True)
class TrafficRoutingConfig(AwsShape):
    type: str | None = None  # ALL_AT_ONCE | CANARY | LINEAR
    wait_interval_in_seconds: int | None = None
    canary_size: CapacitySize | None = None
    linear_step_size: CapacitySize | None = None


@dataclass(kw_only=True)
class BlueGreenUpdatePolicy(AwsShape):
    traffic_routing_configuration: TrafficRoutingConfig | None = None
    termination_wait_in_seconds: int | None = None
    maximum_execution_timeout_in_seconds: int | None = None


@dataclass(kw_only=True)
class RollingUpdatePolicy(AwsShape):
    maximum_batch_size: CapacitySize | None = None
    wait_interval_in_seconds: int | None = None
    maximum_execution_timeout_in_seconds: int | None = None
    rollback_maximum_batch_size: CapacitySize | None = None


@dataclass(kw_only=True)
class AlarmName(AwsShape):
    alarm_name: str | None = None


@dataclass(kw_only=True)
class AutoRollbackConfig(AwsShape):
    alarms: list[AlarmName] | None = None


@dataclass(kw_only=True)
class DeploymentConfig(AwsShape):
    """UpdateEndpoint's guardrails: one update policy, and the alarms that roll it back."""

    blue_green_update_policy: BlueGreenUpdatePolicy | None = None
    rolling_update_policy: RollingUpdatePolicy | None = None
    auto_rollback_configuration: AutoRollbackConfig | None = None

    @property
    def alarm_names(self) -> list[str]:
        return [a.alarm_name for a in (self.auto_rollback_configuration.alarms or ())] \
            if self.auto_rollback_configuration else []


@dataclass(kw_only=True)
class CreateEndpointRequest(AwsShape):
    endpoint_name: str | None = None
    endpoint_config_name: str | None = None
    deployment_config: DeploymentConfig | None = None
    tags: dict[str, str] = tags_member()


@dataclass(kw_only=True)
class VariantProperty(AwsShape):
    variant_property_type: str | None = None


@dataclass(kw_only=True)
class UpdateEndpointRequest(AwsShape):
    endpoint_name: str | None = None
    endpoint_config_name: str | None = None
    retain_all_variant_properties: bool | None = None
    exclude_retained_variant_properties: list[VariantProperty] | None = None
    deployment_config: DeploymentConfig | None = None
    retain_deployment_config: bool | None = None

    @property
    def excluded_properties(self) -> set[str]:
        return {p.variant_property_type for p in self.exclude_retained_variant_properties or ()}


@dataclass(kw_only=True)
class ServerlessUpdateConfig(AwsShape):
    max_concurrency: int | None = None
    provisioned_concurrency: int | None = None


@dataclass(kw_only=True)
class DesiredWeightAndCapacity(AwsShape):
    variant_name: str | None = None
    desired_weight: float | None = None
    desired_instance_count: int | None = None
    serverless_update_config: ServerlessUpdateConfig | None = None


@dataclass(kw_only=True)
class UpdateEndpointWeightsAndCapacitiesRequest(AwsShape):
    endpoint_name: str | None = None
    desired_weights_and_capacities: list[DesiredWeightAndCapacity] = field(default_factory=list)



# -- CreateProcessingJob ----------------------------------------------------------------------------

@dataclass(kw_only=True)
class ProcessingS3Input(AwsShape):
    s3_uri: str | None = None
    local_path: str | None = None


@dataclass(kw_only=True)
class ProcessingInput(AwsShape):
    input_name: str | None = None
    s3_input: ProcessingS3Input | None = None


@dataclass(kw_only=True)
class ProcessingS3Output(AwsShape):
    s3_uri: str | None = None
    local_path: str | None = None


@dataclass(kw_only=True)
class ProcessingOutput(AwsShape):
    output_name: str | None = None
    s3_output: ProcessingS3Output | None = None


@dataclass(kw_only=True)
class ProcessingOutputConfig(AwsShape):
    outputs: list[ProcessingOutput] = field(default_factory=list)


@dataclass(kw_only=True)
class ProcessingClusterConfig(AwsShape):
    instance_type: str | None = None


@dataclass(kw_only=True)
class ProcessingResources(AwsShape):
    cluster_config: ProcessingClusterConfig | None = None


@dataclass(kw_only=True)
class StoppingCondition(AwsShape):
    max_runtime_in_seconds: int | None = None


@dataclass(kw_only=True)
class AppSpecification(AwsShape):
    image_uri: str | None = None


@dataclass(kw_only=True)
class ProcessingJobRequest(AwsShape):
    """CreateProcessingJob's request (also what a monitoring execution starts)."""

    processing_job_name: str | None = None
    tags: dict[str, str] = tags_member()
    processing_inputs: list[ProcessingInput] = field(default_factory=list)
    processing_output_config: ProcessingOutputConfig | None = None
    processing_resources: ProcessingResources | None = None
    stopping_condition: StoppingCondition | None = None
    app_specification: AppSpecification | None = None
    environment: dict[str, str] | None = None

    @property
    def outputs(self) -> list[ProcessingOutput]:
        return self.processing_output_config.outputs if self.processing_output_config else []

    @property
    def max_runtime_seconds(self) -> int | None:
        return self.stopping_condition.max_runtime_in_seconds if self.stopping_condition else None

# The operations whose requests the wire layer hands to the state layer typed.
REQUEST_TYPES: dict[str, type[AwsShape]] = {
    "CreateModel": ModelSpec,
    "CreateEndpointConfig": EndpointConfigSpec,
    "CreateEndpoint": CreateEndpointRequest,
    "UpdateEndpoint": UpdateEndpointRequest,
    "UpdateEndpointWeightsAndCapacities": UpdateEndpointWeightsAndCapacitiesRequest,
    "CreateProcessingJob": ProcessingJobRequest,
}
