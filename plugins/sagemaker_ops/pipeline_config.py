"""Release pipeline files (``include/pipelines/*.yaml``): load, validate, expose as dataclasses.

Pure Python (pyyaml only), imported by DAG files at parse time. Every problem is reported as
``<file>: <field path> <what is wrong>, got <value>``, e.g.
``include/pipelines/iris.yaml: endpoint.variants[0].instance_count must be an integer >= 1, got 'two'``,
and all problems of all files are reported at once. Relative paths in a file are relative to
that file's folder. See ``include/pipelines/iris.yaml`` for a commented example.

Beyond one model on instances (``iris.yaml``) a file can declare every hosting option of SageMaker
real-time inference, each validated here against AWS's rules before any AWS call:

* ``model.multi_model.models: [{name, source}]``: a multi-model endpoint (one ``MultiModel``
  container whose ModelDataUrl is an S3 prefix holding ``<name>.tar.gz`` per model);
* ``model.containers: [{hostname, source, image_uri | framework + framework_version, environment}]``
  with ``model.inference_mode: Direct | Serial``: a multi-container endpoint (2-15 containers);
* ``endpoint.variants[].serverless: {memory_size_mb, max_concurrency}`` instead of instances;
* ``endpoint.data_capture`` and ``endpoint.async_inference``;
* ``smoke_tests: [...]`` (or one ``smoke_test``), each naming ``target_model``,
  ``target_container_hostname`` or ``target_variant``, or ``async: true``;
* ``monitoring: {baseline, schedule, check, report_s3_uri}``: Model Monitor data quality over the
  endpoint's captured requests (needs ``endpoint.data_capture`` with ``input``); see
  ``include/pipelines/iris-tree.yaml``.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sagemaker_ops.packaging import ARCHIVE_NAME_PATTERN, MULTI_MODEL_SUFFIX

DEFAULT_BUCKET = "sagemaker-ops-artifacts"
PIPELINE_NAME_PATTERN = re.compile(r"^[a-z0-9](-?[a-z0-9])*$")
PIPELINE_NAME_MAX_LENGTH = 40  # leaves room for "-<spec hash>" in SageMaker's 63-character names
SAGEMAKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
INSTANCE_TYPE_PATTERN = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
S3_URI_PATTERN = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")
SNS_TOPIC_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]*:\d{12}:[a-zA-Z0-9_.-]+$")
SMOKE_TEST_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
MEDIA_TYPE_PATTERN = re.compile(r"^[\w.+-]+/[\w.+*-]+$")
PIPELINE_TAG_KEY = "sagemaker-ops:pipeline"

# AWS bounds (botocore's sagemaker service model and the Serverless Inference docs).
SERVERLESS_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
MAX_CONTAINERS = 15
MAX_CONTENT_TYPES = 10
MAX_ASYNC_CONCURRENCY_PER_INSTANCE = 1000
INFERENCE_MODES = ("Serial", "Direct")
CAPTURE_MODES = {"input": "Input", "output": "Output"}

_MISSING = object()
_S3_URI = {"pattern": S3_URI_PATTERN, "expectation": "an S3 URI like s3://bucket/prefix"}


class PipelineConfigError(ValueError):
    """One or more pipeline files are invalid; ``errors`` holds one self-contained line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("Invalid release pipeline configuration:\n" + "\n".join(errors))


@dataclass(frozen=True)
class ServerlessConfig:
    memory_size_mb: int
    max_concurrency: int

    def to_aws(self) -> dict[str, int]:
        return {"MemorySizeInMB": self.memory_size_mb, "MaxConcurrency": self.max_concurrency}


@dataclass(frozen=True)
class VariantConfig:
    name: str
    instance_type: str | None
    instance_count: int | None
    weight: float
    serverless: ServerlessConfig | None = None

    def to_production_variant(self) -> dict[str, Any]:
        """The ``ProductionVariant`` dict for CreateEndpointConfig (ModelName is added by the operator)."""
        if self.serverless is not None:
            return {
                "VariantName": self.name,
                "ServerlessConfig": self.serverless.to_aws(),
                "InitialVariantWeight": self.weight,
            }
        return {
            "VariantName": self.name,
            "InstanceType": self.instance_type,
            "InitialInstanceCount": self.instance_count,
            "InitialVariantWeight": self.weight,
        }


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
    bucket: str
    prefix: str


@dataclass(frozen=True)
class WaiterConfig:
    deferrable: bool
    delay_seconds: int
    max_attempts: int


@dataclass(frozen=True)
class DataCaptureConfig:
    sampling_percentage: int
    destination_s3_uri: str
    capture: tuple[str, ...]  # "input" and/or "output"
    csv_content_types: tuple[str, ...]
    json_content_types: tuple[str, ...]
    enabled: bool = True

    def to_aws(self) -> dict[str, Any]:
        """The ``DataCaptureConfig`` for CreateEndpointConfig."""
        return {
            "EnableCapture": self.enabled,
            "InitialSamplingPercentage": self.sampling_percentage,
            "DestinationS3Uri": self.destination_s3_uri,
            "CaptureOptions": [{"CaptureMode": CAPTURE_MODES[mode]} for mode in self.capture],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": list(self.csv_content_types),
                "JsonContentTypes": list(self.json_content_types),
            },
        }


