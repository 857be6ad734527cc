"""What the Model Monitor operators share: their hooks, argument checks and analyzer processing jobs.

The operators live by when they run: ``model_monitor_release`` (baseline and schedule, at release
time), ``model_monitor_check`` (the monitoring DAG's own check of a window) and
``model_monitor_report`` (the schedule's executions and the drift report). Every operator
converges on a re-run: files in S3 are content-addressed, processing jobs are named after what
they compute (a retry finds the job it started), job definitions after their spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from sagemaker_ops.hooks.s3 import S3OpsHook
from sagemaker_ops.hooks.sagemaker import ProcessingJobFailed, SageMakerOpsHook
from sagemaker_ops.model_monitor_jobs import job_name
from sagemaker_ops.operators.base import SageMakerOpsOperator, WaitingOperator, check_waiter_arguments, store_arguments
from sagemaker_ops.specs import spec_hash

if TYPE_CHECKING:
    from airflow.sdk import Context

MODES = ("local", "processing")
# A retry after a failed processing job starts the next attempt (<name>-2, -3, ...), at most this many.
MAX_JOB_ATTEMPTS = 5
# Processing-job names carry this many hex digits of their request's hash.
DIGEST_LENGTH = 12


def check_choice(field: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(choices)}, got {value!r}.")


class ModelMonitorBaseOperator(SageMakerOpsOperator[SageMakerOpsHook]):
    """The SageMaker hook (``self.hook``) and an S3 hook on the same connection (``self.s3``)."""

    aws_hook_class = SageMakerOpsHook
    ui_color = "#d1c4e9"

    @cached_property
    def s3(self) -> S3OpsHook:
        return S3OpsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify,
                         config=self.botocore_config)

    @property
    def region(self) -> str:
        return self.region_name or self.hook.conn_region_name

    @staticmethod
    def job_output_uri(job: Mapping[str, Any]) -> str:
        """Where an analyzer processing job writes its files."""
        return job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]


class AnalyzerJobOperator(WaitingOperator[SageMakerOpsHook], ModelMonitorBaseOperator):
    """An operator that runs the analyzer locally (``mode="local"``) or as a processing job (``"processing"``).

    :param mode: ``local`` (in the task) or ``processing`` (a SageMaker processing job).
    :param role_arn: the processing job's execution role (processing mode).
    :param instance_type: the processing job's instance type.
    :param max_runtime_seconds: the processing job's StoppingCondition.
    :param image_uri: the analyzer image; default: the region's ``sagemaker-model-monitor-analyzer``.
    :param waiter_delay: seconds between status checks of the job.
    :param waiter_max_attempts: status checks before giving up.
    :param deferrable: wait for the job in the triggerer.
    """

    resumed_job_name: str | None = None  # set when execute() runs again after a deferred wait

    @store_arguments
    def __init__(
        self,
        *,
        mode: str = "local",
        role_arn: str | None = None,
        instance_type: str = "ml.m5.xlarge",
        max_runtime_seconds: int = 3600,
        image_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def check_processing_arguments(self) -> None:
        if not self.role_arn:
            raise ValueError("role_arn is required with mode='processing' (the processing job's role).")
        check_waiter_arguments(self)

    @staticmethod
    def attempt_names(name_prefix: str, build_request: Callable[[str], dict[str, Any]]) -> list[str]:
        """``<prefix>-<request digest>``, then ``-2``, ``-3``, ...: the same request finds the same job."""
        digest = spec_hash(build_request(""), length=DIGEST_LENGTH)
        return [job_name(name_prefix, digest, attempt) for attempt in range(1, MAX_JOB_ATTEMPTS + 1)]

    def run_job(self, name_prefix: str, build_request: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """Find or start the analyzer job for this request, wait for it (or defer); return its description."""
        job = self.hook.find_or_start_processing_job(self.attempt_names(name_prefix, build_request), build_request)
        if job["ProcessingJobStatus"] == "Completed":
            return job
        name = job["ProcessingJobName"]
        if self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(job_name=name, job_type="processing", **self.trigger_arguments()),
                method_name="execute_complete",
            )
        return self.hook.wait_for_processing_job(name, self.waiter_delay, self.waiter_max_attempts)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the deferred wait: a failed job fails the task; else run again (it finds the job done)."""
        event = validate_execute_complete_event(event)
        if event.get("status") != "success":
            job = self.hook.describe_or_none("processing_job", event.get("job_name", "")) or {}
            reason = job.get("FailureReason") or event.get("message") or event
            raise ProcessingJobFailed(f"Processing job {event.get('job_name')} ended "
                                      f"{job.get('ProcessingJobStatus', event.get('status'))}: {reason}")
        self.resumed_job_name = event.get("job_name")
        return self.execute(context)
