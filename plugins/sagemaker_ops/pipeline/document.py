"""A whole pipeline file: its top-level fields, ``artifacts:``, each section, and the rules across sections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sagemaker_ops.pipeline.benchmark_section import read_benchmark
from sagemaker_ops.pipeline.endpoint_section import read_endpoint
from sagemaker_ops.pipeline.fields import FieldReader
from sagemaker_ops.pipeline.hosting_options import check_serverless_exclusions
from sagemaker_ops.pipeline.model_section import read_model
from sagemaker_ops.pipeline.models import ArtifactsConfig, PipelineConfig
from sagemaker_ops.pipeline.monitoring_section import read_monitoring
from sagemaker_ops.pipeline.promotion_section import (
    check_promotion_fits_waiter,
    check_shadow_test_fits,
    read_promotion,
)
from sagemaker_ops.pipeline.scaling_section import check_scaling_fits_endpoint, read_scaling
from sagemaker_ops.pipeline.smoke_test_section import check_smoke_test_targets, read_smoke_tests

DEFAULT_BUCKET = "sagemaker-ops-artifacts"
PIPELINE_NAME_PATTERN = re.compile(r"^[a-z0-9](-?[a-z0-9])*$")
PIPELINE_NAME_MAX_LENGTH = 40  # leaves room for "-<spec hash>" in SageMaker's 63-character names
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TOP_LEVEL_FIELDS = {"name", "description", "owner", "tags", "schedule", "retries", "retry_delay_seconds",
                    "resource_tags", "model", "artifacts", "endpoint", "smoke_test", "smoke_tests", "monitoring",
                    "promotion", "scaling", "benchmark"}


def read_pipeline(fields: FieldReader, document: Any, path: Path) -> PipelineConfig | None:
    """The file's config, or None when ``fields.errors`` holds its problems."""
    top = fields.mapping(document, "<file>", required=True)
    fields.no_unknown_keys(top, "", TOP_LEVEL_FIELDS)
    name = fields.string(top, "", "name", pattern=PIPELINE_NAME_PATTERN, max_length=PIPELINE_NAME_MAX_LENGTH,
                         expectation="lowercase letters, digits and single hyphens")
    artifacts = _artifacts(fields, fields.mapping(top.get("artifacts"), "artifacts"), name)
    config: dict[str, Any] = dict(
        path=path,
        name=name,
        description=fields.string(top, "", "description", default=""),
        owner=fields.string(top, "", "owner"),
        tags=tuple(fields.string_list(top, "", "tags")),
        schedule=fields.string(top, "", "schedule", default=None),
        retries=fields.integer(top, "", "retries", default=2, minimum=0),
        retry_delay_seconds=fields.integer(top, "", "retry_delay_seconds", default=60, minimum=0),
        resource_tags=fields.string_map(top, "", "resource_tags"),
        model=fields.section(top, "model", lambda data: read_model(fields, data)),
        artifacts=artifacts,
        endpoint=fields.section(top, "endpoint", lambda data: read_endpoint(fields, data, name, artifacts.bucket)),
    )
    smoke_tests = read_smoke_tests(fields, top)  # each test by its field path, for the target checks below
    config["smoke_tests"] = tuple(smoke_tests.values()) if smoke_tests else None
    if top.get("monitoring") is not None:
        config["monitoring"] = read_monitoring(fields, top["monitoring"], config["endpoint"], artifacts.bucket)
    if top.get("promotion") is not None:
        config["promotion"] = fields.section(top, "promotion", lambda data: read_promotion(fields, data))
        check_promotion_fits_waiter(fields, config["promotion"], config["endpoint"])
        check_shadow_test_fits(fields, config["promotion"], config["endpoint"], config["smoke_tests"])
    if top.get("scaling") is not None:
        scaling = fields.section(top, "scaling", lambda data: read_scaling(fields, data))
        config["scaling"] = check_scaling_fits_endpoint(fields, scaling, config["endpoint"])
    if top.get("benchmark") is not None:
        config["benchmark"] = fields.section(top, "benchmark", lambda data: read_benchmark(
            fields, data, config["endpoint"], config["smoke_tests"], artifacts.bucket, name))
    if None not in (config["model"], config["endpoint"], smoke_tests):
        check_serverless_exclusions(fields, config["model"], config["endpoint"])
        for field_path, test in smoke_tests.items():
            check_smoke_test_targets(fields, field_path, test, config["model"], config["endpoint"])
    return None if fields.errors else PipelineConfig(**config)


def _artifacts(fields: FieldReader, data: dict, pipeline_name: str | None) -> ArtifactsConfig:
    fields.no_unknown_keys(data, "artifacts", {"bucket", "prefix"})
    return ArtifactsConfig(
        bucket=fields.string(data, "artifacts", "bucket", default=DEFAULT_BUCKET, pattern=BUCKET_PATTERN,
                             expectation="a valid S3 bucket name"),
        prefix=(fields.string(data, "artifacts", "prefix", default=f"models/{pipeline_name}") or "").strip("/"),
    )
