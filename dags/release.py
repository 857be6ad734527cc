"""Release DAGs: one ``release_<name>`` DAG per pipeline file in ``include/pipelines/``.

Each DAG packages the model, ensures the SageMaker model and endpoint config, deploys (or
updates) the endpoint, smoke-tests it and publishes the endpoint's Asset. Wiring only: the
steps live in ``sagemaker_ops``; the pipeline files are validated here, at parse time, so a
broken file shows up as an import error naming the file and the field.

The model is one archive, the archives of a multi-model endpoint (one ``package_model`` task
writing ``<name>.tar.gz`` each), or one archive per container of a multi-container endpoint
(``package_<container>`` tasks); variants run on instances or serverless; the endpoint config
may capture data or serve asynchronously; each smoke test is its own task. A pipeline with a
``monitoring:`` section then profiles its baseline and ensures its monitoring schedule before
the Asset is published, so the ``model_monitoring`` DAG never starts without a baseline.
"""

from __future__ import annotations

from datetime import timedelta

# The DAG processor imports the `airflow.*` modules a DAG file names once, before it forks the
# per-file parser ([dag_processor] parsing_pre_import_modules). Naming the provider's base here
# keeps boto3's ~0.3 s import out of every parse of this file.
import airflow.providers.amazon.aws.operators.base_aws  # noqa: F401
from airflow.sdk import DAG, Metadata, task
from sagemaker_ops.assets import endpoint_asset
from sagemaker_ops.operators.model_monitor_release import CreateDataQualityBaselineOperator, EnsureMonitoringScheduleOperator
from sagemaker_ops.operators.s3 import PackageModelOperator, PackageMultiModelOperator
from sagemaker_ops.operators.sagemaker_endpoint import DeployEndpointOperator
from sagemaker_ops.operators.sagemaker_resources import (
    DEFAULT_IMAGE_INSTANCE_TYPE,
    EnsureEndpointConfigOperator,
    EnsureModelOperator,
)
from sagemaker_ops.operators.sagemaker_runtime import AsyncSmokeTestEndpointOperator, SmokeTestEndpointOperator
from sagemaker_ops.pipeline_config import PipelineConfig, SmokeTestConfig, display_path, load_pipelines, pipelines_dir

PIPELINES_DIR = pipelines_dir(__file__)  # include/pipelines/, or SAGEMAKER_OPS_PIPELINES_DIR


def release_doc(pipeline: PipelineConfig) -> str:
    variants = "\n".join(
        f"| {v.name} | {v.instance_type} | {v.instance_count} | {v.weight:g} |" if v.serverless is None else
        f"| {v.name} | serverless, {v.serverless.memory_size_mb} MB | up to {v.serverless.max_concurrency} "
        f"concurrent | {v.weight:g} |"
        for v in pipeline.endpoint.variants
    )
    smoke_tests = "\n".join(f"* `{test.task_id}`: {_smoke_test_summary(test)}" for test in pipeline.smoke_tests)
    return f"""
### Release `{pipeline.name}`

{pipeline.description}

Defined by `{display_path(pipeline.path)}`. {_model_summary(pipeline)}
Ensure the model `{pipeline.name}-<hash>` and the endpoint config `{pipeline.name}-config-<hash>`
(names derive from their spec, so a new artifact gives a new config and an update), deploy
endpoint `{pipeline.endpoint.name}`, smoke-test it, and publish the Asset
`sagemaker://endpoint/{pipeline.endpoint.name}`.{_endpoint_features(pipeline)}{_monitoring_summary(pipeline)}

| variant | instance type | count | weight |
|---|---|---|---|
{variants}

Smoke tests:

{smoke_tests}

Re-running converges: unchanged inputs upload nothing, reuse the model and config, and leave the
endpoint alone.
"""


def _model_summary(pipeline: PipelineConfig) -> str:
    model, artifacts = pipeline.model, pipeline.artifacts
    image = model.image_uri or f"{model.framework} {model.framework_version}"
    if model.kind == "multi-model":
        names = ", ".join(f"`{archive.target_model}`" for archive in model.multi_model)
        return (f"Multi-model endpoint ({image}): package {names} under one content-addressed prefix "
                f"`s3://{artifacts.bucket}/{artifacts.prefix}/<digest>/`, each invoked by its TargetModel.")
    if model.kind == "multi-container":
        containers = " → " if model.inference_mode == "Serial" else ", "
        listed = containers.join(
            f"`{c.hostname or c.key(i)}` ({c.image_uri or c.framework}, {display_path(c.source_dir)})"
            for i, c in enumerate(model.containers))
        return (f"Multi-container endpoint, inference mode **{model.inference_mode}**: {listed}; each "
                f"container's archive is packaged to `s3://{artifacts.bucket}/{artifacts.prefix}/<container>/`.")
    return (f"Package `{display_path(model.source_dir)}` ({image}) to "
            f"`s3://{artifacts.bucket}/{artifacts.prefix}/<sha256>/model.tar.gz`.")


