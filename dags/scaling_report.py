"""The scaling report of one endpoint variant over any window, on demand (Trigger, with the Params form).

Wiring only: ``ScalingReportOperator`` reads the scaling activities, the endpoint's invocation metrics
and the target-tracking alarms' history, and writes JSON and a self-contained HTML page to S3.
"""

from __future__ import annotations

from datetime import timedelta

# Pre-imported by the DAG processor before it forks the parser (see dags/release.py).
import airflow.providers.amazon.aws.operators.base_aws  # noqa: F401
from airflow.sdk import DAG, Param
from sagemaker_ops.operators.scaling_report import ScalingReportOperator

NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
REPORTS = "s3://sagemaker-ops-artifacts/scaling-reports"

DOC = f"""
### Scaling report of an endpoint variant

For anyone asking "what did autoscaling do?": pick the endpoint, the variant and the window, press
**Trigger**. `scaling_report` writes JSON and a self-contained HTML page under
`{REPORTS}/<endpoint>/<variant>/` (the task's extra link opens it): the instance count over time,
the load (Invocations per period) and the tracked metric (InvocationsPerInstance) with each target-tracking
policy's target, the AlarmHigh/AlarmLow states, and every scaling activity with its cause.

The window ends at `window_end` (default: now) and lasts `window_hours`; CloudWatch keeps one-minute
data for 15 days. `period_seconds` is 60 on AWS (what target tracking evaluates); the emulator's time
scale shortens its minute (3 s at time scale 20).
"""

with DAG(
    dag_id="scaling_report",
    description="Instance count, load, tracked metric, alarms and scaling activities of an endpoint variant.",
    schedule=None,
    catchup=False,
    tags=["autoscaling", "sagemaker", "report"],
    doc_md=DOC,
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "endpoint_name": Param("iris", type="string", pattern=NAME_PATTERN, title="Endpoint",
                               description="The auto-scaled endpoint (1-63 letters, digits and hyphens)."),
        "variant_name": Param("AllTraffic", type="string", pattern=NAME_PATTERN, title="Variant"),
        "window_hours": Param(3, type="integer", minimum=1, maximum=360, title="Window (hours)",
                              description="How far back the report looks (at most 15 days)."),
        "window_end": Param(None, type=["null", "string"], format="date-time", title="Window end",
                            description="ISO time the window ends at; empty: now."),
        "period_seconds": Param(60, type="integer", enum=[1, 3, 5, 10, 30, 60, 300], title="Period (s)",
                                description="CloudWatch period of the plots: 60 on AWS."),
    },
) as dag:
    ScalingReportOperator(
        task_id="scaling_report",
        endpoint_name="{{ params.endpoint_name }}",
        variant_name="{{ params.variant_name }}",
        window_hours="{{ params.window_hours }}",
        window_end="{{ params.window_end or '' }}",
        period_seconds="{{ params.period_seconds }}",
        report_s3_uri=REPORTS,
    )
