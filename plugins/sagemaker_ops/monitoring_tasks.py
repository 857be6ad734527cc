"""Task factory of the model_monitoring DAG: one task group per monitored endpoint."""

from __future__ import annotations

from airflow.sdk import TaskGroup, task
from sagemaker_ops.operators.model_monitor_check import DataQualityCheckOperator
from sagemaker_ops.operators.model_monitor_report import DriftReportOperator, MonitoringExecutionsOperator
from sagemaker_ops.pipeline.models import PipelineConfig
from sagemaker_ops.task_arguments import same_named, waiter_arguments


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
            window_start="{{ params.window_start or '' }}",
            window_end="{{ params.window_end or '' }}",
            policy="ignore",  # enforce_policy decides, after the report is written
            **same_named(monitoring.check, "output_s3_uri", "window_minutes", "mode", "publish_metrics"),
            role_arn=pipeline.model.role_arn,
            instance_type=monitoring.schedule.instance_type,
            **waiter_arguments(pipeline.endpoint.waiter),
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
