"""What a release pipeline file holds, as frozen dataclasses (read by :mod:`sagemaker_ops.pipeline`).

Pure data: the requests these become (CreateEndpointConfig's ProductionVariants, DataCaptureConfig,
AsyncInferenceConfig) are built next to the operator that sends them,
:mod:`sagemaker_ops.operators.sagemaker_resources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker_ops.packaging import MULTI_MODEL_SUFFIX

PIPELINE_TAG_KEY = "sagemaker-ops:pipeline"
# A container's image and environment: the same names in the YAML file, here and in EnsureModelOperator.
IMAGE_FIELDS = ("image_uri", "framework", "framework_version", "environment")
# What a data-capture entry may name, and the CaptureMode AWS calls it.
CAPTURE_MODES = {"input": "Input", "output": "Output"}


@dataclass(frozen=True)
class ServerlessConfig:
    """A serverless variant's capacity: memory per worker and concurrent requests, instead of instances."""

    memory_size_mb: int
    max_concurrency: int
    provisioned_concurrency: int | None = None  # warm workers; what scaling: changes for a serverless variant


@dataclass(frozen=True)
class VariantConfig:
    """One production variant: on ``instance_count`` instances of ``instance_type``, or serverless."""

    name: str
    instance_type: str | None
    instance_count: int | None
    weight: float
    serverless: ServerlessConfig | None = None


@dataclass(frozen=True)
class ArchiveConfig:
    """One model of a multi-model endpoint: served as ``<name>.tar.gz`` (its TargetModel)."""

    name: str
    source_dir: Path

    @property
    def target_model(self) -> str:
        return f"{self.name}{MULTI_MODEL_SUFFIX}"


@dataclass(frozen=True)
class ContainerConfig:
    """One container of a multi-container model."""

    hostname: str | None
    source_dir: Path
    image_uri: str | None
    framework: str | None
    framework_version: str | None
    environment: dict[str, str]

    def key(self, index: int) -> str:
        """A name for this container's tasks: its hostname, else its position."""
        return (self.hostname or f"container-{index + 1}").replace("-", "_")


@dataclass(frozen=True)
class ModelConfig:
    """
    What to serve. ``kind`` is ``single`` (``source``), ``multi-model`` (``multi_model``) or
    ``multi-container`` (``containers``); the image fields belong to the single or MultiModel
    container (each container of a multi-container model has its own).
    """

    source_dir: Path | None
    role_arn: str
    image_uri: str | None
    framework: str | None
    framework_version: str | None
    environment: dict[str, str]
    multi_model: tuple[ArchiveConfig, ...] = ()
    containers: tuple[ContainerConfig, ...] = ()
    inference_mode: str | None = None

    @property
    def kind(self) -> str:
        if self.multi_model:
            return "multi-model"
        if self.containers:
            return "multi-container"
        return "single"


@dataclass(frozen=True)
class ArtifactsConfig:
    """Where the release writes its archives: ``s3://<bucket>/<prefix>/...``."""

    bucket: str
    prefix: str

    def uri(self, *parts: str) -> str:
        """``s3://<bucket>/<prefix>/<part>/...``: where the archives go."""
        return "/".join((f"s3://{self.bucket}", self.prefix, *parts))


@dataclass(frozen=True)
class WaiterConfig:
    """How the release's operators wait: looks ``delay_seconds`` apart, at most ``max_attempts``, deferred or not."""

    deferrable: bool
    delay_seconds: int
    max_attempts: int


@dataclass(frozen=True)
class DataCaptureConfig:
    """Which requests and answers the endpoint captures to S3 (the input of Model Monitor)."""

    sampling_percentage: int
    destination_s3_uri: str
    capture: tuple[str, ...]  # "input" and/or "output"
    csv_content_types: tuple[str, ...]
    json_content_types: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class AsyncInferenceConfig:
    """An asynchronous endpoint: answers and errors go to S3 (and optionally SNS), not the response."""

    output_path: str
    failure_path: str
    success_topic: str | None = None
    error_topic: str | None = None
    max_concurrent_invocations_per_instance: int | None = None


