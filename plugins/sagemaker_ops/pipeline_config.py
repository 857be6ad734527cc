"""Release pipeline files (``include/pipelines/*.yaml``): load, validate, expose as dataclasses.

Pure Python (pyyaml only), imported by DAG files at parse time. Every problem is reported as
``<file>: <field path> <what is wrong>, got <value>``, e.g.
``include/pipelines/iris.yaml: endpoint.variants[0].instance_count must be an integer >= 1, got 'two'``,
and all problems of all files are reported at once. Relative paths in a file are relative to
that file's folder. See ``include/pipelines/iris.yaml`` for a commented example.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_BUCKET = "sagemaker-ops-artifacts"
PIPELINE_NAME_PATTERN = re.compile(r"^[a-z0-9](-?[a-z0-9])*$")
PIPELINE_NAME_MAX_LENGTH = 40  # leaves room for "-<spec hash>" in SageMaker's 63-character names
SAGEMAKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
INSTANCE_TYPE_PATTERN = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
PIPELINE_TAG_KEY = "sagemaker-ops:pipeline"

_MISSING = object()


class PipelineConfigError(ValueError):
    """One or more pipeline files are invalid; ``errors`` holds one self-contained line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("Invalid release pipeline configuration:\n" + "\n".join(errors))


@dataclass(frozen=True)
class VariantConfig:
    name: str
    instance_type: str
    instance_count: int
    weight: float

    def to_production_variant(self) -> dict[str, Any]:
        """The ``ProductionVariant`` dict for CreateEndpointConfig (ModelName is added by the operator)."""
        return {
            "VariantName": self.name,
            "InstanceType": self.instance_type,
            "InitialInstanceCount": self.instance_count,
            "InitialVariantWeight": self.weight,
        }


@dataclass(frozen=True)
class ModelConfig:
    source_dir: Path
    role_arn: str
    image_uri: str | None
    framework: str | None
    framework_version: str | None
    environment: dict[str, str]


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
class EndpointConfig:
    name: str
    variants: tuple[VariantConfig, ...]
    replace_failed: bool
    waiter: WaiterConfig

    @property
    def production_variants(self) -> list[dict[str, Any]]:
        return [variant.to_production_variant() for variant in self.variants]


