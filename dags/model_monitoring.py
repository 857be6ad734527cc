"""Model monitoring: check each monitored endpoint's captured requests against its data-quality baseline.

Hourly, and whenever a release publishes a monitored endpoint's Asset. Wiring only: the steps are
``sagemaker_ops.operators.model_monitor_*`` operators; the pipelines with a ``monitoring:`` section
come from ``include/pipelines/`` (validated at parse time, as the release DAGs do).
"""

from __future__ import annotations

from datetime import timedelta

# Pre-imported by the DAG processor before it forks the parser (see dags/release.py).
import airflow.providers.amazon.aws.operators.base_aws  # noqa: F401
from airflow.sdk import DAG, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, Param, TaskGroup, task
from sagemaker_ops.assets import endpoint_asset
from sagemaker_ops.operators.model_monitor_check import DataQualityCheckOperator
from sagemaker_ops.operators.model_monitor_report import DriftReportOperator, MonitoringExecutionsOperator
from sagemaker_ops.pipeline_config import PipelineConfig, load_pipelines, pipelines_dir

PIPELINES_DIR = pipelines_dir(__file__)  # include/pipelines/, or SAGEMAKER_OPS_PIPELINES_DIR
MONITORED = [pipeline for pipeline in load_pipelines(PIPELINES_DIR) if pipeline.monitoring is not None]
HOURLY = CronTriggerTimetable("0 * * * *", timezone="UTC")


def monitoring_doc(pipelines: list[PipelineConfig]) -> str:
    rows = "\n".join(
        f"| `{p.endpoint.name}` | `{p.monitoring.schedule.name}` ({p.monitoring.schedule.cron}) | "
        f"{p.monitoring.check.window_minutes} min, {p.monitoring.check.mode} | **{p.monitoring.check.policy}** | "
        f"`{p.monitoring.report_s3_uri}/{p.endpoint.name}/` |" for p in pipelines) or "| (none) | | | | |"
    return f"""
### Model monitoring (data quality)

For the data team. Runs hourly, and as soon as a release publishes one of the endpoint Assets
below (the release creates the baseline and the monitoring schedule before it publishes). For
each monitored endpoint, one task group:

1. `latest_executions`: the SageMaker monitoring schedule's baseline and its latest executions
   with their violations (skips the group if the schedule does not exist yet);
2. `check`: the last window of captured requests against the same baseline, now, with the
   Model Monitor analyzer (statistics.json and constraint_violations.json to S3, `feature_*`
   metrics to CloudWatch `/aws/sagemaker/Endpoints/data-metric`);
3. `drift_report`: a self-contained HTML page in S3 with one plot per feature, baseline versus
   window, the distance and threshold of each, the violations and the schedule's executions;
4. `enforce_policy`: `fail` fails the run listing the violations, `warn` logs them, `ignore`
   counts them. Captured records the analyzer could not parse are always reported.

| endpoint | schedule | window, mode | policy | reports |
|---|---|---|---|---|
{rows}

Params `window_start` / `window_end` (ISO-8601, UTC) re-check any past window; by default the
window ends at the run's time.
"""


def monitoring_group(pipeline: PipelineConfig) -> None:
    monitoring, endpoint = pipeline.monitoring, pipeline.endpoint.name
    with TaskGroup(group_id=pipeline.name.replace("-", "_"), tooltip=f"data quality of endpoint {endpoint}"):
        executions = MonitoringExecutionsOperator(task_id="latest_executions",
                                                  schedule_name=monitoring.schedule.name)
        check = DataQualityCheckOperator(
            task_id="check",
            endpoint_name=endpoint,
            statistics_s3_uri=executions.output["statistics_s3_uri"],
            constraints_s3_uri=executions.output["constraints_s3_uri"],
            output_s3_uri=monitoring.check.output_s3_uri,
            window_minutes=monitoring.check.window_minutes,
            window_start="{{ params.window_start or '' }}",
            window_end="{{ params.window_end or '' }}",
            policy="ignore",  # enforce_policy decides, after the report is written
            mode=monitoring.check.mode,
            publish_metrics=monitoring.check.publish_metrics,
            role_arn=pipeline.model.role_arn,
            instance_type=monitoring.schedule.instance_type,
            deferrable=pipeline.endpoint.waiter.deferrable,
            waiter_delay=pipeline.endpoint.waiter.delay_seconds,
            waiter_max_attempts=pipeline.endpoint.waiter.max_attempts,
        )
        report = DriftReportOperator(task_id="drift_report", check=check.output,
                                     report_s3_uri=monitoring.report_s3_uri, executions=executions.output)

        @task(task_id="enforce_policy")
        def enforce_policy(result: dict, policy: str) -> dict:
            """Fail, warn or ignore, per the pipeline's monitoring.check.policy."""
            import logging

            from sagemaker_ops.operators.model_monitor_check import apply_policy

            apply_policy(result, policy, logging.getLogger("airflow.task"))
            return {"policy": policy, "violation_count": result["violation_count"],
                    "violation_summary": result["violation_summary"]}

        report >> enforce_policy(check.output, monitoring.check.policy)


assets = [endpoint_asset(pipeline.endpoint.name) for pipeline in MONITORED]

with DAG(
    dag_id="model_monitoring",
    description="Check monitored endpoints' captured requests against their data-quality baselines.",
    schedule=AssetOrTimeSchedule(timetable=HOURLY, assets=AssetAny(*assets)) if assets else HOURLY,
    catchup=False,
    max_active_runs=1,
    tags=["monitoring", "sagemaker", "data-quality"],
    doc_md=monitoring_doc(MONITORED),
    default_args={"owner": "data-team", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "window_start": Param(None, type=["null", "string"], format="date-time",
                              description="Start of the checked window (ISO-8601 UTC); default: end - window."),
        "window_end": Param(None, type=["null", "string"], format="date-time",
                            description="End of the checked window (ISO-8601 UTC); default: the run's time."),
    },
):
    for _pipeline in MONITORED:
        monitoring_group(_pipeline)
