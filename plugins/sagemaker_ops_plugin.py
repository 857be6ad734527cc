"""Registers sagemaker_ops' operator extra links with Airflow (the API server shows them on the task)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from sagemaker_ops.links import PromotionReportLink, ScalingReportLink


class SageMakerOpsPlugin(AirflowPlugin):
    name = "sagemaker_ops"
    operator_extra_links = [PromotionReportLink(), ScalingReportLink()]
