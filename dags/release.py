"""Release DAGs: one ``release_<name>`` DAG per pipeline file in ``include/pipelines/``.

Each DAG packages the model, ensures the SageMaker model and endpoint config, deploys (or
updates) the endpoint, smoke-tests it and publishes the endpoint's Asset. Wiring only: the
steps, the task factories (``sagemaker_ops.release_tasks``) and the docs (``sagemaker_ops.dag_docs``)
live in ``sagemaker_ops``; the pipeline files are validated here, at parse time, so a
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
from sagemaker_ops.benchmark_tasks import XCOM_AUTOSCALING_TARGET, benchmark_tasks
from sagemaker_ops.dag_docs import release_doc
from sagemaker_ops.operators.sagemaker_endpoint import DeployEndpointOperator
from sagemaker_ops.operators.sagemaker_resources import EnsureEndpointConfigOperator, endpoint_config_requests
from sagemaker_ops.pipeline import load_pipelines, pipelines_dir
from sagemaker_ops.pipeline.models import PipelineConfig
from sagemaker_ops.release_tasks import (
    apply_scaling_task,
    model_tasks,
    monitoring_tasks,
    promotion_task,
    scaling_update_tasks,
    shadow_test_task,
    smoke_test_task,
)
from sagemaker_ops.task_arguments import waiter_arguments

PIPELINES_DIR = pipelines_dir(__file__)  # include/pipelines/, or SAGEMAKER_OPS_PIPELINES_DIR


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
        config_requests = endpoint_config_requests(endpoint)
        # With a benchmark: section, the candidates are measured and the chosen configuration is deployed.
        benchmark = benchmark_tasks(pipeline, model.output["model_name"])
        if benchmark is not None:
            config_requests["production_variants"] = benchmark[1]["production_variants"]
        endpoint_config = EnsureEndpointConfigOperator(
            task_id="ensure_endpoint_config",
            name_prefix=f"{pipeline.name}-config",
            model_name=model.output["model_name"],
            **config_requests,
            tags=pipeline.aws_tags,
        )
        # With a promotion: section, a new version of a live endpoint goes out by its strategy, guarded by alarms.
        promotion_alarms, promotion = promotion_task(pipeline, endpoint_config.output["endpoint_config_name"])
        # With promotion.shadow_test, the new model first answers live requests as the endpoint's shadow;
        # a first release (no endpoint yet) skips it and deploys.
        shadow_test = shadow_test_task(pipeline, model.output["model_name"])
        # With a scaling: section, the update keeps the autoscaled counts and steps around what AWS refuses.
        release_scaling, update_endpoint_kwargs = scaling_update_tasks(
            pipeline, endpoint_config.output["endpoint_config_name"], promotion.get("update_endpoint_kwargs"))
        deploy = DeployEndpointOperator(
            task_id="deploy_endpoint",
            endpoint_name=endpoint.name,
            endpoint_config_name=endpoint_config.output["endpoint_config_name"],
            replace_failed=endpoint.replace_failed,
            tags=pipeline.aws_tags,
            **waiter_arguments(endpoint.waiter),
            update_endpoint_kwargs=update_endpoint_kwargs,
            trigger_rule="all_success" if shadow_test is None else "none_failed",
        )
        if promotion_alarms is not None:
            promotion_alarms >> deploy
        if release_scaling is not None:
            release_scaling >> deploy
        if shadow_test is not None:
            shadow_test >> deploy
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
        apply_scaling = apply_scaling_task(pipeline, deploy, target_value=None if benchmark
                                           is None else benchmark[1][XCOM_AUTOSCALING_TARGET])
        if apply_scaling is not None:
            apply_scaling >> publish  # the Asset announces an endpoint that scales as its file says
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
