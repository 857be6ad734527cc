"""What a monitoring schedule reported (its executions) and the drift report of a check, for people.

The report renderer (``sagemaker_ops.drift_report``, matplotlib) is imported inside ``execute()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowSkipException
from sagemaker_ops.model_monitor_jobs import VIOLATIONS_FILE, iso, parse_time, s3_join, violation_summary, window_id
from sagemaker_ops.operators.base import check_positive, check_s3_uri, store_arguments
from sagemaker_ops.operators.model_monitor_base import ModelMonitorBaseOperator
from sagemaker_ops.specs import check_resource_name

if TYPE_CHECKING:
    from airflow.sdk import Context

REPORT_FILE = "drift_report.html"


class MonitoringExecutionsOperator(ModelMonitorBaseOperator):
    """
    Read a monitoring schedule: its baseline, and its latest executions with the violations each reported.

    DescribeMonitoringSchedule and its data-quality job definition give the endpoint and the
    baseline files (so a check runs against exactly what the schedule uses);
    ListMonitoringExecutions (newest scheduled first) and each finished execution's
    ``constraint_violations.json`` give the history. A schedule that does not exist (yet) skips
    the task, and with it the checks downstream: the monitoring DAG may run before the first release.

    Returns ``{"schedule_name", "schedule_status", "endpoint_name", "job_definition_name",
    "statistics_s3_uri", "constraints_s3_uri", "executions": [{"scheduled_time", "status",
    "failure_reason", "processing_job_name", "report_s3_uri", "violation_count",
    "violation_summary"}]}``.

    :param schedule_name: the monitoring schedule.
    :param max_results: how many executions, newest first (1-100).
    """

    template_fields: Sequence[str] = aws_template_fields("schedule_name")

    @store_arguments
    def __init__(self, *, schedule_name: str, max_results: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        check_resource_name("schedule_name", self.schedule_name)
        check_positive("max_results", self.max_results, 100)
        schedule = self.hook.describe_or_none("monitoring_schedule", self.schedule_name)
        if schedule is None:
            raise AirflowSkipException(f"Monitoring schedule {self.schedule_name} does not exist (yet): release "
                                       "the endpoint with its monitoring section first.")
        definition_name = schedule["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName")
        baseline = self._baseline(schedule, definition_name)
        summaries = self.hook.conn.list_monitoring_executions(
            MonitoringScheduleName=self.schedule_name, SortBy="ScheduledTime", SortOrder="Descending",
            MaxResults=self.max_results)["MonitoringExecutionSummaries"]
        executions = [self._execution(summary) for summary in summaries]
        self.log.info("Schedule %s (%s), latest executions:\n%s", self.schedule_name,
                      schedule["MonitoringScheduleStatus"], _executions_table(executions))
        return {"schedule_name": self.schedule_name, "schedule_status": schedule["MonitoringScheduleStatus"],
                "endpoint_name": schedule.get("EndpointName"), "job_definition_name": definition_name,
                **baseline, "executions": executions}

    def _baseline(self, schedule: Mapping[str, Any], definition_name: str | None) -> dict[str, str | None]:
        if definition_name:
            definition = self.hook.conn.describe_data_quality_job_definition(JobDefinitionName=definition_name)
            config = definition.get("DataQualityBaselineConfig") or {}
        else:  # an inline MonitoringJobDefinition
            config = schedule["MonitoringScheduleConfig"].get("MonitoringJobDefinition", {}).get("BaselineConfig") or {}
        return {"statistics_s3_uri": (config.get("StatisticsResource") or {}).get("S3Uri"),
                "constraints_s3_uri": (config.get("ConstraintsResource") or {}).get("S3Uri")}

    def _execution(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        status = summary["MonitoringExecutionStatus"]
        execution = {"scheduled_time": iso(summary["ScheduledTime"]), "status": status,
                     "failure_reason": summary.get("FailureReason"), "processing_job_name": None,
                     "report_s3_uri": None, "violation_count": None, "violation_summary": {}}
        arn = summary.get("ProcessingJobArn")
        job = self.hook.describe_or_none("processing_job", arn.rsplit("/", 1)[-1]) if arn else None
        if job is None:
            return execution
        execution["processing_job_name"] = job["ProcessingJobName"]
        execution["report_s3_uri"] = self.job_output_uri(job)
        if status in ("Completed", "CompletedWithViolations"):
            report = self.s3.read_json_or_none(s3_join(execution["report_s3_uri"], VIOLATIONS_FILE)) or {}
            violations = report.get("violations", [])
            execution.update(violation_count=len(violations), violation_summary=violation_summary(violations))
        return execution


def _executions_table(executions: list[dict[str, Any]]) -> str:
    if not executions:
        return "no executions yet"
    return "\n".join(f"{e['scheduled_time']}  {e['status']:<24} violations={e['violation_count']}  "
                     f"{e['failure_reason'] or ''}" for e in executions)


class DriftReportOperator(ModelMonitorBaseOperator):
    """
    Render a check's drift report (a self-contained HTML page with one plot per feature) to S3.

    Reads the check's statistics and violations and the baseline's statistics and constraints
    (the S3 URIs of :class:`DataQualityCheckOperator`'s result), renders them with
    :func:`sagemaker_ops.drift_report.render_drift_report` and uploads the page to
    ``<report_s3_uri>/<endpoint>/<window>/drift_report.html``.

    Returns ``{"report_s3_uri", "features", "drifted_features", "violation_count"}``.

    :param check: the check operator's result (usually its XComArg).
    :param report_s3_uri: where reports go.
    :param executions: the schedule's latest executions (:class:`MonitoringExecutionsOperator`'s
        result), shown in the report.
    """

    template_fields: Sequence[str] = aws_template_fields("check", "report_s3_uri", "executions")

    @store_arguments
    def __init__(self, *, check: dict[str, Any], report_s3_uri: str, executions: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from sagemaker_ops.drift_report import render_drift_report

        check_s3_uri("report_s3_uri", self.report_s3_uri)
        if not isinstance(self.check, Mapping) or "baseline_statistics_s3_uri" not in self.check:
            raise ValueError(f"check must be a DataQualityCheckOperator result, got {self.check!r}.")
        check = self.check
        current = self.s3.read_json_or_none(check["statistics_s3_uri"]) if check.get("statistics_s3_uri") else None
        report = render_drift_report(
            endpoint_name=check["endpoint_name"],
            window_start=check["window_start"],
            window_end=check["window_end"],
            baseline_statistics=self.s3.read_json(check["baseline_statistics_s3_uri"]),
            constraints=self.s3.read_json(check["baseline_constraints_s3_uri"]),
            current_statistics=current,
            violations=check.get("violations") or [],
            records=check.get("records") or 0,
            unparseable_records=check.get("unparseable_records"),
            executions=(self.executions or {}).get("executions"),
        )
        window = window_id(parse_time(check["window_start"], "window_start"),
                           parse_time(check["window_end"], "window_end"))
        uri = s3_join(self.report_s3_uri, check["endpoint_name"], window, REPORT_FILE)
        self.s3.write_bytes(report.html.encode("utf-8"), uri, "text/html; charset=utf-8")
        self.log.info("Drift report (%d features, drifted: %s): %s", len(report.features),
                      ", ".join(report.drifted_features) or "none", uri)
        return {"report_s3_uri": uri, "features": [f.name for f in report.features],
                "drifted_features": report.drifted_features, "violation_count": check.get("violation_count", 0)}
