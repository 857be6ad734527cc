"""SageMaker control-plane hook: describe-or-None, processing jobs and this project's waiters."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.sdk.exceptions import AirflowException, AirflowFailException

WAITERS_FILE = Path(__file__).resolve().parents[1] / "waiters" / "sagemaker.json"
PROCESSING_JOB_FAILED_STATES = ("Failed", "Stopped")
# The Describe* call of each kind of resource, and the argument naming the resource.
DESCRIBE_CALLS = {
    "model": ("describe_model", "ModelName"),
    "endpoint_config": ("describe_endpoint_config", "EndpointConfigName"),
    "endpoint": ("describe_endpoint", "EndpointName"),
    "processing_job": ("describe_processing_job", "ProcessingJobName"),
    "monitoring_schedule": ("describe_monitoring_schedule", "MonitoringScheduleName"),
    "data_quality_job_definition": ("describe_data_quality_job_definition", "JobDefinitionName"),
    "inference_recommendations_job": ("describe_inference_recommendations_job", "JobName"),
}


def is_not_found(error: ClientError) -> bool:
    """SageMaker reports a missing model/config/endpoint as ValidationException "Could not find ...", and a
    missing processing job, job definition or monitoring schedule as ResourceNotFound."""
    details = error.response.get("Error", {})
    code = details.get("Code")
    return code == "ResourceNotFound" or (code == "ValidationException" and "Could not find" in
                                          details.get("Message", ""))


def is_already_exists(error: ClientError) -> bool:
    """CreateModel/CreateEndpointConfig/CreateEndpoint say "Cannot create already existing ..."; the
    processing and monitoring APIs answer ResourceInUse."""
    details = error.response.get("Error", {})
    return details.get("Code") == "ResourceInUse" or details.get("Message", "").startswith(
        "Cannot create already existing")


class ProcessingJobFailed(AirflowException):
    """A processing job ended Failed or Stopped (the message carries its FailureReason)."""


class ProcessingJobAttemptsExhausted(AirflowFailException):
    """Every attempt name of a processing job is taken by a failed job (another retry cannot help)."""


class SageMakerOpsHook(SageMakerHook):
    """
    Interact with Amazon SageMaker; thick wrapper around ``boto3.client("sagemaker")``.

    Extends the provider's :class:`~airflow.providers.amazon.aws.hooks.sagemaker.SageMakerHook` with
    one describe-or-None for every resource kind, DeleteEndpoint, processing jobs found by name before one is started,
    and the custom waiters in ``sagemaker_ops/waiters/sagemaker.json`` (``EndpointSettled``,
    ``EndpointDeletionComplete``, ``MonitoringScheduleSettled``). That file replaces the provider's
    custom SageMaker waiters for this hook; boto's official waiters (``endpoint_in_service``,
    ``processing_job_completed_or_stopped``, ...) stay available.
    """

    @cached_property
    def waiter_path(self) -> os.PathLike[str] | None:
        return WAITERS_FILE

    # -- describe or None -------------------------------------------------------------------------

    def describe_or_none(self, kind: str, name: str) -> dict[str, Any] | None:
        """Describe the ``kind`` resource (a key of :data:`DESCRIBE_CALLS`) called ``name``; None when
        SageMaker says it does not exist."""
        method, name_argument = DESCRIBE_CALLS[kind]
        try:
            response = getattr(self.conn, method)(**{name_argument: name})
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        response.pop("ResponseMetadata", None)
        return response

    def delete_endpoint(self, endpoint_name: str) -> None:
        """Delete an endpoint (the only call AWS accepts on a ``Failed`` endpoint)."""
        self.conn.delete_endpoint(EndpointName=endpoint_name)

    def wait_with_logging(self, waiter_name: str, args: dict[str, str], what: str, status_args: list[str],
                          waiter_delay: int, waiter_max_attempts: int) -> None:
        """Wait with ``waiter_name``, logging ``status_args`` of each look; AirflowException when it gives up."""
        wait(
            waiter=self.get_waiter(waiter_name),
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            args=args,
            failure_message=f"{waiter_name} failed for {what}",
            status_message=f"Status of {what}",
            status_args=status_args,
        )

    # -- processing jobs --------------------------------------------------------------------------

    def find_or_start_processing_job(self, attempt_names: Sequence[str],
                                     build_request: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """
        The first of ``attempt_names`` that is running or completed, else start the first unused one.

        A job that already ended Failed/Stopped belongs to an earlier try: the next name is used.
        Returns the job's description (it may still be running).
        """
        for name in attempt_names:
            job = self.describe_or_none("processing_job", name)
            if job is None:
                return self.start_processing_job(build_request(name))
            if job["ProcessingJobStatus"] not in PROCESSING_JOB_FAILED_STATES:
                return job
            self.log.warning("Processing job %s of an earlier try ended %s (%s); starting another.", name,
                             job["ProcessingJobStatus"], job.get("FailureReason") or "no FailureReason")
        raise ProcessingJobAttemptsExhausted(f"Processing jobs {', '.join(attempt_names)} all failed; see the "
                                             "FailureReason of each attempt above.")

    def completed_processing_job_name(self, attempt_names: Sequence[str]) -> str | None:
        """The attempt that completed, if one did (None if the results came from elsewhere)."""
        for name in attempt_names:
            job = self.describe_or_none("processing_job", name)
            if job is None:
                return None
            if job["ProcessingJobStatus"] == "Completed":
                return name
        return None

    def start_processing_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """CreateProcessingJob; a job of that name started concurrently is taken as this one."""
        name = request["ProcessingJobName"]
        self.log.info("Starting processing job %s (%s)", name, request["AppSpecification"]["ImageUri"])
        try:
            self.conn.create_processing_job(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUse":
                raise
            self.log.info("Processing job %s was started concurrently; waiting for it.", name)
        return self.conn.describe_processing_job(ProcessingJobName=name)

    def wait_for_processing_job(self, name: str, waiter_delay: int, waiter_max_attempts: int) -> dict[str, Any]:
        """Wait with boto's ``ProcessingJobCompletedOrStopped``; a job that ends Failed/Stopped raises."""
        try:
            self.wait_with_logging("processing_job_completed_or_stopped", {"ProcessingJobName": name},
                                   f"processing job {name}", ["ProcessingJobStatus"], waiter_delay, waiter_max_attempts)
        except AirflowException as error:
            job = self.describe_or_none("processing_job", name) or {}
            if job.get("ProcessingJobStatus") not in PROCESSING_JOB_FAILED_STATES:
                raise ProcessingJobFailed(f"Gave up waiting for processing job {name}: {error}") from error
        return self.judge_processing_job(self.conn.describe_processing_job(ProcessingJobName=name))

    @staticmethod
    def judge_processing_job(job: dict[str, Any]) -> dict[str, Any]:
        """The job, if it did not end Failed/Stopped; else raise with its FailureReason."""
        status = job["ProcessingJobStatus"]
        if status in PROCESSING_JOB_FAILED_STATES:
            raise ProcessingJobFailed(f"Processing job {job['ProcessingJobName']} ended {status}: "
                                      f"{job.get('FailureReason') or 'no FailureReason given'}")
        return job

    # -- monitoring schedules ---------------------------------------------------------------------

    def wait_for_monitoring_schedule(self, name: str, waiter_delay: int, waiter_max_attempts: int) -> dict[str, Any]:
        """Wait while the schedule is Pending (``MonitoringScheduleSettled``); a Failed one raises with its reason."""
        try:
            self.wait_with_logging("MonitoringScheduleSettled", {"MonitoringScheduleName": name},
                                   f"monitoring schedule {name}", ["MonitoringScheduleStatus", "FailureReason"],
                                   waiter_delay, waiter_max_attempts)
        except AirflowException as error:
            schedule = self.describe_or_none("monitoring_schedule", name)
            if schedule is None:
                raise AirflowException(f"Monitoring schedule {name} disappeared while being set up.") from error
            if schedule["MonitoringScheduleStatus"] == "Failed":
                raise AirflowException(f"Monitoring schedule {name} is Failed: "
                                       f"{schedule.get('FailureReason') or 'no FailureReason given'}") from error
            raise
        return self.describe_or_none("monitoring_schedule", name)
