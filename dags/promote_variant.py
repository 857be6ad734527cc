"""Promote a variant: a guarded blue/green update, or a weight shift between two live variants, rolled back by alarms.

Manual DAG (Trigger, with the Params form; or ``airflow dags test promote_variant -c '{...}'``).
Wiring only: the Params are checked by ``sagemaker_ops.promotion_plan`` and every step is a
``sagemaker_ops`` operator.
"""

from __future__ import annotations

from datetime import timedelta

# Pre-imported by the DAG processor before it forks the parser (see dags/release.py).
import airflow.providers.amazon.aws.operators.base_aws  # noqa: F401
from airflow.sdk import DAG, Param, task
from sagemaker_ops.operators.promotion import (
    EnsurePromotionAlarmsOperator,
    PromoteEndpointOperator,
    ShiftTrafficOperator,
)
from sagemaker_ops.operators.promotion_report import PromotionReportOperator

NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
REPORTS = "s3://sagemaker-ops-artifacts/promotion-reports"
# Long enough for the longest deployment AWS allows (MaximumExecutionTimeoutInSeconds 28800), plus a margin.
WAITER = {"deferrable": True, "waiter_delay": 5, "waiter_max_attempts": 28800 // 5 + 60}

DOC = f"""
### Promote a variant, guarded by alarms

For an engineer pressing **Trigger**. Two modes:

* **blue_green**: `UpdateEndpoint` of `endpoint_name` to the existing `endpoint_config_name` with a
  DeploymentConfig (`strategy`: all_at_once, canary, linear, rolling; `canary_size` or `step_size`
  in `size_unit`; the waits and the timeout). SageMaker shifts traffic to the new (green) fleet and
  rolls everything back to blue if an alarm fires during a bake;
* **weight_shift**: two variants already live on the endpoint; traffic moves from `from_variant` to
  `to_variant` in `weight_steps` (percentages), each step baking `wait_interval_seconds`
  while the alarms are watched; an alarm puts the weights back.

The alarms: `Invocation5XXErrors` Average (error rate) at or above `error_rate_threshold`, and
the new fleet's `ModelLatency` p99 at or above `latency_p99_threshold_ms` (leave empty for none).
`ensure_alarms` creates or updates them (a re-run changes nothing).

**Success means the endpoint is InService on the target config.** A rollback fails
`promote_endpoint` with the alarm(s), their reason and the config the endpoint serves.
`promotion_report` then writes the report whatever the outcome (JSON and a self-contained HTML page
under `{REPORTS}/<endpoint>/`: traffic share per fleet over time, alarm states over time, the
events; the task's extra link opens it), and `watcher` fails the run if any step failed.
With `dry_run` the plan (the DeploymentConfig and the alarms) is printed and nothing changes.

The form rejects malformed values; `plan_promotion` rejects inconsistent ones (e.g. a timeout
shorter than the waits) before any AWS call.
"""

with DAG(
    dag_id="promote_variant",
    description="Guarded promotion of a new endpoint config or a weight shift between variants, rolled back by "
                "CloudWatch alarms.",
    schedule=None,
    catchup=False,
    tags=["promotion", "sagemaker"],
    doc_md=DOC,
    # A rollback raises AirflowFailException: retries are for transient errors only.
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "endpoint_name": Param("iris", type="string", pattern=NAME_PATTERN, title="Endpoint",
                               description="The live endpoint to promote (1-63 letters, digits and hyphens)."),
        "mode": Param("blue_green", type="string", enum=["blue_green", "weight_shift"], title="Mode",
                      description="blue_green: UpdateEndpoint to a new endpoint config with a DeploymentConfig. "
                                  "weight_shift: move traffic between two live variants."),
        "endpoint_config_name": Param(None, type=["null", "string"], pattern=NAME_PATTERN,
                                      title="Candidate endpoint config",
                                      description="blue_green: the existing endpoint config to promote (e.g. the "
                                                  "one a release DAG created)."),
        "strategy": Param("canary", type="string", enum=["all_at_once", "canary", "linear", "rolling"],
                          title="Strategy", description="blue_green: how traffic moves to the new fleet."),
        "size_unit": Param("instance_count", type="string", enum=["instance_count", "capacity_percent"],
                           title="Size unit", description="Unit of the canary size and the step size."),
        "canary_size": Param(1, type="integer", minimum=1, title="Canary size",
                             description="canary: instances (or percent, at most 50) that take traffic first."),
        "step_size": Param(1, type="integer", minimum=1, title="Step size",
                           description="linear (10-50 percent) / rolling (5-50 percent): the size of each step."),
        "wait_interval_seconds": Param(60, type="integer", minimum=0, maximum=3600, title="Bake per step (s)",
                                       description="How long each traffic step serves while alarms are watched."),
        "termination_wait_seconds": Param(0, type="integer", minimum=0, maximum=3600, title="Final bake (s)",
                                          description="blue_green: wait with all traffic on green before blue stops."),
        "max_execution_timeout_seconds": Param(3600, type="integer", minimum=600, maximum=28800,
                                               title="Timeout (s)",
                                               description="blue_green: the deployment rolls back after this long; "
                                                           "must exceed the waits."),
        "error_rate_threshold": Param(0.05, type=["null", "number"], minimum=0, maximum=1,
                                      title="5XX error rate threshold",
                                      description="Alarm when the share of 5XX answers in a minute reaches this."),
        "latency_p99_threshold_ms": Param(None, type=["null", "number"], exclusiveMinimum=0,
                                          title="p99 latency threshold (ms)",
                                          description="Alarm when the new fleet's ModelLatency p99 reaches this."),
        "from_variant": Param("Champion", type="string", pattern=NAME_PATTERN, title="From variant",
                              description="weight_shift: the variant that gives up traffic."),
        "to_variant": Param("Challenger", type="string", pattern=NAME_PATTERN, title="To variant",
                            description="weight_shift: the variant that takes it."),
        "weight_steps": Param([10, 50, 100], type="array", items={"type": "integer", "minimum": 1, "maximum": 100},
                              minItems=1, title="Weight steps (%)",
                              description="weight_shift: to_variant's share after each step, ascending."),
        "report_period_seconds": Param(60, type="integer", enum=[1, 5, 10, 30, 60, 300], title="Report resolution (s)",
                                       description="CloudWatch period of the report's traffic plot."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Print the plan (DeploymentConfig, alarms) and change nothing."),
    },
) as dag:

    @task(multiple_outputs=True)
    def plan_promotion(params: dict | None = None) -> dict:
        """Check the Params across fields; one XCom value per operator argument."""
        import json

        from sagemaker_ops.promotion_plan import plan_promotion as plan

        checked = plan(params or {})
        print(json.dumps(checked, indent=2))
        return checked

    @task.branch
    def choose_path(mode: str, dry_run: bool) -> list[str]:
        """Nothing after a dry run; else the tasks of the mode."""
        if dry_run:
            return []
        return ["ensure_alarms"] if mode == "blue_green" else ["ensure_shift_alarms"]

    plan = plan_promotion()
    path = choose_path(plan["mode"], plan["dry_run"])
    alarms = EnsurePromotionAlarmsOperator(task_id="ensure_alarms", endpoint_name=plan["endpoint_name"],
                                           endpoint_config_name=plan["endpoint_config_name"], alarms=plan["alarms"])
    promote = PromoteEndpointOperator(task_id="promote_endpoint", endpoint_name=plan["endpoint_name"],
                                      endpoint_config_name=plan["endpoint_config_name"], promotion=plan["promotion"],
                                      alarm_names=alarms.output["alarm_names"], **WAITER)
    shift_alarms = EnsurePromotionAlarmsOperator(task_id="ensure_shift_alarms", endpoint_name=plan["endpoint_name"],
                                                 alarms=plan["alarms"], variant_names=plan["alarm_variants"])
    shift = ShiftTrafficOperator(task_id="shift_traffic", endpoint_name=plan["endpoint_name"],
                                 from_variant=plan["from_variant"], to_variant=plan["to_variant"],
                                 steps=plan["weight_steps"], bake_seconds=plan["bake_seconds"],
                                 alarm_names=shift_alarms.output["alarm_names"], waiter_delay=5,
                                 waiter_max_attempts=720)
    report = PromotionReportOperator(task_id="promotion_report", endpoint_name=plan["endpoint_name"],
                                     green_config=plan["endpoint_config_name"],
                                     # The config replaced, when the promotion got as far as an update.
                                     blue_config="{{ (ti.xcom_pull(task_ids='promote_endpoint') or {})"
                                                 ".get('previous_endpoint_config_name') or '' }}",
                                     alarm_names=alarms.output["alarm_names"],
                                     report_s3_uri=REPORTS, period_seconds="{{ params.report_period_seconds }}",
                                     trigger_rule="none_skipped")  # after a rollback too; not after a skip

    @task(trigger_rule="one_failed")  # AirflowFailException: not retried
    def watcher() -> None:
        """Fail the run when a step failed (the report after it succeeds, and a run's state follows its leaves)."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("A promotion step failed; see its log (and the promotion report).")

    path >> [alarms, shift_alarms]
    alarms >> promote >> report
    shift_alarms >> shift
    [path, alarms, promote, report, shift_alarms, shift] >> watcher()
