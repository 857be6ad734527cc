"""Task factories of the release DAGs: the operators one pipeline file asks for, wired to each other.

``dags/release.py`` reads top to bottom as the pipeline and calls these for the parts that depend
on the file: how the model is packaged (one archive, a multi-model set, one per container), which
smoke tests run, and whether a baseline and a monitoring schedule follow.
"""

from __future__ import annotations

from sagemaker_ops.operators.model_monitor_release import (
    CreateDataQualityBaselineOperator,
    EnsureMonitoringScheduleOperator,
)
from sagemaker_ops.operators.s3 import PackageModelOperator, PackageMultiModelOperator
from sagemaker_ops.operators.sagemaker_resources import DEFAULT_IMAGE_INSTANCE_TYPE, EnsureModelOperator
from sagemaker_ops.operators.sagemaker_runtime import AsyncSmokeTestEndpointOperator, SmokeTestEndpointOperator
from sagemaker_ops.pipeline.models import PipelineConfig, SmokeTestConfig


def model_tasks(pipeline: PipelineConfig) -> tuple[EnsureModelOperator, object]:
    """The packaging task(s) and ``ensure_model``; also the archive digest(s) to publish."""
    model, artifacts = pipeline.model, pipeline.artifacts
    ensure_model = dict(
        task_id="ensure_model",
        name_prefix=pipeline.name,
        execution_role_arn=model.role_arn,
        image_instance_type=pipeline.endpoint.image_instance_type or DEFAULT_IMAGE_INSTANCE_TYPE,
        tags=pipeline.aws_tags,
    )
    image = dict(image_uri=model.image_uri, framework=model.framework, framework_version=model.framework_version,
                 environment=model.environment)
    if model.kind == "multi-container":
        containers, digests = [], {}
        for index, container in enumerate(model.containers):
            key = container.key(index)
            package = PackageModelOperator(
                task_id=f"package_{key}",
                source_dir=str(container.source_dir),
                bucket=artifacts.bucket,
                key_prefix=f"{artifacts.prefix}/{key}",
            )
            containers.append({
                "hostname": container.hostname,
                "model_data_url": package.output["s3_uri"],
                "image_uri": container.image_uri,
                "framework": container.framework,
                "framework_version": container.framework_version,
                "environment": container.environment,
            })
            digests[key] = package.output["sha256"]
        return EnsureModelOperator(**ensure_model, containers=containers,
                                   inference_execution_mode=model.inference_mode), digests
    if model.kind == "multi-model":
        package = PackageMultiModelOperator(
            task_id="package_model",
            models={archive.name: str(archive.source_dir) for archive in model.multi_model},
            bucket=artifacts.bucket,
            key_prefix=artifacts.prefix,
        )
        return EnsureModelOperator(**ensure_model, **image, multi_model=True,
                                   model_data_url=package.output["s3_uri"]), package.output["sha256"]
    package = PackageModelOperator(
        task_id="package_model",
        source_dir=str(model.source_dir),
        bucket=artifacts.bucket,
        key_prefix=artifacts.prefix,
    )
    return EnsureModelOperator(**ensure_model, **image, model_data_url=package.output["s3_uri"]), \
        package.output["sha256"]


def smoke_test_task(pipeline: PipelineConfig, test: SmokeTestConfig, endpoint_name: object):
    request = dict(
        task_id=test.task_id,
        endpoint_name=endpoint_name,
        payload=test.payload,
        content_type=test.content_type,
        accept=test.accept,
        expected_json=test.expected_json,
        expected_body=test.expected_body,
    )
    if test.asynchronous:
        waiter = pipeline.endpoint.waiter
        return AsyncSmokeTestEndpointOperator(
            **request,
            input_s3_uri=f"s3://{pipeline.artifacts.bucket}/async-inputs/{pipeline.name}",
            waiter_delay=waiter.delay_seconds,
            waiter_max_attempts=waiter.max_attempts,
        )
    return SmokeTestEndpointOperator(
        **request,
        target_variant=test.target_variant,
        target_model=test.target_model,
        target_container_hostname=test.target_container_hostname,
    )


def monitoring_tasks(pipeline: PipelineConfig, endpoint_name: object) -> list:
    """``create_baseline >> ensure_monitoring_schedule`` for a pipeline with ``monitoring:`` (else none)."""
    monitoring = pipeline.monitoring
    if monitoring is None:
        return []
    baseline, schedule = monitoring.baseline, monitoring.schedule
    waiter = pipeline.endpoint.waiter
    create_baseline = CreateDataQualityBaselineOperator(
        task_id="create_baseline",
        dataset=str(baseline.dataset),
        dataset_format=baseline.format,
        header=baseline.header,
        exclude_columns=list(baseline.exclude_columns),
        output_s3_uri=baseline.output_s3_uri,
        mode=baseline.mode,
        role_arn=pipeline.model.role_arn,
        instance_type=schedule.instance_type,
        job_name_prefix=f"{pipeline.name}-baseline",
        deferrable=waiter.deferrable,
        waiter_delay=waiter.delay_seconds,
        waiter_max_attempts=waiter.max_attempts,
    )
    ensure_schedule = EnsureMonitoringScheduleOperator(
        task_id="ensure_monitoring_schedule",
        schedule_name=schedule.name,
        endpoint_name=endpoint_name,
        statistics_s3_uri=create_baseline.output["statistics_s3_uri"],
        constraints_s3_uri=create_baseline.output["constraints_s3_uri"],
        output_s3_uri=schedule.output_s3_uri,
        role_arn=pipeline.model.role_arn,
        schedule_expression=schedule.cron,
        instance_type=schedule.instance_type,
        max_runtime_seconds=schedule.max_runtime_seconds,
        publish_metrics=schedule.publish_metrics,
        data_analysis_start_time=schedule.data_analysis_start_time,
        data_analysis_end_time=schedule.data_analysis_end_time,
        tags=pipeline.aws_tags,
    )
    create_baseline >> ensure_schedule
    return [create_baseline, ensure_schedule]