def _endpoint_features(pipeline: PipelineConfig) -> str:
    capture, asynchronous = pipeline.endpoint.data_capture, pipeline.endpoint.async_inference
    lines = []
    if capture is not None:
        lines.append(f"Data capture: {capture.sampling_percentage}% of requests ({' and '.join(capture.capture)}) "
                     f"to `{capture.destination_s3_uri}`.")
    if asynchronous is not None:
        lines.append(f"Asynchronous inference: answers to `{asynchronous.output_path}`, errors to "
                     f"`{asynchronous.failure_path}`.")
    return "".join(f"\n\n{line}" for line in lines)


def _monitoring_summary(pipeline: PipelineConfig) -> str:
    monitoring = pipeline.monitoring
    if monitoring is None:
        return ""
    baseline, schedule = monitoring.baseline, monitoring.schedule
    excluded = f" without {', '.join(baseline.exclude_columns)}" if baseline.exclude_columns else ""
    return (f"\n\nData-quality monitoring: `create_baseline` profiles `{display_path(baseline.dataset)}`"
            f"{excluded} ({baseline.mode}) to `{baseline.output_s3_uri}/<digest>/`, and "
            f"`ensure_monitoring_schedule` keeps the schedule `{schedule.name}` ({schedule.cron}, "
            f"{schedule.instance_type}) checking the endpoint against it; the `model_monitoring` DAG "
            f"checks the last {monitoring.check.window_minutes} minutes whenever this release publishes.")


def _smoke_test_summary(test: SmokeTestConfig) -> str:
    how = "InvokeEndpointAsync through S3" if test.asynchronous else "InvokeEndpoint"
    for label, value in (("TargetModel", test.target_model), ("TargetContainerHostname",
                         test.target_container_hostname), ("TargetVariant", test.target_variant)):
        if value:
            how += f", {label} `{value}`"
    expected = test.expected_body if test.expected_body is not None else test.expected_json
    return f"{how} with `{display_path(test.payload_file)}`, expecting `{expected}`"


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


def build_release_dag(pipeline: PipelineConfig) -> DAG:
    asset = endpoint_asset(pipeline.endpoint.name)
    endpoint = pipeline.endpoint
    with DAG(
        dag_id=pipeline.dag_id,
        description=pipeline.description or None,
        schedule=pipeline.schedule,
        catchup=False,
        tags=list(pipeline.tags),
        doc_md=release_doc(pipeline),
        default_args={
            "owner": pipeline.owner,
            "retries": pipeline.retries,
            "retry_delay": timedelta(seconds=pipeline.retry_delay_seconds),
        },
    ) as dag:
        model, model_data_sha256 = model_tasks(pipeline)
        endpoint_config = EnsureEndpointConfigOperator(
            task_id="ensure_endpoint_config",
            name_prefix=f"{pipeline.name}-config",
            model_name=model.output["model_name"],
            production_variants=endpoint.production_variants,
            data_capture_config=endpoint.data_capture.to_aws() if endpoint.data_capture else None,
            async_inference_config=endpoint.async_inference.to_aws() if endpoint.async_inference else None,
            tags=pipeline.aws_tags,
        )
        deploy = DeployEndpointOperator(
            task_id="deploy_endpoint",
            endpoint_name=endpoint.name,
            endpoint_config_name=endpoint_config.output["endpoint_config_name"],
            replace_failed=endpoint.replace_failed,
            tags=pipeline.aws_tags,
            deferrable=endpoint.waiter.deferrable,
            waiter_delay=endpoint.waiter.delay_seconds,
            waiter_max_attempts=endpoint.waiter.max_attempts,
        )
        smoke_tests = [smoke_test_task(pipeline, test, deploy.output["endpoint_name"])
                       for test in pipeline.smoke_tests]

        @task(outlets=[asset])
        def publish_endpoint(deployment: dict, model_data_sha256):
            """Record that the endpoint serves this release (consumers schedule on the Asset).

            ``model_data_sha256`` is the archive's sha256, the digest of a multi-model set, or
            ``{container: sha256}`` for a multi-container model.
            """
            extra = {
                "endpoint_name": deployment["endpoint_name"],
                "endpoint_config_name": deployment["endpoint_config_name"],
                "model_data_sha256": model_data_sha256,
                "changed": deployment["changed"],
            }
            yield Metadata(asset, extra=extra)
            return extra

        publish = publish_endpoint(deploy.output, model_data_sha256)
        monitoring = monitoring_tasks(pipeline, deploy.output["endpoint_name"])
        if monitoring:
            # The Asset comes last: its consumers (model_monitoring) need the baseline and the schedule.
            smoke_tests >> monitoring[0]
            monitoring[-1] >> publish
        else:
            smoke_tests >> publish
    return dag


for _pipeline in load_pipelines(PIPELINES_DIR):
    globals()[_pipeline.dag_id] = build_release_dag(_pipeline)
