"""Operator extra links (light: imported by the Airflow plugin that registers them in every component)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


class _ReportLink(BaseOperatorLink):
    """The task's HTML report (the ``report_html_uri`` it returned), as an S3 console address."""

    name = "Report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        uri = XCom.get_value(ti_key=ti_key, key="report_html_uri")
        if not uri:
            return ""
        bucket, _, key = str(uri).removeprefix("s3://").partition("/")
        return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={key}"


class PromotionReportLink(_ReportLink):
    name = "Promotion report"


class ScalingReportLink(_ReportLink):
    name = "Scaling report"
