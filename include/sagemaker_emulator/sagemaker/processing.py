"""Processing jobs: pure state and the API's rules. Running them is the processing controller's work."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sagemaker_emulator.sagemaker.errors import AwsError, ValidationException
from sagemaker_emulator.sagemaker.listing import page_results
from sagemaker_emulator.sagemaker.typed_requests import ProcessingJobRequest
from sagemaker_emulator.sagemaker.variants import require_cataloged


class JobStatus:
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


TERMINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED}


class JobRunner(Protocol):
    """Implemented by the processing controller: runs a job's container and reports back."""

    def start(self, job: "ProcessingJob") -> None: ...

    def stop(self, job: "ProcessingJob") -> None: ...


@dataclass
class ProcessingJob:
    name: str
    arn: str
    spec: ProcessingJobRequest
    status: str = JobStatus.IN_PROGRESS
    failure_reason: str | None = None
    exit_message: str | None = None
    monitoring_schedule_arn: str | None = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    # InputName -> which of its S3 keys to download (a monitoring execution wants its window's hours only).
    input_filters: dict[str, Callable[[str], bool]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def finish(self, status: str, *, failure_reason: str | None = None, exit_message: str | None = None) -> None:
        if self.status in TERMINAL:
            return  # a job stopped while its container was finishing keeps its first end
        self.status, self.failure_reason, self.exit_message = status, failure_reason, exit_message
        self.ended = self.modified = time.time()

    def describe(self) -> dict[str, Any]:
        out = {**self.spec.to_aws(), "ProcessingJobArn": self.arn, "ProcessingJobStatus": self.status,
               "CreationTime": self.created, "LastModifiedTime": self.modified}
        optional = {"FailureReason": self.failure_reason, "ExitMessage": self.exit_message,
                    "MonitoringScheduleArn": self.monitoring_schedule_arn,
                    "ProcessingStartTime": self.started, "ProcessingEndTime": self.ended}
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def summary(self) -> dict[str, Any]:
        described = self.describe()
        keys = ("ProcessingJobName", "ProcessingJobArn", "CreationTime", "ProcessingEndTime", "LastModifiedTime",
                "ProcessingJobStatus", "FailureReason", "ExitMessage")
        return {k: described[k] for k in keys if k in described}


class ProcessingJobs:
    """CreateProcessingJob, Describe, List, Stop for one account and region."""

    def __init__(self, arn_for, runner: JobRunner):
        self._arn_for = arn_for
        self.runner = runner
        self.jobs: dict[str, ProcessingJob] = {}

    def lookups(self) -> dict[str, Callable[[str], ProcessingJob]]:
        """ARN resource type -> lookup by name, for the tag operations."""
        return {"processing-job": self.get}

    def get(self, name: str) -> ProcessingJob:
        job = self.jobs.get(name.lower())
        if job is None:
            raise ValidationException(f"Could not find requested job with name {name}")
        return job

    def create_processing_job(self, request: ProcessingJobRequest, schedule_arn: str | None = None,
                              input_filters: dict[str, Callable[[str], bool]] | None = None) -> dict[str, Any]:
        name = request.processing_job_name
        if name.lower() in self.jobs:
            raise AwsError("ResourceInUse", "Processing job names must be unique within an AWS account and region, "
                                            f"and a processing job with this name already exists "
                                            f"({self._arn_for('processing-job', name)})")
        cluster = request.processing_resources.cluster_config
        if not cluster.instance_type:
            raise ValidationException("ProcessingResources.ClusterConfig.InstanceType is required, e.g. ml.m5.xlarge.")
        require_cataloged(cluster.instance_type, "ProcessingResources.ClusterConfig")
        _check_io(request)
        job = ProcessingJob(name=name, arn=self._arn_for("processing-job", name), spec=request,
                            monitoring_schedule_arn=schedule_arn, input_filters=input_filters or {},
                            tags=request.tags)
        self.jobs[name.lower()] = job
        self.runner.start(job)
        return {"ProcessingJobArn": job.arn}

    def describe_processing_job(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.get(params["ProcessingJobName"]).describe()

    def stop_processing_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.get(params["ProcessingJobName"])
        if job.status in TERMINAL:
            raise ValidationException(f"The job {job.name} has already completed with status {job.status}; "
                                      "only an InProgress job can be stopped.")
        if job.status == JobStatus.IN_PROGRESS:
            job.status, job.modified = JobStatus.STOPPING, time.time()
            self.runner.stop(job)
        return {}

    def list_processing_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [j.summary() for j in self.jobs.values()]
        page, token = page_results(rows, params, "ProcessingJobName", equal={"StatusEquals": "ProcessingJobStatus"})
        return {"ProcessingJobSummaries": page, **token}


def _check_io(request: ProcessingJobRequest) -> None:
    """Local paths must live under /opt/ml/processing and not collide, as the service requires."""
    paths = [i.s3_input.local_path for i in request.processing_inputs if i.s3_input]
    paths += [o.s3_output.local_path for o in request.outputs if o.s3_output]
    for path in paths:
        if not path or not path.startswith("/opt/ml/processing/") or ".." in path.split("/"):
            raise ValidationException(f"LocalPath {path!r} must be an absolute path under /opt/ml/processing/, "
                                      "e.g. /opt/ml/processing/input/data.")
    if len(paths) != len(set(paths)):
        raise ValidationException(f"Each ProcessingInput and ProcessingOutput needs its own LocalPath: {paths}.")
    names = [i.input_name for i in request.processing_inputs]
    if len(names) != len(set(names)):
        raise ValidationException(f"InputName values must be unique within a processing job: {names}.")