@dataclass(frozen=True)
class SmokeTestConfig:
    payload_file: Path
    payload: str
    content_type: str
    accept: str
    expected_json: Any
    expected_body: str | None


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
    smoke_test: SmokeTestConfig

    @property
    def dag_id(self) -> str:
        return f"release_{self.name.replace('-', '_')}"

    @property
    def aws_tags(self) -> dict[str, str]:
        """Tags for every AWS resource the release creates (the pipeline tag always included)."""
        return {**self.resource_tags, PIPELINE_TAG_KEY: self.name}


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

    # -- the document ---------------------------------------------------------------------------

    def pipeline(self, document: Any, path: Path) -> PipelineConfig | None:
        top = self.mapping(document, "<file>", required=True)
        self.no_unknown_keys(
            top,
            "",
            {"name", "description", "owner", "tags", "schedule", "retries", "retry_delay_seconds",
             "resource_tags", "model", "artifacts", "endpoint", "smoke_test"},
        )
        name = self.string(top, "", "name", pattern=PIPELINE_NAME_PATTERN, max_length=PIPELINE_NAME_MAX_LENGTH,
                           expectation="lowercase letters, digits and single hyphens")
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
            artifacts=self.artifacts(self.mapping(top.get("artifacts"), "artifacts"), name),
            endpoint=self.section(top, "endpoint", lambda data: self.endpoint(data, name)),
            smoke_test=self.section(top, "smoke_test", self.smoke_test),
        )
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
            data, "model", {"source", "role_arn", "image_uri", "framework", "framework_version", "environment"}
        )
        image_uri = self.string(data, "model", "image_uri", default=None)
        framework = self.string(data, "model", "framework", default=None)
        framework_version = self.string(data, "model", "framework_version", default=None)
        if bool(image_uri) == bool(framework):
            self.fail("model", "needs either image_uri or framework + framework_version (exactly one)")
        if framework and not framework_version:
            self.fail("model.framework_version", f"is required with framework {framework!r} (e.g. '1.2-1')")
        return ModelConfig(
            source_dir=self.folder(data, "model", "source"),
            role_arn=self.string(data, "model", "role_arn", pattern=ROLE_ARN_PATTERN,
                                 expectation="an IAM role ARN like arn:aws:iam::123456789012:role/name"),
            image_uri=image_uri,
            framework=framework,
            framework_version=framework_version,
            environment=self.string_map(data, "model", "environment"),
        )

    def artifacts(self, data: dict, pipeline_name: str | None) -> ArtifactsConfig:
        self.no_unknown_keys(data, "artifacts", {"bucket", "prefix"})
        return ArtifactsConfig(
            bucket=self.string(data, "artifacts", "bucket", default=DEFAULT_BUCKET, pattern=BUCKET_PATTERN,
                               expectation="a valid S3 bucket name"),
            prefix=(self.string(data, "artifacts", "prefix", default=f"models/{pipeline_name}") or "").strip("/"),
        )

    def endpoint(self, data: dict, pipeline_name: str | None) -> EndpointConfig:
        self.no_unknown_keys(data, "endpoint", {"name", "variants", "replace_failed", "waiter"})
        variants_data = data.get("variants", _MISSING)
        if variants_data is _MISSING:
            self.fail("endpoint.variants", "is required (a list of variants)")
            variants_data = []
        elif not isinstance(variants_data, list) or not variants_data:
            self.fail("endpoint.variants", "must be a non-empty list of variants", variants_data)
            variants_data = []
        variants = tuple(self.variant(item, f"endpoint.variants[{index}]") for index, item in enumerate(variants_data))
        names = [variant.name for variant in variants if variant]
        if len(set(names)) != len(names):
            self.fail("endpoint.variants", f"must have unique names, got {names}")
        waiter = self.mapping(data.get("waiter", {}), "endpoint.waiter")
        self.no_unknown_keys(waiter, "endpoint.waiter", {"deferrable", "delay_seconds", "max_attempts"})
        return EndpointConfig(
            name=self.string(data, "endpoint", "name", default=pipeline_name, pattern=SAGEMAKER_NAME_PATTERN,
                             max_length=63, expectation="a SageMaker endpoint name"),
            variants=variants,
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
        self.no_unknown_keys(data, path, {"name", "instance_type", "instance_count", "weight"})
        return VariantConfig(
            name=self.string(data, path, "name", pattern=SAGEMAKER_NAME_PATTERN, max_length=63,
                             expectation="a SageMaker variant name"),
            instance_type=self.string(data, path, "instance_type", pattern=INSTANCE_TYPE_PATTERN,
                                      expectation="an ml.* instance type like ml.m5.large"),
            instance_count=self.integer(data, path, "instance_count", minimum=1),
            weight=self.number(data, path, "weight", default=1.0, minimum=0.0),
        )

    def smoke_test(self, data: dict) -> SmokeTestConfig:
        self.no_unknown_keys(
            data, "smoke_test", {"payload_file", "content_type", "accept", "expected_json", "expected_body"}
        )
        payload_file = self.file(data, "smoke_test", "payload_file")
        payload = ""
        if payload_file is not None:
            payload = payload_file.read_text(encoding="utf-8")
            if not payload.strip():
                self.fail("smoke_test.payload_file", f"points at an empty file ({payload_file})")
        expected_body = self.string(data, "smoke_test", "expected_body", default=None)
        if "expected_json" in data and expected_body is not None:
            self.fail("smoke_test", "takes expected_json or expected_body, not both")
        return SmokeTestConfig(
            payload_file=payload_file,
            payload=payload,
            content_type=self.string(data, "smoke_test", "content_type", default="text/csv"),
            accept=self.string(data, "smoke_test", "accept", default="application/json"),
            expected_json=data.get("expected_json"),
            expected_body=expected_body,
        )

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

    def integer(self, data: dict, path: str, key: str, *, minimum: int, default: Any = _MISSING) -> Any:
        value = data.get(key, default)
        field_path = _join(path, key)
        if value is _MISSING:
            self.fail(field_path, f"is required (an integer >= {minimum})")
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(field_path, f"must be an integer >= {minimum}", value)
            return None
        return value

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


def _article(expectation: str) -> str:
    if expectation.startswith(("a ", "an ", "the ", "lowercase")):
        return expectation
    return f"a {expectation}"
