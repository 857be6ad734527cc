"""Write a variant's scaling report (JSON and a self-contained HTML page) to S3, for any window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from sagemaker_ops.hooks.application_autoscaling import ApplicationAutoScalingHook
from sagemaker_ops.hooks.cloudwatch import CloudWatchHook
from sagemaker_ops.hooks.s3 import S3OpsHook
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook
from sagemaker_ops.links import ScalingReportLink
from sagemaker_ops.operators.base import SageMakerOpsOperator, check_positive, check_s3_uri, store_arguments
from sagemaker_ops.specs import check_resource_name

if TYPE_CHECKING:
    from airflow.sdk import Context


class ScalingReportOperator(SageMakerOpsOperator[ApplicationAutoScalingHook]):
    """
    Render the scaling report of one variant over a window: instance count (from the scaling activities),
    invocations and InvocationsPerInstance per period with the target-tracking target, the alarms' states
    (DescribeAlarmHistory) and the activities; JSON and HTML to
    ``<report_s3_uri>/<endpoint>/<variant>/<UTC time>/scaling_report.{json,html}``.

    Returns ``{"report_json_uri", "report_html_uri", "activities", "instance_counts"}`` (the counts seen).

    :param endpoint_name: the scaled endpoint.
    :param report_s3_uri: where reports go (``s3://bucket/prefix``; the bucket is created if missing).
    :param variant_name: the variant (default ``AllTraffic``).
    :param window_start: ISO time the window starts at; default: ``window_hours`` before its end.
    :param window_end: ISO time the window ends at; default: now.
    :param window_hours: the window's length when ``window_start`` is not given.
    :param period_seconds: the metrics' period: 60 on AWS (one point a minute, what target tracking evaluates).
    """

    aws_hook_class = ApplicationAutoScalingHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "report_s3_uri", "variant_name",
                                                         "window_start", "window_end", "window_hours",
                                                         "period_seconds")
    operator_extra_links: ClassVar = (ScalingReportLink(),)
    ui_color = "#f3e5f5"

    @store_arguments
    def __init__(self, *, endpoint_name: str, report_s3_uri: str, variant_name: str = "AllTraffic",
                 window_start: str | None = None, window_end: str | None = None, window_hours: int = 3,
                 period_seconds: int = 60, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from sagemaker_ops.scaling_report import collect_scaling_report, render_scaling_report

        check_resource_name("endpoint_name", self.endpoint_name)
        check_resource_name("variant_name", self.variant_name)
        check_positive("period_seconds", int(self.period_seconds))  # a rendered template is a string
        self.window_hours = int(self.window_hours)  # a rendered template is a string
        check_positive("window_hours", self.window_hours)
        check_s3_uri("report_s3_uri", self.report_s3_uri)
        end = _moment(self.window_end) if self.window_end else datetime.now(timezone.utc)
        start = _moment(self.window_start) if self.window_start else end - timedelta(hours=self.window_hours)
        if start >= end:
            raise ValueError(f"window_start ({start.isoformat()}) must be before window_end ({end.isoformat()}).")
        document = collect_scaling_report(SageMakerOpsHook(**self._hook_parameters), self.hook,
                                          CloudWatchHook(**self._hook_parameters), self.endpoint_name,
                                          self.variant_name, start, end, int(self.period_seconds))
        prefix = (f"{self.report_s3_uri.rstrip('/')}/{self.endpoint_name}/{self.variant_name}/"
                  f"{end.strftime('%Y%m%dT%H%M%SZ')}")
        json_uri, html_uri = S3OpsHook(**self._hook_parameters).write_report(
            document, render_scaling_report(document), prefix, "scaling_report")
        self.log.info("Scaling report of %s/%s: %s (%d activities)", self.endpoint_name, self.variant_name,
                      html_uri, len(document["activities"]))
        return {"report_json_uri": json_uri, "report_html_uri": html_uri,
                "activities": [a["description"] for a in document["activities"]],
                "instance_counts": sorted({s["current"] for s in document["instance_counts"] if s["current"]})}


def _moment(text: str) -> datetime:
    """An ISO time; without an offset it is UTC (as the Params form's date-time picker may send it)."""
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
