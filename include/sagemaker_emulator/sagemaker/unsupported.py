"""Accepted means honoured, or said.

Every member of every request the emulator accepts is in one of three lists:

- ``REFUSED``: it would change how the endpoint or job behaves, and the emulator has not built that
  behaviour yet. A request that uses it fails with a ``ValidationException`` naming the member,
  instead of being silently served some other way;
- ``NO_LOCAL_EFFECT``: it means something only in AWS's data centres (networks, encryption keys,
  disk sizes, ...). It is accepted, kept, and returned by Describe*, and changes nothing locally.
  The README's "Accepted, no local effect" table is this list;
- ``HONOURED``: everything else the emulator does as AWS does.

``tests/unit/test_request_members.py`` walks botocore's input shapes and fails when a member is in
none of them, so a new botocore parameter cannot slip in unnoticed.

A path names a member from the request's top: ``ProductionVariants[].RoutingConfig`` is the
``RoutingConfig`` of every production variant; a path covers the members beneath it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from sagemaker_emulator.sagemaker.errors import RuntimeValidationError, ValidationException


def _always(value: Any) -> bool:
    return True


def _is_true(value: Any) -> bool:
    return value is True


@dataclass(frozen=True)
class Refusal:
    path: str
    reason: str  # what the emulator does instead, or what to send
    applies: Callable[[Any], bool] = _always  # refuse only values that would change behaviour


_VARIANT_LISTS = ("ProductionVariants", "ShadowProductionVariants")  # a shadow has a production variant's fields


def _variants(*refusals: Refusal) -> tuple[Refusal, ...]:
    """Refusals for a member of every production (and shadow) variant."""
    return tuple(Refusal(f"{owner}[].{r.path}", r.reason, r.applies) for owner in _VARIANT_LISTS for r in refusals)


def _containers(*refusals: Refusal) -> tuple[Refusal, ...]:
    return tuple(Refusal(f"{owner}.{r.path}", r.reason, r.applies)
                 for owner in ("PrimaryContainer", "Containers[]") for r in refusals)


def _non_default_metrics(config: Mapping[str, Any]) -> bool:
    return bool(config.get("EnableEnhancedMetrics") or config.get("EnableDetailedObservability")
                or config.get("MetricPublishFrequencyInSeconds", 60) != 60)


_DEFAULT_ROUTING = "RANDOM"
_MONITOR_APP = "the emulator runs Model Monitor's analyzer as it is (python -m data_quality); custom entrypoints, " \
               "arguments and pre/post-processing scripts are not run."
_MONITOR_ATTRIBUTES = "the analyzer profiles every captured feature; attribute selection for JSON records and " \
                      "ground-truth offsets are not built."
_ENDPOINT_INPUT_REFUSALS = (
    Refusal("S3InputMode", "the analyzer reads its input as files (S3InputMode File).", lambda v: v != "File"),
    *(Refusal(name, _MONITOR_ATTRIBUTES) for name in (
        "FeaturesAttribute", "InferenceAttribute", "ProbabilityAttribute", "ProbabilityThresholdAttribute",
        "StartTimeOffset", "EndTimeOffset", "ExcludeFeaturesAttribute")),
)
_MONITOR_APP_REFUSALS = tuple(Refusal(name, _MONITOR_APP) for name in (
    "ContainerEntrypoint", "ContainerArguments", "RecordPreprocessorSourceUri", "PostAnalyticsProcessorSourceUri"))
_BASELINING_JOB = Refusal("BaseliningJobName", "give the baseline's ConstraintsResource and StatisticsResource "
                                               "S3 URIs instead.")


def _prefixed(prefix: str, refusals: tuple[Refusal, ...]) -> tuple[Refusal, ...]:
    return tuple(Refusal(f"{prefix}.{r.path}", r.reason, r.applies) for r in refusals)


_GUARDRAILS = ("DeploymentConfig.BlueGreenUpdatePolicy", "DeploymentConfig.RollingUpdatePolicy",
               "DeploymentConfig.AutoRollbackConfiguration")

_SCHEDULE_REFUSALS = (
    *_prefixed("MonitoringScheduleConfig.MonitoringJobDefinition.MonitoringAppSpecification", _MONITOR_APP_REFUSALS),
    *_prefixed("MonitoringScheduleConfig.MonitoringJobDefinition.MonitoringInputs[].EndpointInput",
               _ENDPOINT_INPUT_REFUSALS),
    *_prefixed("MonitoringScheduleConfig.MonitoringJobDefinition.BaselineConfig", (_BASELINING_JOB,)),
)

REFUSED: dict[str, tuple[Refusal, ...]] = {
    "CreateModel": _containers(
        Refusal("ModelDataSource", "give the model archive as ModelDataUrl, the s3:// URI of a model.tar.gz."),
        Refusal("AdditionalModelDataSources", "only the one archive in ModelDataUrl is downloaded."),
        Refusal("ModelPackageName", "the emulator has no model registry; give Image and ModelDataUrl."),
        Refusal("InferenceSpecificationName", "the emulator has no model registry; give Image and ModelDataUrl."),
        Refusal("ContainerMetricsConfig", "container metrics endpoints are not scraped."),
    ),
    "CreateEndpointConfig": (
        *_variants(
            Refusal("InstancePools", "give one InstanceType per production variant."),
            Refusal("AcceleratorType", "Elastic Inference accelerators are not emulated."),
            Refusal("CoreDumpConfig", "core dumps of crashed workers are not collected."),
            Refusal("ManagedInstanceScaling", "managed instance scaling is not built; scale variants with "
                                              "Application Auto Scaling or UpdateEndpointWeightsAndCapacities.",
                    lambda v: v.get("Status") == "ENABLED"),
            Refusal("RoutingConfig", f"requests are spread over a variant's instances the default way "
                                     f"(RoutingStrategy {_DEFAULT_ROUTING}).",
                    lambda v: v.get("RoutingStrategy") != _DEFAULT_ROUTING or "PrefixAwareRoutingConfig" in v),
        ),
        Refusal("ExplainerConfig", "online explainability (SageMaker Clarify) is not built."),
        Refusal("MetricsConfig", "the emulator publishes the standard endpoint metrics every 60 seconds; enhanced "
                                 "metrics and detailed observability are not built.", _non_default_metrics),
    ),
    "CreateProcessingJob": (
        Refusal("ProcessingInputs[].DatasetDefinition", "inputs are read from S3 only (S3Input)."),
        Refusal("ProcessingInputs[].AppManaged", "inputs are read from S3 only (S3Input).", _is_true),
        Refusal("ProcessingInputs[].S3Input.S3InputMode", "inputs are downloaded as files (S3InputMode File).",
                lambda v: v != "File"),
        Refusal("ProcessingInputs[].S3Input.S3DataType", "inputs are S3 prefixes (S3DataType S3Prefix).",
                lambda v: v != "S3Prefix"),
        Refusal("ProcessingInputs[].S3Input.S3CompressionType", "inputs are downloaded as they are stored.",
                lambda v: v != "None"),
        Refusal("ProcessingOutputConfig.Outputs[].FeatureStoreOutput", "outputs are written to S3 only (S3Output)."),
        Refusal("ProcessingOutputConfig.Outputs[].AppManaged", "outputs are written to S3 only (S3Output).", _is_true),
        Refusal("ProcessingResources.ClusterConfig.InstancePreferences", "give one InstanceType."),
        Refusal("AppSpecification.ContainerEntrypoint", _MONITOR_APP),
        Refusal("AppSpecification.ContainerArguments", _MONITOR_APP),
    ),
    "CreateDataQualityJobDefinition": (
        *_prefixed("DataQualityAppSpecification", _MONITOR_APP_REFUSALS),
        *_prefixed("DataQualityJobInput.EndpointInput", _ENDPOINT_INPUT_REFUSALS),
        *_prefixed("DataQualityBaselineConfig", (_BASELINING_JOB,)),
    ),
    "CreateMonitoringSchedule": _SCHEDULE_REFUSALS,
    "UpdateMonitoringSchedule": _SCHEDULE_REFUSALS,
    "CreateInferenceRecommendationsJob": (
        Refusal("InputConfig.ModelPackageVersionArn",
                "the emulator has no model registry; give InputConfig.ModelName."),
        Refusal("InputConfig.EndpointConfigurations[].InferenceSpecificationName",
                "the emulator has no model registry; the model's own container is load-tested."),
        Refusal("InputConfig.Endpoints", "benchmarking an existing endpoint (EndpointPerformances) is not built; give "
                                         "EndpointConfigurations and the job load-tests its own endpoints.", bool),
        Refusal("OutputConfig.CompiledOutputConfig", "SageMaker Neo compilation is not built."),
    ),
}

_NETWORK = ("VpcConfig", "EnableNetworkIsolation")
_VARIANT_NO_EFFECT = tuple(f"{owner}[].{name}" for owner in _VARIANT_LISTS for name in (
    "VolumeSizeInGB", "EnableSSMAccess", "InferenceAmiVersion", "CapacityReservationConfig",
    "VariantInstanceProvisionTimeoutInSeconds"))
_CLUSTER_NO_EFFECT = {"InstanceCount": "one container runs the job", "VolumeSizeInGB": "no volume is provisioned",
                      "VolumeKmsKeyId": "no encryption at rest"}

# member path -> why it changes nothing locally (the README table's right-hand column)
NO_LOCAL_EFFECT: dict[str, dict[str, str]] = {
    "CreateModel": {
        "ExecutionRoleArn": "no IAM: workers read S3 as the emulator",
        **{name: "no VPC: workers are local processes" for name in _NETWORK},
        "PrimaryContainer.ImageConfig": "no image is pulled",
        "Containers[].ImageConfig": "no image is pulled",
    },
    "CreateEndpointConfig": {
        **{path: "instances are local processes, started at once" for path in _VARIANT_NO_EFFECT},
        "KmsKeyId": "no encryption at rest", "DataCaptureConfig.KmsKeyId": "no encryption at rest",
        "AsyncInferenceConfig.OutputConfig.KmsKeyId": "no encryption at rest",
        "ExecutionRoleArn": "no IAM", **{name: "no VPC" for name in _NETWORK},
    },
    "UpdateEndpoint": {
        "ExcludeRetainedVariantProperties[].VariantPropertyType=DataCaptureConfig":
            "AWS documents it as not supported; the new config's DataCaptureConfig applies",
    },
    "CreateProcessingJob": {
        "ProcessingInputs[].S3Input.S3DataDistributionType": "one container reads all the data",
        "ProcessingOutputConfig.Outputs[].S3Output.S3UploadMode=Continuous": "outputs are uploaded when the job ends",
        "ProcessingOutputConfig.KmsKeyId": "no encryption at rest",
        **{f"ProcessingResources.ClusterConfig.{name}": why for name, why in _CLUSTER_NO_EFFECT.items()},
        "ProcessingResources.ClusterConfig.SelectedInstanceType": "set by AWS, not by the caller",
        "ProcessingResources.ClusterConfig.SelectedInstanceCount": "set by AWS, not by the caller",
        "NetworkConfig": "no VPC", "RoleArn": "no IAM", "ExperimentConfig": "no SageMaker Experiments",
    },
    "CreateDataQualityJobDefinition": {
        "DataQualityJobInput.EndpointInput.S3DataDistributionType": "one container reads all the data",
        "DataQualityJobOutputConfig.MonitoringOutputs[].S3Output.S3UploadMode=Continuous":
            "outputs are uploaded when the job ends",
        "DataQualityJobOutputConfig.KmsKeyId": "no encryption at rest",
        **{f"JobResources.ClusterConfig.{name}": why for name, why in _CLUSTER_NO_EFFECT.items()},
        "NetworkConfig": "no VPC", "RoleArn": "no IAM",
    },
}
_IR_METADATA = "model metadata AWS uses to choose instance types; a Default job load-tests " \
               "ContainerConfig.SupportedInstanceTypes or the emulator's default set"
NO_LOCAL_EFFECT["CreateInferenceRecommendationsJob"] = {
    "RoleArn": "no IAM", "InputConfig.VolumeKmsKeyId": "no encryption at rest", "InputConfig.VpcConfig": "no VPC",
    "OutputConfig.KmsKeyId": "no encryption at rest",
    **{f"InputConfig.ContainerConfig.{name}": _IR_METADATA
       for name in ("Domain", "Task", "Framework", "FrameworkVersion", "NearestModelName")},
    "InputConfig.ContainerConfig.DataInputConfig": "input shapes for SageMaker Neo compilation, which is not built",
}
_SCHEDULE_DEFINITION = "MonitoringScheduleConfig.MonitoringJobDefinition"
NO_LOCAL_EFFECT["CreateMonitoringSchedule"] = NO_LOCAL_EFFECT["UpdateMonitoringSchedule"] = {
    f"{_SCHEDULE_DEFINITION}.MonitoringInputs[].EndpointInput.S3DataDistributionType": "one container reads all the data",
    f"{_SCHEDULE_DEFINITION}.MonitoringOutputConfig.MonitoringOutputs[].S3Output.S3UploadMode=Continuous":
        "outputs are uploaded when the job ends",
    f"{_SCHEDULE_DEFINITION}.MonitoringOutputConfig.KmsKeyId": "no encryption at rest",
    **{f"{_SCHEDULE_DEFINITION}.MonitoringResources.ClusterConfig.{name}": why
       for name, why in _CLUSTER_NO_EFFECT.items()},
    f"{_SCHEDULE_DEFINITION}.NetworkConfig": "no VPC", f"{_SCHEDULE_DEFINITION}.RoleArn": "no IAM",
}


_LISTS = ("SortBy", "SortOrder", "NextToken", "MaxResults", "NameContains", "CreationTimeBefore",
          "CreationTimeAfter", "LastModifiedTimeBefore", "LastModifiedTimeAfter", "StatusEquals")
_CONTAINER = ("ContainerHostname", "Image", "Mode", "ModelDataUrl", "Environment", "MultiModelConfig")
_ENDPOINT_INPUT = ("EndpointName", "LocalPath", "S3InputMode")
_OUTPUTS = ("S3Uri", "LocalPath", "S3UploadMode")

# What the emulator does as AWS does (the members of a listed structure included unless listed above).
HONOURED: dict[str, tuple[str, ...]] = {
    "CreateModel": ("ModelName", "InferenceExecutionConfig", "Tags",
                    *(f"{owner}.{name}" for owner in ("PrimaryContainer", "Containers[]") for name in _CONTAINER)),
    "CreateEndpointConfig": (
        "EndpointConfigName", "Tags", "DataCaptureConfig", "AsyncInferenceConfig",
        *(f"{owner}[].{name}" for owner in _VARIANT_LISTS for name in (
            "VariantName", "ModelName", "InitialInstanceCount", "InstanceType", "InitialVariantWeight",
            "ServerlessConfig", "ModelDataDownloadTimeoutInSeconds", "ContainerStartupHealthCheckTimeoutInSeconds",
            "ManagedInstanceScaling.Status"))),
    "CreateEndpoint": ("EndpointName", "EndpointConfigName", "Tags", *_GUARDRAILS),
    "UpdateEndpoint": ("EndpointName", "EndpointConfigName", "RetainAllVariantProperties",
                       "ExcludeRetainedVariantProperties", "RetainDeploymentConfig", *_GUARDRAILS),
    "UpdateEndpointWeightsAndCapacities": ("EndpointName", "DesiredWeightsAndCapacities"),
    "CreateProcessingJob": (
        "ProcessingJobName", "Environment", "StoppingCondition", "Tags", "AppSpecification.ImageUri",
        "ProcessingInputs[].InputName", "ProcessingInputs[].S3Input.S3Uri", "ProcessingInputs[].S3Input.LocalPath",
        "ProcessingOutputConfig.Outputs[].OutputName",
        *(f"ProcessingOutputConfig.Outputs[].S3Output.{name}" for name in _OUTPUTS),
        "ProcessingResources.ClusterConfig.InstanceType"),
    "CreateDataQualityJobDefinition": (
        "JobDefinitionName", "StoppingCondition", "Tags", "DataQualityAppSpecification.ImageUri",
        "DataQualityAppSpecification.Environment", "DataQualityBaselineConfig.ConstraintsResource",
        "DataQualityBaselineConfig.StatisticsResource", "DataQualityJobInput.BatchTransformInput",
        *(f"DataQualityJobInput.EndpointInput.{name}" for name in _ENDPOINT_INPUT),
        *(f"DataQualityJobOutputConfig.MonitoringOutputs[].S3Output.{name}" for name in _OUTPUTS),
        "JobResources.ClusterConfig.InstanceType"),
    "CreateMonitoringSchedule": (
        "MonitoringScheduleName", "Tags", "MonitoringScheduleConfig.ScheduleConfig",
        "MonitoringScheduleConfig.MonitoringJobDefinitionName", "MonitoringScheduleConfig.MonitoringType",
        *(f"{_SCHEDULE_DEFINITION}.{name}" for name in (
            "BaselineConfig.ConstraintsResource", "BaselineConfig.StatisticsResource",
            "MonitoringInputs[].BatchTransformInput", "MonitoringResources.ClusterConfig.InstanceType",
            "MonitoringAppSpecification.ImageUri", "StoppingCondition", "Environment",
            *(f"MonitoringInputs[].EndpointInput.{n}" for n in _ENDPOINT_INPUT),
            *(f"MonitoringOutputConfig.MonitoringOutputs[].S3Output.{n}" for n in _OUTPUTS)))),
    "AddTags": ("ResourceArn", "Tags"), "ListTags": ("ResourceArn", "NextToken", "MaxResults"),
    "DeleteTags": ("ResourceArn", "TagKeys"),
    "ListEndpoints": _LISTS, "ListModels": _LISTS, "ListEndpointConfigs": _LISTS, "ListProcessingJobs": _LISTS,
    "ListDataQualityJobDefinitions": ("EndpointName", *_LISTS),
    "ListMonitoringSchedules": ("EndpointName", "MonitoringJobDefinitionName", "MonitoringTypeEquals", *_LISTS),
    "ListMonitoringExecutions": ("MonitoringScheduleName", "EndpointName", "MonitoringJobDefinitionName",
                                 "MonitoringTypeEquals", "ScheduledTimeBefore", "ScheduledTimeAfter", *_LISTS),
}
HONOURED.update({
    "CreateInferenceRecommendationsJob": (
        "JobName", "JobType", "JobDescription", "Tags", "StoppingConditions",
        *(f"InputConfig.{name}" for name in (
            "ModelName", "JobDurationInSeconds", "TrafficPattern", "ResourceLimit",
            "EndpointConfigurations[].InstanceType", "EndpointConfigurations[].ServerlessConfig",
            "EndpointConfigurations[].EnvironmentParameterRanges", "ContainerConfig.PayloadConfig",
            "ContainerConfig.SupportedInstanceTypes", "ContainerConfig.SupportedEndpointType",
            "ContainerConfig.SupportedResponseMIMETypes"))),
    "ListInferenceRecommendationsJobs": ("ModelNameEquals", "ModelPackageVersionArnEquals", *_LISTS),
    "ListInferenceRecommendationsJobSteps": ("JobName", "Status", "StepType", "MaxResults", "NextToken"),
    "GetScalingConfigurationRecommendation": ("InferenceRecommendationsJobName", "RecommendationId", "EndpointName",
                                              "TargetCpuUtilizationPerCore", "ScalingPolicyObjective"),
})
HONOURED["UpdateMonitoringSchedule"] = tuple(p for p in HONOURED["CreateMonitoringSchedule"] if p != "Tags")


def values_at(params: Mapping[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """(AWS-style location, value) of every member at ``path`` that the request sets."""
    yield from _walk(params, path.split("."), [])


def _walk(node: Any, parts: list[str], shown: list[str]) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield ".".join(shown), node
        return
    name, many = (parts[0][:-2], True) if parts[0].endswith("[]") else (parts[0], False)
    if not isinstance(node, Mapping) or node.get(name) is None:
        return
    if not many:
        yield from _walk(node[name], parts[1:], shown + [name])
        return
    for index, item in enumerate(node[name], start=1):
        yield from _walk(item, parts[1:], shown + [f"{name}.{index}"])


def refuse_unsupported(operation: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValidationException`` for the first member the emulator does not support yet."""
    for refusal in REFUSED.get(operation, ()):
        for location, value in values_at(params, refusal.path):
            if refusal.applies(value):
                raise ValidationException(f"The emulator does not support {location} yet: {refusal.reason}")


# -- sagemaker-runtime: InvokeEndpoint's headers ----------------------------------------------------

INFERENCE_COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"
SESSION_HEADER = "X-Amzn-SageMaker-Session-Id"


def refuse_unsupported_headers(headers: Mapping[str, str]) -> None:
    """InferenceComponentName and SessionId name things the emulator's endpoints never have."""
    if INFERENCE_COMPONENT_HEADER in headers:
        # What AWS answers for an endpoint without inference components (the emulator builds none yet).
        raise RuntimeValidationError(
            "Inference Component Name header is not allowed for endpoints to which you dont have inference "
            "components. Please remove the Inference Component Name header and try again.")
    if SESSION_HEADER in headers:
        raise RuntimeValidationError(
            "The emulator does not support SessionId yet: stateful sessions are not built. Remove the "
            f"{SESSION_HEADER} header.")
