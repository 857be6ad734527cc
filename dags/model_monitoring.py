"""Model monitoring: check each monitored endpoint's captured requests against its data-quality baseline.

Hourly, and whenever a release publishes a monitored endpoint's Asset. Wiring only: the steps are
``sagemaker_ops.operators.model_monitor_*`` operators; the pipelines with a ``monitoring:`` section
come from ``include/pipelines/`` (validated at parse time, as the release DAGs do).
"""

from __future__ import annotations

from datetime import timedelta

# Pre-imported by the DAG processor before it forks the parser (see dags/release.py).
import airflow.providers.amazon.aws.operators.base_aws  # noqa: F401
from airflow.sdk import DAG, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, Param
from sagemaker_ops.assets import endpoint_asset
from sagemaker_ops.dag_docs import monitoring_doc
from sagemaker_ops.monitoring_tasks import monitoring_group
from sagemaker_ops.pipeline import load_pipelines, pipelines_dir

PIPELINES_DIR = pipelines_dir(__file__)  # include/pipelines/, or SAGEMAKER_OPS_PIPELINES_DIR
MONITORED = [pipeline for pipeline in load_pipelines(PIPELINES_DIR) if pipeline.monitoring is not None]
HOURLY = CronTriggerTimetable("0 * * * *", timezone="UTC")

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
        "window_start": Param(None, type=["null", "string"], format="date-time", title="Window start",
                              description="Start of the checked window (ISO-8601 UTC); default: end - window."),
        "window_end": Param(None, type=["null", "string"], format="date-time", title="Window end",
                            description="End of the checked window (ISO-8601 UTC); default: the run's time."),
    },
):
    for _pipeline in MONITORED:
        monitoring_group(_pipeline)
