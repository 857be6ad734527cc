"""Write a promotion's report (JSON and a self-contained HTML page) to S3 from CloudWatch and the endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from sagemaker_ops.hooks.cloudwatch import CloudWatchHook
from sagemaker_ops.hooks.s3 import S3OpsHook
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook
from sagemaker_ops.links import PromotionReportLink
from sagemaker_ops.operators.base import SageMakerOpsOperator, check_s3_uri, store_arguments
from sagemaker_ops.specs import check_resource_name

if TYPE_CHECKING:
    from airflow.sdk import Context

REPORT_NAMESPACE = "AWS/SageMaker"


class PromotionReportOperator(SageMakerOpsOperator[CloudWatchHook]):
    """
    Render the report of a promotion: traffic share per fleet over time (``Invocations`` per variant,
    the green fleet's from its ``EndpointConfigName`` dimension), each alarm's state over time
    (DescribeAlarmHistory) and the deployment's events; JSON and HTML to
    ``<report_s3_uri>/<endpoint>/<UTC time>/promotion_report.{json,html}``.

    Runs after the promotion whatever its outcome (``trigger_rule="all_done"`` in a DAG): a rolled-back
    promotion is the report most worth reading. Promoted means InService on ``green_config``.

    Returns ``{"report_json_uri", "report_html_uri", "promoted", "summary"}``.

    :param endpoint_name: the promoted endpoint.
    :param green_config: the config the promotion targeted.
    :param blue_config: the config it replaced (shown in the report).
    :param alarm_names: the alarms the promotion watched.
    :param report_s3_uri: where reports go (``s3://bucket/prefix``; the bucket is created if missing).
    :param window_start: ISO time the report starts at; default: the DAG run's start (or 1 hour ago).
    :param period_seconds: CloudWatch period of the traffic series (1, 5, 10, 30 or a multiple of 60).
    """

    aws_hook_class = CloudWatchHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "green_config", "blue_config",
                                                         "alarm_names", "report_s3_uri", "window_start",
                                                         "period_seconds")
    operator_extra_links: ClassVar = (PromotionReportLink(),)
    ui_color = "#e1f5fe"

    @store_arguments
    def __init__(self, *, endpoint_name: str, green_config: str, report_s3_uri: str, blue_config: str | None = None,
                 alarm_names: list[str] | None = None, window_start: str | None = None, period_seconds: int = 60,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from sagemaker_ops.promotion_report import render_promotion_report

        check_resource_name("endpoint_name", self.endpoint_name)
        check_resource_name("green_config", self.green_config)
        check_s3_uri("report_s3_uri", self.report_s3_uri)
        self.period_seconds = int(self.period_seconds)  # a rendered template is a string
        end = datetime.now(timezone.utc)
        start = self._start(context, end)
        endpoint = SageMakerOpsHook(**self._hook_parameters).describe_or_none("endpoint", self.endpoint_name) or {}
        self.blue_config = self.blue_config or None  # a template that found no previous config renders ""
        if self.blue_config is None and endpoint.get("EndpointConfigName") != self.green_config:
            self.blue_config = endpoint.get("EndpointConfigName")  # rolled back: the endpoint serves blue
        variants = [v["VariantName"] for v in endpoint.get("ProductionVariants", [])]
        history = {name: self._history(name, start, end) for name in (self.alarm_names or [])}
        promoted = endpoint.get("EndpointStatus") == "InService" and endpoint.get("EndpointConfigName") == \
            self.green_config
        summary = (f"InService on {self.green_config}" if promoted else
                   f"{endpoint.get('EndpointStatus')} on {endpoint.get('EndpointConfigName')}: "
                   f"{endpoint.get('FailureReason') or 'no FailureReason'}")
        document = {
            "endpoint_name": self.endpoint_name, "blue_config": self.blue_config, "green_config": self.green_config,
            "window_start": start.isoformat(), "window_end": end.isoformat(), "period_seconds": self.period_seconds,
            "invocations": self._invocations(variants, start, end, endpoint.get("LastModifiedTime") if promoted
                                             else None), "alarm_history": history,
            "events": self._events(start, end, history, endpoint, summary),
            "outcome": {"promoted": promoted, "summary": summary},
        }
        prefix = f"{self.report_s3_uri.rstrip('/')}/{self.endpoint_name}/{end.strftime('%Y%m%dT%H%M%SZ')}"
        json_uri, html_uri = S3OpsHook(**self._hook_parameters).write_report(
            document, render_promotion_report(document), prefix, "promotion_report")
        self.log.info("Promotion report (%s): %s", summary, html_uri)
        return {"report_json_uri": json_uri, "report_html_uri": html_uri, "promoted": promoted, "summary": summary}

    def _start(self, context: Context, end: datetime) -> datetime:
        if self.window_start:
            return datetime.fromisoformat(str(self.window_start))
        dag_run = context.get("dag_run") if context else None
        started = getattr(dag_run, "start_date", None)
        return started if started else end - timedelta(hours=1)

    def _invocations(self, variants: list[str], start: datetime, end: datetime,
                     promoted_at: datetime | None) -> dict[str, dict[str, float]]:
        """Invocations per fleet: green from its EndpointConfigName series (published while the deployment
        runs), blue the rest of the variant's; once promoted (``promoted_at``), all of it is green's."""
        fleets: dict[str, dict[str, float]] = {"blue": {}, "green": {}}
        for variant in variants:
            dimensions = [{"Name": "EndpointName", "Value": self.endpoint_name},
                          {"Name": "VariantName", "Value": variant}]
            total = self._sums(dimensions, start, end)
            green = self._sums([*dimensions, {"Name": "EndpointConfigName", "Value": self.green_config}], start, end)
            for time in total.keys() | green.keys():
                after = promoted_at is not None and datetime.fromisoformat(time) >= promoted_at
                green_count = total.get(time, 0.0) if after else green.get(time, 0.0)
                blue_count = 0.0 if after else max(0.0, total.get(time, 0.0) - green_count)
                for fleet, count in (("green", green_count), ("blue", blue_count)):
                    fleets[fleet][time] = fleets[fleet].get(time, 0.0) + count
        return fleets

    def _sums(self, dimensions: list[dict[str, str]], start: datetime, end: datetime) -> dict[str, float]:
        answer = self.hook.conn.get_metric_statistics(
            Namespace=REPORT_NAMESPACE, MetricName="Invocations", Dimensions=dimensions, StartTime=start,
            EndTime=end, Period=self.period_seconds, Statistics=["Sum"])
        sums: dict[str, float] = {}
        for point in answer.get("Datapoints", []):
            # Two series' buckets may start a millisecond apart: key both by the nearest period boundary.
            seconds = round(point["Timestamp"].timestamp() / self.period_seconds) * self.period_seconds
            key = datetime.fromtimestamp(seconds, timezone.utc).isoformat()
            sums[key] = sums.get(key, 0.0) + float(point["Sum"])
        return sums

    def _history(self, name: str, start: datetime, end: datetime) -> list[dict[str, str]]:
        return self.hook.state_changes(name, start, end)

    def _events(self, start: datetime, end: datetime, history: dict[str, list[dict[str, str]]],
                endpoint: dict[str, Any], summary: str) -> list[dict[str, str]]:
        events = [{"time": start.isoformat(), "event": f"window starts; promotion of {self.endpoint_name} from "
                                                      f"{self.blue_config} to {self.green_config}"}]
        for name, items in history.items():
            events += [{"time": i["time"], "event": f"alarm {name}: {i['old_state']} -> {i['new_state']} "
                                                    f"({i['reason']})"} for i in items]
        if endpoint.get("LastModifiedTime"):
            events.append({"time": endpoint["LastModifiedTime"].astimezone(timezone.utc).isoformat(),
                           "event": f"endpoint last modified; now {summary}"})
        events.append({"time": end.isoformat(), "event": f"report written; endpoint {summary}"})
        return sorted(events, key=lambda event: event["time"])
