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
from sagemaker_ops.pipeline.models import IMAGE_FIELDS, PipelineConfig, SmokeTestConfig
from sagemaker_ops.pipeline.smoke_test_section import TARGET_FIELDS
from sagemaker_ops.task_arguments import same_named, waiter_arguments


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
    if model.kind == "multi-container":
        containers, digests = [], {}
        for index, container in enumerate(model.containers):
            key = container.key(index)
            package = PackageModelOperator(task_id=f"package_{key}", source_dir=str(container.source_dir),
                                           bucket=artifacts.bucket, key_prefix=f"{artifacts.prefix}/{key}")
            containers.append({**same_named(container, "hostname", *IMAGE_FIELDS),
                               "model_data_url": package.output["s3_uri"]})
            digests[key] = package.output["sha256"]
        return EnsureModelOperator(**ensure_model, containers=containers,
                                   inference_execution_mode=model.inference_mode), digests
    image = same_named(model, *IMAGE_FIELDS)
    if model.kind == "multi-model":
        package = PackageMultiModelOperator(
            task_id="package_model",
            models={archive.name: str(archive.source_dir) for archive in model.multi_model},
            bucket=artifacts.bucket,
            key_prefix=artifacts.prefix,
        )
        return EnsureModelOperator(**ensure_model, **image, multi_model=True,
                                   model_data_url=package.output["s3_uri"]), package.output["sha256"]
    package = PackageModelOperator(task_id="package_model", source_dir=str(model.source_dir),
                                   bucket=artifacts.bucket, key_prefix=artifacts.prefix)
    return EnsureModelOperator(**ensure_model, **image, model_data_url=package.output["s3_uri"]), \
        package.output["sha256"]


def smoke_test_task(pipeline: PipelineConfig, test: SmokeTestConfig, endpoint_name: object):
    request = same_named(test, "payload", "content_type", "accept", "expected_json", "expected_body")
    if test.asynchronous:
        return AsyncSmokeTestEndpointOperator(
            task_id=test.task_id, endpoint_name=endpoint_name, **request,
            input_s3_uri=f"s3://{pipeline.artifacts.bucket}/async-inputs/{pipeline.name}",
            **waiter_arguments(pipeline.endpoint.waiter, deferrable=False),
        )
    return SmokeTestEndpointOperator(task_id=test.task_id, endpoint_name=endpoint_name, **request,
                                     **same_named(test, *TARGET_FIELDS))


def monitoring_tasks(pipeline: PipelineConfig, endpoint_name: object) -> list:
    """``create_baseline >> ensure_monitoring_schedule`` for a pipeline with ``monitoring:`` (else none)."""
    monitoring = pipeline.monitoring
    if monitoring is None:
        return []
    baseline, schedule = monitoring.baseline, monitoring.schedule
    create_baseline = CreateDataQualityBaselineOperator(
        task_id="create_baseline",
        dataset=str(baseline.dataset),
        dataset_format=baseline.format,
        exclude_columns=list(baseline.exclude_columns),
        **same_named(baseline, "header", "output_s3_uri", "mode"),
        role_arn=pipeline.model.role_arn,
        instance_type=schedule.instance_type,
        job_name_prefix=f"{pipeline.name}-baseline",
        **waiter_arguments(pipeline.endpoint.waiter),
    )
    ensure_schedule = EnsureMonitoringScheduleOperator(
        task_id="ensure_monitoring_schedule",
        schedule_name=schedule.name,
        endpoint_name=endpoint_name,
        statistics_s3_uri=create_baseline.output["statistics_s3_uri"],
        constraints_s3_uri=create_baseline.output["constraints_s3_uri"],
        role_arn=pipeline.model.role_arn,
        schedule_expression=schedule.cron,
        **same_named(schedule, "output_s3_uri", "instance_type", "max_runtime_seconds", "publish_metrics",
                     "data_analysis_start_time", "data_analysis_end_time"),
        tags=pipeline.aws_tags,
    )
    create_baseline >> ensure_schedule
    return [create_baseline, ensure_schedule]