@dataclass(frozen=True)
class EndpointConfig:
    """The endpoint the release deploys, its variants and hosting options."""

    name: str
    variants: tuple[VariantConfig, ...]
    replace_failed: bool
    waiter: WaiterConfig
    data_capture: DataCaptureConfig | None = None
    async_inference: AsyncInferenceConfig | None = None

    @property
    def image_instance_type(self) -> str | None:
        """The first instance type (it picks a framework image's CPU/GPU flavour); None if serverless."""
        return next((variant.instance_type for variant in self.variants if variant.instance_type), None)


@dataclass(frozen=True)
class SmokeTestConfig:
    """One request sent to the deployed endpoint, and the answer it must give."""

    payload_file: Path
    payload: str
    content_type: str
    accept: str
    expected_json: Any
    expected_body: str | None
    name: str = "smoke_test"
    target_model: str | None = None
    target_container_hostname: str | None = None
    target_variant: str | None = None
    asynchronous: bool = False  # ``async: true``: InvokeEndpointAsync through S3

    @property
    def task_id(self) -> str:
        return self.name if self.name == "smoke_test" else f"smoke_test_{self.name}"


@dataclass(frozen=True)
class BaselineConfig:
    """The data-quality baseline: the training data (minus e.g. the label), profiled locally or by a processing job."""

    dataset: Path
    format: str  # csv | json | parquet
    header: bool
    exclude_columns: tuple[str, ...]
    mode: str  # local | processing
    output_s3_uri: str


@dataclass(frozen=True)
class MonitoringScheduleConfig:
    """The SageMaker monitoring schedule (and its data-quality job definition)."""

    name: str
    cron: str
    max_runtime_seconds: int
    instance_type: str
    output_s3_uri: str
    publish_metrics: bool
    data_analysis_start_time: str | None = None  # required with cron NOW; optional otherwise
    data_analysis_end_time: str | None = None


@dataclass(frozen=True)
class DataQualityCheckConfig:
    """The monitoring DAG's own check of the last window of captured requests."""

    window_minutes: int
    policy: str  # fail | warn | ignore
    mode: str  # local | processing
    publish_metrics: bool
    output_s3_uri: str


@dataclass(frozen=True)
class MonitoringConfig:
    """Model Monitor data quality: the baseline, the schedule, the DAG's check and where reports go."""

    baseline: BaselineConfig
    schedule: MonitoringScheduleConfig
    check: DataQualityCheckConfig
    report_s3_uri: str


@dataclass(frozen=True)
class PipelineConfig:
    """One pipeline file: one release DAG."""

    path: Path
    name: str
    description: str
    owner: str
    tags: tuple[str, ...]
    schedule: str | None
    retries: int
    retry_delay_seconds: int
    resource_tags: dict[str, str]
    model: ModelConfig
    artifacts: ArtifactsConfig
    endpoint: EndpointConfig
    smoke_tests: tuple[SmokeTestConfig, ...]
    monitoring: MonitoringConfig | None = None
    promotion: Any = None  # a pipeline.promotion_section.PromotionConfig: how a new version replaces the live one
    scaling: Any = None  # a pipeline.scaling_section.ScalingConfig: Application Auto Scaling of each variant
    benchmark: Any = None  # a pipeline.benchmark_section.BenchmarkConfig: candidates benchmarked, one chosen

    @property
    def smoke_test(self) -> SmokeTestConfig:
        """The first smoke test (a file with ``smoke_test:`` has exactly one)."""
        return self.smoke_tests[0]

    @property
    def dag_id(self) -> str:
        return f"release_{self.name.replace('-', '_')}"

    @property
    def aws_tags(self) -> dict[str, str]:
        """Tags for every AWS resource the release creates (the pipeline tag always included)."""
        return {**self.resource_tags, PIPELINE_TAG_KEY: self.name}