@dataclass(frozen=True)
class AsyncInferenceConfig:
    output_path: str
    failure_path: str
    success_topic: str | None = None
    error_topic: str | None = None
    max_concurrent_invocations_per_instance: int | None = None

    def to_aws(self) -> dict[str, Any]:
        """The ``AsyncInferenceConfig`` for CreateEndpointConfig."""
        output: dict[str, Any] = {"S3OutputPath": self.output_path, "S3FailurePath": self.failure_path}
        topics = {"SuccessTopic": self.success_topic, "ErrorTopic": self.error_topic}
        if any(topics.values()):
            output["NotificationConfig"] = {key: value for key, value in topics.items() if value}
        config: dict[str, Any] = {"OutputConfig": output}
        if self.max_concurrent_invocations_per_instance is not None:
            config["ClientConfig"] = {
                "MaxConcurrentInvocationsPerInstance": self.max_concurrent_invocations_per_instance
            }
        return config


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    variants: tuple[VariantConfig, ...]
    replace_failed: bool
    waiter: WaiterConfig
    data_capture: DataCaptureConfig | None = None
    async_inference: AsyncInferenceConfig | None = None

    @property
    def production_variants(self) -> list[dict[str, Any]]:
        return [variant.to_production_variant() for variant in self.variants]

    @property
    def image_instance_type(self) -> str | None:
        """The first instance type (it picks a framework image's CPU/GPU flavour); None if serverless."""
        return next((variant.instance_type for variant in self.variants if variant.instance_type), None)


@dataclass(frozen=True)
class SmokeTestConfig:
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
    baseline: BaselineConfig
    schedule: MonitoringScheduleConfig
    check: DataQualityCheckConfig
    report_s3_uri: str


@dataclass(frozen=True)
class PipelineConfig:
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


PIPELINES_DIR_ENV = "SAGEMAKER_OPS_PIPELINES_DIR"


def pipelines_dir(dag_file: str) -> Path:
    """The pipeline files of a DAG file: ``include/pipelines/`` beside its ``dags/`` folder, unless
    ``SAGEMAKER_OPS_PIPELINES_DIR`` names another folder."""
    return Path(os.environ.get(PIPELINES_DIR_ENV) or Path(dag_file).resolve().parents[1] / "include" / "pipelines")


def load_pipelines(folder: Path) -> list[PipelineConfig]:
    """Load every ``*.yaml``/``*.yml`` in ``folder`` (sorted); raise one error listing every problem."""
    paths = sorted([*Path(folder).glob("*.yaml"), *Path(folder).glob("*.yml")])
    pipelines: list[PipelineConfig] = []
    errors: list[str] = []
    for path in paths:
        try:
            pipelines.append(load_pipeline(path))
        except PipelineConfigError as error:
            errors.extend(error.errors)
    errors.extend(_duplicate_errors(pipelines))
    if errors:
        raise PipelineConfigError(errors)
    return pipelines