def promotion_task(pipeline: PipelineConfig, endpoint_config_name: object) -> tuple[object | None, dict]:
    """
    For a pipeline with a ``promotion:`` section: the ``ensure_promotion_alarms`` task, and the
    ``update_endpoint_kwargs`` that make ``deploy_endpoint`` update an existing endpoint with the
    section's DeploymentConfig (canary, linear, ...) and its alarms instead of all at once. A first
    release still creates the endpoint plainly. ``(None, {})`` without the section.
    """
    from sagemaker_ops.operators.promotion import EnsurePromotionAlarmsOperator
    from sagemaker_ops.promotion import alarm_requests, deployment_config

    promotion = pipeline.promotion
    if promotion is None:
        return None, {}
    variants = [variant.name for variant in pipeline.endpoint.variants]
    # Alarm names do not depend on the config promoted (only the green alarms' dimensions do).
    names = [request["AlarmName"] for request in
             alarm_requests(promotion.alarms, pipeline.endpoint.name, variants, "any-config")]
    alarms = EnsurePromotionAlarmsOperator(
        task_id="ensure_promotion_alarms",
        endpoint_name=pipeline.endpoint.name,
        endpoint_config_name=endpoint_config_name,
        alarms=promotion.as_dict()["alarms"],
        variant_names=variants,
    )
    return alarms, {"update_endpoint_kwargs": {"DeploymentConfig": deployment_config(promotion, names)}}


def shadow_test_task(pipeline: PipelineConfig, model_name: object) -> object | None:
    """
    For a ``promotion.shadow_test``: the new model answers a copy of the live endpoint's requests as its
    shadow and must meet the section's thresholds before ``deploy_endpoint`` updates the endpoint. The
    first release (no endpoint yet) and a re-run (the endpoint serves the model already) skip it.
    None without the block.
    """
    from sagemaker_ops.operators.shadow_test import ShadowTestOperator
    from sagemaker_ops.pipeline.promotion_section import shadow_payloads

    shadow = pipeline.promotion.shadow_test if pipeline.promotion is not None else None
    if shadow is None:
        return None
    return ShadowTestOperator(
        task_id="shadow_test",
        endpoint_name=pipeline.endpoint.name,
        candidate_model_name=model_name,
        capture_s3_uri=pipeline.artifacts.uri("shadow-tests"),
        thresholds=shadow.thresholds,
        payloads=shadow_payloads(shadow, pipeline.smoke_tests),
        requests=shadow.requests,
        shadow_share=shadow.share,
        shadow_instance_type=shadow.instance_type,
        shadow_instance_count=shadow.instance_count,
        skip_if_nothing_to_compare=True,
        **waiter_arguments(pipeline.endpoint.waiter, deferrable=False),
    )


def scaling_update_tasks(pipeline: PipelineConfig, endpoint_config_name: object,
                         update_endpoint_kwargs: dict | None) -> tuple[object | None, dict | None]:
    """
    For a pipeline with a ``scaling:`` section: the ``release_scaling_for_update`` task (deregisters the
    targets AWS would refuse the update for: an instance-type change) and ``deploy_endpoint``'s
    UpdateEndpoint arguments with ``RetainAllVariantProperties`` (the update keeps the autoscaler's instance
    counts). ``(None, update_endpoint_kwargs)`` without the section.
    """
    from sagemaker_ops.operators.autoscaling import ReleaseScalingForUpdateOperator

    if pipeline.scaling is None:
        return None, update_endpoint_kwargs
    release = ReleaseScalingForUpdateOperator(task_id="release_scaling_for_update",
                                              endpoint_name=pipeline.endpoint.name,
                                              endpoint_config_name=endpoint_config_name)
    return release, {**(update_endpoint_kwargs or {}), "RetainAllVariantProperties": True}


def apply_scaling_task(pipeline: PipelineConfig, deploy: object, target_value: object = None) -> object | None:
    """
    ``apply_scaling`` after ``deploy``, for a pipeline with a ``scaling:`` section (else None).

    It runs whatever the deploy's outcome (``all_done``): ``release_scaling_for_update`` may have deregistered
    a target for an update that then failed or was rolled back, and the endpoint, back on its old config,
    must scale again. ``target_value`` overrides the target of the SageMakerVariantInvocationsPerInstance
    policies: the benchmark step passes the target derived from its measured capacity here (an XComArg).
    """
    from sagemaker_ops.operators.autoscaling import ApplyScalingOperator

    if pipeline.scaling is None:
        return None
    apply = ApplyScalingOperator(task_id="apply_scaling", endpoint_name=pipeline.endpoint.name,
                                 scaling=pipeline.scaling.document, target_value=target_value,
                                 trigger_rule="all_done",
                                 **waiter_arguments(pipeline.endpoint.waiter, deferrable=False))
    deploy >> apply
    return apply
