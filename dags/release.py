"""Release DAGs: one ``release_<name>`` DAG per pipeline file in ``include/pipelines/``.

Each DAG packages the model, ensures the SageMaker model and endpoint config, deploys (or
updates) the endpoint, smoke-tests it and publishes the endpoint's Asset. Wiring only: the
steps live in ``sagemaker_ops``; the pipeline files are validated here, at parse time, so a
broken file shows up as an import error naming the file and the field.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

# The DAG processor imports the `airflow.*` modules a DAG file names once, before it forks the
# per-file parser ([dag_processor] parsing_pre_import_modules). Naming the provider's base here
# keeps boto3's ~0.3 s import out of every parse of this file.
import airflow.providers.amazon.aws.operators.base_aws  # noqa: F401
from airflow.sdk import DAG, Metadata, task
from sagemaker_ops.assets import endpoint_asset
from sagemaker_ops.operators.s3 import PackageModelOperator
from sagemaker_ops.operators.sagemaker import (
    DeployEndpointOperator,
    EnsureEndpointConfigOperator,
    EnsureModelOperator,
)
from sagemaker_ops.operators.sagemaker_runtime import SmokeTestEndpointOperator
from sagemaker_ops.pipeline_config import PipelineConfig, display_path, load_pipelines

# Pipeline files live in include/pipelines/ unless SAGEMAKER_OPS_PIPELINES_DIR names another folder.
PIPELINES_DIR = Path(os.environ.get("SAGEMAKER_OPS_PIPELINES_DIR")
                     or Path(__file__).resolve().parents[1] / "include" / "pipelines")


def release_doc(pipeline: PipelineConfig) -> str:
    variants = "\n".join(
        f"| {v.name} | {v.instance_type} | {v.instance_count} | {v.weight:g} |" for v in pipeline.endpoint.variants
    )
    image = pipeline.model.image_uri or f"{pipeline.model.framework} {pipeline.model.framework_version}"
    return f"""
### Release `{pipeline.name}`

{pipeline.description}

Defined by `{display_path(pipeline.path)}`. Package `{display_path(pipeline.model.source_dir)}`
({image}) to `s3://{pipeline.artifacts.bucket}/{pipeline.artifacts.prefix}/<sha256>/model.tar.gz`,
ensure the model `{pipeline.name}-<hash>` and the endpoint config `{pipeline.name}-config-<hash>`
(names derive from their spec, so a new artifact gives a new config and an update), deploy
endpoint `{pipeline.endpoint.name}`, smoke-test it, and publish the Asset
`sagemaker://endpoint/{pipeline.endpoint.name}`.

| variant | instance type | count | weight |
|---|---|---|---|
{variants}

Re-running converges: unchanged inputs upload nothing, reuse the model and config, and leave the
endpoint alone.
"""


def build_release_dag(pipeline: PipelineConfig) -> DAG:
    asset = endpoint_asset(pipeline.endpoint.name)
    waiter = pipeline.endpoint.waiter
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
        package = PackageModelOperator(
            task_id="package_model",
            source_dir=str(pipeline.model.source_dir),
            bucket=pipeline.artifacts.bucket,
            key_prefix=pipeline.artifacts.prefix,
        )
        model = EnsureModelOperator(
            task_id="ensure_model",
            name_prefix=pipeline.name,
            model_data_url=package.output["s3_uri"],
            execution_role_arn=pipeline.model.role_arn,
            image_uri=pipeline.model.image_uri,
            framework=pipeline.model.framework,
            framework_version=pipeline.model.framework_version,
            image_instance_type=pipeline.endpoint.variants[0].instance_type,
            environment=pipeline.model.environment,
            tags=pipeline.aws_tags,
        )
        endpoint_config = EnsureEndpointConfigOperator(
            task_id="ensure_endpoint_config",
            name_prefix=f"{pipeline.name}-config",
            model_name=model.output["model_name"],
            production_variants=pipeline.endpoint.production_variants,
            tags=pipeline.aws_tags,
        )
        deploy = DeployEndpointOperator(
            task_id="deploy_endpoint",
            endpoint_name=pipeline.endpoint.name,
            endpoint_config_name=endpoint_config.output["endpoint_config_name"],
            replace_failed=pipeline.endpoint.replace_failed,
            tags=pipeline.aws_tags,
            deferrable=waiter.deferrable,
            waiter_delay=waiter.delay_seconds,
            waiter_max_attempts=waiter.max_attempts,
        )
        smoke_test = SmokeTestEndpointOperator(
            task_id="smoke_test",
            endpoint_name=deploy.output["endpoint_name"],
            payload=pipeline.smoke_test.payload,
            content_type=pipeline.smoke_test.content_type,
            accept=pipeline.smoke_test.accept,
            expected_json=pipeline.smoke_test.expected_json,
            expected_body=pipeline.smoke_test.expected_body,
        )

        @task(outlets=[asset])
        def publish_endpoint(deployment: dict, model_data_sha256: str):
            """Record that the endpoint serves this release (consumers schedule on the Asset)."""
            extra = {
                "endpoint_name": deployment["endpoint_name"],
                "endpoint_config_name": deployment["endpoint_config_name"],
                "model_data_sha256": model_data_sha256,
                "changed": deployment["changed"],
            }
            yield Metadata(asset, extra=extra)
            return extra

        smoke_test >> publish_endpoint(deploy.output, package.output["sha256"])
    return dag


for _pipeline in load_pipelines(PIPELINES_DIR):
    globals()[_pipeline.dag_id] = build_release_dag(_pipeline)