def load_pipeline(path: Path) -> PipelineConfig:
    """Load and validate one pipeline file."""
    path = Path(path)
    shown = display_path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PipelineConfigError([f"{shown}: cannot be read ({error.strerror})"]) from error
    except yaml.YAMLError as error:
        raise PipelineConfigError([f"{shown}: is not valid YAML: {error}"]) from error
    checker = _Checker(shown, path.parent)
    config = checker.pipeline(document, path)
    if checker.errors:
        raise PipelineConfigError(checker.errors)
    assert config is not None
    return config


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (as people type it), else absolute."""
    absolute = Path(path).absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _duplicate_errors(pipelines: list[PipelineConfig]) -> list[str]:
    errors = []
    for attribute, label in (("name", "name"), ("endpoint_name", "endpoint.name")):
        seen: dict[str, PipelineConfig] = {}
        for pipeline in pipelines:
            value = pipeline.name if attribute == "name" else pipeline.endpoint.name
            if value in seen:
                errors.append(
                    f"{display_path(pipeline.path)}: {label} {value!r} is already used by "
                    f"{display_path(seen[value].path)}; each pipeline needs its own"
                )
            seen.setdefault(value, pipeline)
    return errors


class _Checker:
    """Reads a parsed YAML document field by field, collecting one message per problem."""

    def __init__(self, shown_path: str, base_dir: Path) -> None:
        self.shown_path = shown_path
        self.base_dir = base_dir
        self.errors: list[str] = []
        self.smoke_test_paths: list[str] = []  # field path of each smoke test read, in order

    # -- the document ---------------------------------------------------------------------------

    def pipeline(self, document: Any, path: Path) -> PipelineConfig | None:
        top = self.mapping(document, "<file>", required=True)
        self.no_unknown_keys(
            top,
            "",
            {"name", "description", "owner", "tags", "schedule", "retries", "retry_delay_seconds",
             "resource_tags", "model", "artifacts", "endpoint", "smoke_test", "smoke_tests", "monitoring"},
        )
        name = self.string(top, "", "name", pattern=PIPELINE_NAME_PATTERN, max_length=PIPELINE_NAME_MAX_LENGTH,
                           expectation="lowercase letters, digits and single hyphens")
        artifacts = self.artifacts(self.mapping(top.get("artifacts"), "artifacts"), name)
        config = dict(
            path=path,
            name=name,
            description=self.string(top, "", "description", default=""),
            owner=self.string(top, "", "owner"),
            tags=tuple(self.string_list(top, "", "tags")),
            schedule=self.string(top, "", "schedule", default=None),
            retries=self.integer(top, "", "retries", default=2, minimum=0),
            retry_delay_seconds=self.integer(top, "", "retry_delay_seconds", default=60, minimum=0),
            resource_tags=self.string_map(top, "", "resource_tags"),
            model=self.section(top, "model", self.model),
            artifacts=artifacts,
            endpoint=self.section(top, "endpoint", lambda data: self.endpoint(data, name, artifacts.bucket)),
            smoke_tests=self.smoke_tests(top),
        )
        if top.get("monitoring") is not None:
            config["monitoring"] = self.monitoring(top["monitoring"], config["endpoint"], artifacts.bucket)
        if None not in (config["model"], config["endpoint"], config["smoke_tests"]):
            self.hosting_rules(config["model"], config["endpoint"])
            for field_path, test in zip(self.smoke_test_paths, config["smoke_tests"], strict=True):
                self.smoke_test_targets(field_path, test, config["model"], config["endpoint"])
        return None if self.errors else PipelineConfig(**config)

    def section(self, top: dict, key: str, read: Any) -> Any:
        """Read a required section; if it is missing, report that once rather than each of its fields."""
        if key not in top or top[key] is None:
            self.fail(key, "is required (a mapping)")
            return None
        if not isinstance(top[key], Mapping):
            self.fail(key, "must be a mapping", top[key])
            return None
        return read(dict(top[key]))

    def model(self, data: dict) -> ModelConfig:
        self.no_unknown_keys(
            data, "model", {"source", "role_arn", "image_uri", "framework", "framework_version", "environment",
                            "multi_model", "containers", "inference_mode"}
        )
        kinds = [key for key in ("source", "multi_model", "containers") if data.get(key) is not None]
        if len(kinds) > 1:
            self.fail("model", "takes one of source (one model), multi_model (a multi-model endpoint) or "
                               "containers (a multi-container endpoint)", kinds)
        role_arn = self.string(data, "model", "role_arn", pattern=ROLE_ARN_PATTERN,
                               expectation="an IAM role ARN like arn:aws:iam::123456789012:role/name")
        if "inference_mode" in data and "containers" not in data:
            self.fail("model.inference_mode", "is only for a multi-container model (model.containers)",
                      data["inference_mode"])
        if "containers" in data:
            for key in sorted({"image_uri", "framework", "framework_version", "environment"} & set(data)):
                self.fail(f"model.{key}", f"is set per container in a multi-container model "
                                          f"(model.containers[].{key})", data[key])
            mode = self.choice(data, "model", "inference_mode", INFERENCE_MODES, default="Serial")
            return ModelConfig(source_dir=None, role_arn=role_arn, image_uri=None, framework=None,
                               framework_version=None, environment={}, inference_mode=mode,
                               containers=self.containers(data["containers"], mode))
        image_uri, framework, framework_version = self.image(data, "model")
        return ModelConfig(
            source_dir=None if "multi_model" in data else self.folder(data, "model", "source"),
            role_arn=role_arn,
            image_uri=image_uri,
            framework=framework,
            framework_version=framework_version,
            environment=self.string_map(data, "model", "environment"),
            multi_model=self.multi_model(data["multi_model"]) if "multi_model" in data else (),
        )

    def image(self, data: dict, path: str) -> tuple[str | None, str | None, str | None]:
        """``image_uri``, or ``framework`` + ``framework_version`` (resolved to an image at run time)."""
        image_uri = self.string(data, path, "image_uri", default=None)
        framework = self.string(data, path, "framework", default=None)
        framework_version = self.string(data, path, "framework_version", default=None)
        if bool(image_uri) == bool(framework):
            self.fail(path, "needs either image_uri or framework + framework_version (exactly one)")
        if framework and not framework_version:
            self.fail(f"{path}.framework_version", f"is required with framework {framework!r} (e.g. '1.2-1')")
        return image_uri, framework, framework_version

    def multi_model(self, value: Any) -> tuple[ArchiveConfig, ...]:
        path = "model.multi_model"
        data = self.mapping(value, path)
        self.no_unknown_keys(data, path, {"models"})
        archives = []
        for index, item in enumerate(self.item_list(data, path, "models", "models (name, source)")):
            item_path = f"{path}.models[{index}]"
            if not isinstance(item, Mapping):
                self.fail(item_path, "must be a mapping (name, source)", item)
                continue
            item = dict(item)
            self.no_unknown_keys(item, item_path, {"name", "source"})
            name = self.string(item, item_path, "name", pattern=ARCHIVE_NAME_PATTERN, max_length=63,
                               expectation="a model name of letters, digits, '.', '_' or '-'")
            if name and name.endswith(MULTI_MODEL_SUFFIX):
                self.fail(f"{item_path}.name", f"must not end in {MULTI_MODEL_SUFFIX} (it is added: the "
                                               f"archive is <name>{MULTI_MODEL_SUFFIX})", name)
                name = None
            source_dir = self.folder(item, item_path, "source")
            if name and source_dir:
                archives.append(ArchiveConfig(name=name, source_dir=source_dir))
        self.unique([archive.name for archive in archives], f"{path}.models", "names")
        return tuple(archives)

    def containers(self, value: Any, mode: str | None) -> tuple[ContainerConfig, ...]:
        path = "model.containers"
        if not isinstance(value, list):
            self.fail(path, f"must be a list of 2 to {MAX_CONTAINERS} containers", value)
            return ()
        if not 2 <= len(value) <= MAX_CONTAINERS:
            self.fail(path, f"must list 2 to {MAX_CONTAINERS} containers (for one model use model.source), "
                            f"got {len(value)}")
        containers = tuple(self.container(item, f"{path}[{index}]", mode) for index, item in enumerate(value))
        self.unique([c.hostname for c in containers if c and c.hostname], path, "hostnames")
        self.unique([c.key(index) for index, c in enumerate(containers) if c], path,
                    "task names (the hostname, else container-<position>)")
        return tuple(container for container in containers if container)

    def container(self, item: Any, path: str, mode: str | None) -> ContainerConfig | None:
        if not isinstance(item, Mapping):
            self.fail(path, "must be a mapping (hostname, source, image_uri or framework, environment)", item)
            return None
        data = dict(item)
        self.no_unknown_keys(data, path, {"hostname", "source", "image_uri", "framework", "framework_version",
                                          "environment"})
        hostname = self.string(data, path, "hostname", default=None, pattern=SAGEMAKER_NAME_PATTERN, max_length=63,
                               expectation="a container hostname (letters, digits and hyphens)")
        if mode == "Direct" and "hostname" not in data:
            self.fail(f"{path}.hostname", "is required when model.inference_mode is Direct (each request names "
                                          "its container by hostname)")
        image_uri, framework, framework_version = self.image(data, path)
        source_dir = self.folder(data, path, "source")
        if source_dir is None:
            return None
        return ContainerConfig(hostname=hostname, source_dir=source_dir, image_uri=image_uri, framework=framework,
                               framework_version=framework_version,
                               environment=self.string_map(data, path, "environment"))

    def artifacts(self, data: dict, pipeline_name: str | None) -> ArtifactsConfig:
        self.no_unknown_keys(data, "artifacts", {"bucket", "prefix"})
        return ArtifactsConfig(
            bucket=self.string(data, "artifacts", "bucket", default=DEFAULT_BUCKET, pattern=BUCKET_PATTERN,
                               expectation="a valid S3 bucket name"),
            prefix=(self.string(data, "artifacts", "prefix", default=f"models/{pipeline_name}") or "").strip("/"),
        )

    def endpoint(self, data: dict, pipeline_name: str | None, bucket: str | None) -> EndpointConfig:
        self.no_unknown_keys(data, "endpoint", {"name", "variants", "replace_failed", "waiter", "data_capture",
                                                "async_inference"})
        variants_data = self.item_list(data, "endpoint", "variants", "variants")
        variants = tuple(self.variant(item, f"endpoint.variants[{index}]") for index, item in enumerate(variants_data))
        self.unique([variant.name for variant in variants if variant], "endpoint.variants", "names")
        waiter = self.mapping(data.get("waiter", {}), "endpoint.waiter")
        self.no_unknown_keys(waiter, "endpoint.waiter", {"deferrable", "delay_seconds", "max_attempts"})
        return EndpointConfig(
            name=self.string(data, "endpoint", "name", default=pipeline_name, pattern=SAGEMAKER_NAME_PATTERN,
                             max_length=63, expectation="a SageMaker endpoint name"),
            variants=tuple(variant for variant in variants if variant),
            data_capture=self.data_capture(data["data_capture"], bucket) if "data_capture" in data else None,
            async_inference=self.async_inference(data["async_inference"]) if "async_inference" in data else None,
            replace_failed=self.boolean(data, "endpoint", "replace_failed", default=True),
            waiter=WaiterConfig(
                deferrable=self.boolean(waiter, "endpoint.waiter", "deferrable", default=False),
                delay_seconds=self.integer(waiter, "endpoint.waiter", "delay_seconds", default=30, minimum=1),
                max_attempts=self.integer(waiter, "endpoint.waiter", "max_attempts", default=120, minimum=1),
            ),
        )

    def variant(self, item: Any, path: str) -> VariantConfig | None:
        if not isinstance(item, Mapping):
            self.fail(path, "must be a mapping (name, instance_type, instance_count, weight)", item)
            return None
        data = dict(item)
        self.no_unknown_keys(data, path, {"name", "instance_type", "instance_count", "weight", "serverless"})
        name = self.string(data, path, "name", pattern=SAGEMAKER_NAME_PATTERN, max_length=63,
                           expectation="a SageMaker variant name")
        weight = self.number(data, path, "weight", default=1.0, minimum=0.0)
        if "serverless" in data:
            for key in sorted({"instance_type", "instance_count"} & set(data)):
                self.fail(_join(path, key), "cannot be combined with serverless (serverless capacity is "
                                            "memory_size_mb and max_concurrency, not instances)", data[key])
            return VariantConfig(name=name, instance_type=None, instance_count=None, weight=weight,
                                 serverless=self.serverless(data["serverless"], _join(path, "serverless")))
        return VariantConfig(
            name=name,
            instance_type=self.string(data, path, "instance_type", pattern=INSTANCE_TYPE_PATTERN,
                                      expectation="an ml.* instance type like ml.m5.large"),
            instance_count=self.integer(data, path, "instance_count", minimum=1),
            weight=weight,
        )

    def serverless(self, value: Any, path: str) -> ServerlessConfig:
        if not isinstance(value, Mapping):
            self.fail(path, "must be a mapping (memory_size_mb, max_concurrency)", value)
            value = {}
        data = dict(value)
        self.no_unknown_keys(data, path, {"memory_size_mb", "max_concurrency"})
        sizes = ", ".join(str(size) for size in SERVERLESS_MEMORY_SIZES_MB)
        memory = data.get("memory_size_mb", _MISSING)
        if memory is _MISSING:
            self.fail(f"{path}.memory_size_mb", f"is required (one of {sizes})")
        elif not isinstance(memory, int) or isinstance(memory, bool) or memory not in SERVERLESS_MEMORY_SIZES_MB:
            self.fail(f"{path}.memory_size_mb", f"must be one of {sizes} (1 GB steps)", memory)
        return ServerlessConfig(
            memory_size_mb=memory,
            max_concurrency=self.integer(data, path, "max_concurrency", minimum=1, maximum=SERVERLESS_MAX_CONCURRENCY),
        )

    def data_capture(self, value: Any, bucket: str | None) -> DataCaptureConfig:
        path = "endpoint.data_capture"
        data = self.mapping(value, path)
        self.no_unknown_keys(data, path, {"enabled", "sampling_percentage", "destination_s3_uri", "capture",
                                          "csv_content_types", "json_content_types"})
        capture = data.get("capture", ["input", "output"])
        if (not isinstance(capture, list) or not capture or len(set(map(str, capture))) != len(capture)
                or not set(map(str, capture)) <= set(CAPTURE_MODES)):
            self.fail(f"{path}.capture", "must be a list of input and/or output (each at most once)", capture)
            capture = []
        return DataCaptureConfig(
            enabled=self.boolean(data, path, "enabled", default=True),
            sampling_percentage=self.integer(data, path, "sampling_percentage", minimum=0, maximum=100),
            destination_s3_uri=self.string(data, path, "destination_s3_uri", default=f"s3://{bucket}/data-capture",
                                           pattern=S3_URI_PATTERN, expectation="an S3 URI like s3://bucket/prefix"),
            capture=tuple(capture),
            csv_content_types=self.content_types(data, path, "csv_content_types", default=["text/csv"]),
            json_content_types=self.content_types(data, path, "json_content_types", default=["application/json"]),
        )

    def content_types(self, data: dict, path: str, key: str, *, default: list[str]) -> tuple[str, ...]:
        value = data.get(key, default)
        if (not isinstance(value, list) or not 1 <= len(value) <= MAX_CONTENT_TYPES
                or not all(isinstance(item, str) and MEDIA_TYPE_PATTERN.match(item) for item in value)):
            self.fail(_join(path, key), f"must be a list of 1 to {MAX_CONTENT_TYPES} content types like "
                                        f"{default[0]}", value)
            return tuple(default)
        return tuple(value)

    def async_inference(self, value: Any) -> AsyncInferenceConfig:
        path = "endpoint.async_inference"
        data = self.mapping(value, path)
        self.no_unknown_keys(data, path, {"output_path", "failure_path", "success_topic", "error_topic",
                                          "max_concurrent_invocations_per_instance"})
        s3_uri = {"pattern": S3_URI_PATTERN, "expectation": "an S3 URI like s3://bucket/prefix"}
        topic = {"default": None, "pattern": SNS_TOPIC_ARN_PATTERN,
                 "expectation": "an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:name"}
        return AsyncInferenceConfig(
            output_path=self.string(data, path, "output_path", **s3_uri),
            failure_path=self.string(data, path, "failure_path", **s3_uri),
            success_topic=self.string(data, path, "success_topic", **topic),
            error_topic=self.string(data, path, "error_topic", **topic),
            max_concurrent_invocations_per_instance=self.integer(
                data, path, "max_concurrent_invocations_per_instance", minimum=1,
                maximum=MAX_ASYNC_CONCURRENCY_PER_INSTANCE, default=None),
        )

    # -- monitoring ---------------------------------------------------------------------------------

    def monitoring(self, value: Any, endpoint: EndpointConfig | None, bucket: str | None) -> MonitoringConfig | None:
        """Model Monitor data quality: checked here so that a bad schedule fails the parse, not the release."""
        path = "monitoring"
        data = self.mapping(value, path)
        self.no_unknown_keys(data, path, {"baseline", "schedule", "check", "report_s3_uri"})
        if endpoint is not None:
            capture = endpoint.data_capture
            if capture is None or not capture.enabled:
                self.fail(path, "needs endpoint.data_capture (enabled): Model Monitor checks the captured requests")
            elif "input" not in capture.capture:
                self.fail(path, "needs endpoint.data_capture.capture to include input (the requests are what "
                                "the data-quality check reads)", list(capture.capture))
        endpoint_name = endpoint.name if endpoint is not None else "endpoint"
        base = f"s3://{bucket}/monitoring"
        baseline = None
        if not isinstance(data.get("baseline"), Mapping):
            self.fail(f"{path}.baseline", "is required (a mapping: dataset, format, header, exclude_columns, mode)",
                      data.get("baseline"))
        else:
            baseline = self.baseline(dict(data["baseline"]), f"{base}/{endpoint_name}/baseline")
        schedule = self.monitoring_schedule(data.get("schedule"), endpoint_name, f"{base}/schedules")
        check = self.check(data.get("check"), f"{base}/checks")
        report = self.string(data, path, "report_s3_uri", default=f"{base}/drift-reports", **_S3_URI)
        if None in (baseline, schedule, check, report):
            return None
        return MonitoringConfig(baseline=baseline, schedule=schedule, check=check, report_s3_uri=report.rstrip("/"))

    def baseline(self, data: dict, default_output: str) -> BaselineConfig | None:
        from sagemaker_ops.model_monitor_jobs import DATASET_FORMATS

        path = "monitoring.baseline"
        self.no_unknown_keys(data, path, {"dataset", "format", "header", "exclude_columns", "mode", "output_s3_uri"})
        dataset = self.file(data, path, "dataset")
        file_format = self.choice(data, path, "format", DATASET_FORMATS, default="csv")
        header = self.boolean(data, path, "header", default=True)
        exclude = self.string_list(data, path, "exclude_columns")
        if dataset is not None and file_format == "csv":
            self.csv_columns(dataset, header, exclude, f"{path}.exclude_columns")
        config = dict(
            dataset=dataset, format=file_format, header=header, exclude_columns=tuple(exclude),
            mode=self.choice(data, path, "mode", ("local", "processing"), default="local"),
            output_s3_uri=self.string(data, path, "output_s3_uri", default=default_output, **_S3_URI),
        )
        if None in config.values():
            return None
        config["output_s3_uri"] = config["output_s3_uri"].rstrip("/")
        return BaselineConfig(**config)

    def csv_columns(self, dataset: Path, header: bool, exclude: list[str], field_path: str) -> None:
        """Excluded columns must exist: named by the header line, else ``_c0``, ``_c1``, ..."""
        with dataset.open(newline="", encoding="utf-8") as handle:
            first = next(csv.reader(handle), [])
        columns = first if header else [f"_c{index}" for index in range(len(first))]
        unknown = [name for name in exclude if name not in columns]
        if unknown:
            self.fail(field_path, f"must name columns of {dataset.name} ({', '.join(columns)})", unknown)

    def monitoring_schedule(self, value: Any, endpoint_name: str, default_output: str) -> MonitoringScheduleConfig | None:
        from sagemaker_rules.monitor_schedule import ScheduleRuleError, check_schedule_window, parse_schedule

        path = "monitoring.schedule"
        data = self.mapping(value, path)
        self.no_unknown_keys(data, path, {"name", "cron", "max_runtime_seconds", "instance_type", "output_s3_uri",
                                          "publish_metrics", "data_analysis_start_time", "data_analysis_end_time"})
        default_name = f"{endpoint_name[:63 - len('-data-quality')].rstrip('-')}-data-quality"
        name = self.string(data, path, "name", default=default_name, pattern=SAGEMAKER_NAME_PATTERN, max_length=63,
                           expectation="a SageMaker monitoring schedule name")
        cron = self.string(data, path, "cron", default="cron(0 * ? * * *)", expectation="a schedule expression")
        start = data.get("data_analysis_start_time")
        end = data.get("data_analysis_end_time")
        expression = None
        try:  # the rules CreateMonitoringSchedule applies (the emulator checks with the same code)
            expression = parse_schedule(cron, f"{path}.cron") if cron else None
            if expression is not None:
                check_schedule_window(expression, start, end, f"{path}.data_analysis_start_time",
                                      f"{path}.data_analysis_end_time")
        except ScheduleRuleError as error:
            self.errors.append(f"{self.shown_path}: {error}")
        max_runtime = self.max_runtime(data.get("max_runtime_seconds", _MISSING), expression, path)
        config = dict(
            name=name, cron=cron, max_runtime_seconds=max_runtime,
            instance_type=self.monitoring_instance_type(data, path),
            output_s3_uri=self.string(data, path, "output_s3_uri", default=default_output, **_S3_URI),
            publish_metrics=self.boolean(data, path, "publish_metrics", default=True),
        )
        if None in config.values() or expression is None:
            return None
        config["output_s3_uri"] = config["output_s3_uri"].rstrip("/")
        return MonitoringScheduleConfig(**config, data_analysis_start_time=start, data_analysis_end_time=end)

    def max_runtime(self, value: Any, expression: Any, path: str) -> int | None:
        """At most the schedule's period ("cannot exceed the frequency of the job"): 3600 s when hourly."""
        limit = expression.max_runtime_seconds if expression else 3600
        if value is _MISSING:
            return min(3600, limit)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            why = f" (a monitoring job may not run longer than its schedule's period, {expression.expression})" \
                if expression and value is not None and isinstance(value, int) and value > limit else ""
            self.fail(f"{path}.max_runtime_seconds", f"must be an integer from 1 to {limit}{why}", value)
            return None
        return value

    def monitoring_instance_type(self, data: dict, path: str) -> str | None:
        from sagemaker_rules.instance_catalog import CATALOG_FILE, catalog  # a JSON file: cheap

        value = self.string(data, path, "instance_type", default="ml.m5.xlarge", pattern=INSTANCE_TYPE_PATTERN,
                            expectation="an ml.* instance type like ml.m5.xlarge")
        if value is not None and value not in catalog().types:
            self.fail(f"{path}.instance_type", f"must be an instance type of the catalog {CATALOG_FILE.name}", value)
            return None
        return value

    def check(self, value: Any, default_output: str) -> DataQualityCheckConfig | None:
        path = "monitoring.check"
        data = self.mapping(value, path)
        self.no_unknown_keys(data, path, {"window_minutes", "policy", "mode", "publish_metrics", "output_s3_uri"})
        config = dict(
            window_minutes=self.integer(data, path, "window_minutes", minimum=1, maximum=24 * 60, default=60),
            policy=self.choice(data, path, "policy", ("fail", "warn", "ignore"), default="fail"),
            mode=self.choice(data, path, "mode", ("local", "processing"), default="local"),
            publish_metrics=self.boolean(data, path, "publish_metrics", default=True),
            output_s3_uri=self.string(data, path, "output_s3_uri", default=default_output, **_S3_URI),
        )
        if None in config.values():
            return None
        config["output_s3_uri"] = config["output_s3_uri"].rstrip("/")
        return DataQualityCheckConfig(**config)

    def smoke_tests(self, top: dict) -> tuple[SmokeTestConfig, ...] | None:
        """``smoke_test`` (one mapping) or ``smoke_tests`` (a list); remembers each one's field path."""
        if "smoke_tests" in top and "smoke_test" in top:
            self.fail("smoke_tests", "cannot be combined with smoke_test; list every test under smoke_tests")
            return None
        if "smoke_tests" not in top:
            test = self.section(top, "smoke_test", lambda data: self.smoke_test(data, "smoke_test", None))
            self.smoke_test_paths.append("smoke_test")
            return None if test is None else (test,)
        items = self.item_list(top, "", "smoke_tests", "smoke tests")
        tests = []
        for index, item in enumerate(items):
            path = f"smoke_tests[{index}]"
            if not isinstance(item, Mapping):
                self.fail(path, "must be a mapping (payload_file, content_type, accept, expected_json, ...)", item)
                continue
            tests.append(self.smoke_test(dict(item), path, index))
            self.smoke_test_paths.append(path)
        self.unique([test.name for test in tests], "smoke_tests", "names")
        return tuple(tests) if tests else None

    def smoke_test(self, data: dict, path: str, index: int | None) -> SmokeTestConfig:
        self.no_unknown_keys(
            data, path, {"payload_file", "content_type", "accept", "expected_json", "expected_body", "name",
                         "target_model", "target_container_hostname", "target_variant", "async"}
        )
        payload_file = self.file(data, path, "payload_file")
        payload = ""
        if payload_file is not None:
            payload = payload_file.read_text(encoding="utf-8")
            if not payload.strip():
                self.fail(f"{path}.payload_file", f"points at an empty file ({payload_file})")
        expected_body = self.string(data, path, "expected_body", default=None)
        if "expected_json" in data and expected_body is not None:
            self.fail(path, "takes expected_json or expected_body, not both")
        targets = {key: self.string(data, path, key, default=None)
                   for key in ("target_model", "target_container_hostname", "target_variant")}
        asynchronous = self.boolean(data, path, "async", default=False)
        if asynchronous and any(targets.values()):
            self.fail(path, "takes no target_* with async: true (InvokeEndpointAsync has no targeted routing)")
        default_name = "smoke_test" if index is None else _default_smoke_test_name(targets, index)
        name = self.string(data, path, "name", default=default_name, pattern=SMOKE_TEST_NAME_PATTERN,
                           expectation="a name of at most 40 letters, digits, '_' or '-'")
        return SmokeTestConfig(
            payload_file=payload_file,
            payload=payload,
            content_type=self.string(data, path, "content_type", default="text/csv"),
            accept=self.string(data, path, "accept", default="application/json"),
            expected_json=data.get("expected_json"),
            expected_body=expected_body,
            name=name or default_name,
            asynchronous=asynchronous,
            **targets,
        )

    # -- rules across sections (AWS's feature exclusions) -----------------------------------------

    def hosting_rules(self, model: ModelConfig, endpoint: EndpointConfig) -> None:
        """Serverless Inference excludes several variants, data capture, async, MME and multi-container."""
        serverless = next((variant.name for variant in endpoint.variants if variant.serverless), None)
        if serverless is None:
            return
        why = f"(variant {serverless} is serverless, and Serverless Inference does not support "
        if len(endpoint.variants) > 1:
            self.fail("endpoint.variants", f"must hold a single variant {why}multiple production variants), "
                                           f"got {len(endpoint.variants)}")
        if endpoint.data_capture is not None:
            self.fail("endpoint.data_capture", f"cannot be used {why}data capture)")
        if endpoint.async_inference is not None:
            self.fail("endpoint.async_inference", f"cannot be used {why}asynchronous inference)")
        if model.kind == "multi-model":
            self.fail("model.multi_model", f"cannot be used {why}multi-model endpoints)")
        if model.kind == "multi-container":
            self.fail("model.containers", f"cannot be used {why}multi-container endpoints)")

    def smoke_test_targets(self, path: str, test: SmokeTestConfig, model: ModelConfig,
                           endpoint: EndpointConfig) -> None:
        """Each target must exist, and the endpoint's kind decides which targets a request needs."""
        archives = [archive.target_model for archive in model.multi_model]
        hostnames = [container.hostname for container in model.containers if container.hostname]
        direct = model.inference_mode == "Direct"
        variants = [variant.name for variant in endpoint.variants]
        if test.asynchronous != (endpoint.async_inference is not None):
            if test.asynchronous:
                self.fail(f"{path}.async", "needs endpoint.async_inference (only an asynchronous endpoint "
                                           "takes InvokeEndpointAsync)", True)
            else:
                self.fail(f"{path}.async", "must be true for an asynchronous endpoint (endpoint.async_inference "
                                           "is set: requests go through InvokeEndpointAsync)")
        self.target(f"{path}.target_model", test.target_model, archives,
                    needed=bool(archives) and not test.asynchronous,
                    what="the multi-model archives", only_for="a multi-model endpoint (model.multi_model)")
        self.target(f"{path}.target_container_hostname", test.target_container_hostname,
                    hostnames if direct else [], needed=direct and not test.asynchronous,
                    what="the container hostnames",
                    only_for="a multi-container endpoint with model.inference_mode Direct")
        self.target(f"{path}.target_variant", test.target_variant, variants, needed=False,
                    what="the endpoint's variants", only_for="an endpoint with variants")

    def target(self, field_path: str, value: str | None, choices: list[str], *, needed: bool, what: str,
               only_for: str) -> None:
        listed = ", ".join(choices)
        if value is None:
            if needed:
                self.fail(field_path, f"is required: name one of {what} ({listed})")
        elif not choices:
            self.fail(field_path, f"is only for {only_for}", value)
        elif value not in choices:
            self.fail(field_path, f"must name one of {what} ({listed})", value)

    # -- field readers ----------------------------------------------------------------------------

    def fail(self, field_path: str, message: str, value: Any = _MISSING) -> None:
        got = "" if value is _MISSING else f", got {value!r}"
        self.errors.append(f"{self.shown_path}: {field_path} {message}{got}")

    def mapping(self, value: Any, path: str, *, required: bool = False) -> dict:
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            if path == "<file>":
                self.errors.append(f"{self.shown_path}: must hold a mapping (name, owner, model, endpoint, ...)")
            else:
                self.fail(path, "must be a mapping", value)
            return {}
        return dict(value)

    def no_unknown_keys(self, data: dict, path: str, allowed: set[str]) -> None:
        for key in sorted(set(data) - allowed, key=str):
            self.fail(_join(path, str(key)), f"is not a known field (known: {', '.join(sorted(allowed))})")

    def string(self, data: dict, path: str, key: str, *, default: Any = _MISSING, pattern: re.Pattern | None = None,
               max_length: int | None = None, expectation: str = "a string") -> Any:
        value = data.get(key, default)
        field_path = _join(path, key)
        if value is None and default is _MISSING:
            value = _MISSING
        if value is _MISSING:
            self.fail(field_path, f"is required ({_article(expectation)})")
            return None
        if key not in data or value is None:
            return value
        if not isinstance(value, str) or not value.strip():
            self.fail(field_path, f"must be {_article(expectation)}", value)
            return None
        if (pattern and not pattern.match(value)) or (max_length and len(value) > max_length):
            limit = f" of at most {max_length} characters" if max_length else ""
            self.fail(field_path, f"must be {_article(expectation)}{limit}", value)
            return None
        return value

    def integer(self, data: dict, path: str, key: str, *, minimum: int, maximum: int | None = None,
                default: Any = _MISSING) -> Any:
        value = data.get(key, default)
        field_path = _join(path, key)
        bounds = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
        if value is _MISSING:
            self.fail(field_path, f"is required ({bounds})")
            return None
        if key not in data:
            return value  # the default
        if (not isinstance(value, int) or isinstance(value, bool) or value < minimum
                or (maximum is not None and value > maximum)):
            self.fail(field_path, f"must be {bounds}", value)
            return None
        return value

    def choice(self, data: dict, path: str, key: str, choices: tuple[str, ...], *, default: str) -> str | None:
        value = data.get(key, default)
        if value not in choices:
            self.fail(_join(path, key), f"must be one of {', '.join(choices)}", value)
            return None
        return value

    def item_list(self, data: dict, path: str, key: str, items: str) -> list:
        """A required, non-empty list (its items are checked by the caller)."""
        value = data.get(key, _MISSING)
        if value is _MISSING:
            self.fail(_join(path, key), f"is required (a list of {items})")
            return []
        if not isinstance(value, list) or not value:
            self.fail(_join(path, key), f"must be a non-empty list of {items}", value)
            return []
        return value

    def unique(self, values: list[str], field_path: str, what: str) -> None:
        if len(set(values)) != len(values):
            self.fail(field_path, f"must have unique {what}, got {values}")

    def number(self, data: dict, path: str, key: str, *, minimum: float, default: float) -> Any:
        value = data.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
            self.fail(_join(path, key), f"must be a number >= {minimum}", value)
            return None
        return float(value)

    def boolean(self, data: dict, path: str, key: str, *, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(_join(path, key), "must be true or false", value)
            return default
        return value

    def string_list(self, data: dict, path: str, key: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.fail(_join(path, key), "must be a list of strings", value)
            return []
        return value

    def string_map(self, data: dict, path: str, key: str) -> dict[str, str]:
        value = data.get(key, {}) or {}
        if not isinstance(value, Mapping):
            self.fail(_join(path, key), "must be a mapping of strings to strings", value)
            return {}
        for item_key, item in value.items():
            if not isinstance(item_key, str) or not isinstance(item, str):
                self.fail(_join(_join(path, key), str(item_key)), "must be a string (quote numbers and booleans)", item)
        return {str(item_key): str(item) for item_key, item in value.items()}

    def folder(self, data: dict, path: str, key: str) -> Path | None:
        location = self.string(data, path, key, expectation="a path")
        if location is None:
            return None
        resolved = (self.base_dir / os.path.expanduser(location)).resolve()
        if not resolved.is_dir():
            self.fail(_join(path, key), f"must be an existing folder (resolved to {resolved})", location)
            return None
        return resolved

    def file(self, data: dict, path: str, key: str) -> Path | None:
        location = self.string(data, path, key, expectation="a path")
        if location is None:
            return None
        resolved = (self.base_dir / os.path.expanduser(location)).resolve()
        if not resolved.is_file():
            self.fail(_join(path, key), f"must be an existing file (resolved to {resolved})", location)
            return None
        return resolved


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _default_smoke_test_name(targets: dict[str, str | None], index: int) -> str:
    """A list item's name: what it targets (``sentiment_en.tar.gz`` -> ``sentiment_en``), else its position."""
    target = next((value for value in targets.values() if value), None)
    if target is None:
        return str(index + 1)
    return re.sub(r"[^A-Za-z0-9_-]", "_", target.removesuffix(MULTI_MODEL_SUFFIX))[:40]


def _article(expectation: str) -> str:
    if expectation.startswith(("a ", "an ", "the ", "lowercase")):
        return expectation
    return f"a {expectation}"
