"""Processing jobs: pure state and the API's rules. Running them is the processing controller's work."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sagemaker_emulator.sagemaker.errors import AwsError, ValidationException
from sagemaker_emulator.sagemaker.listing import page_results
from sagemaker_emulator.sagemaker.tags import tag_dict
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
    spec: dict[str, Any]
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
        out = {**copy.deepcopy(self.spec), "ProcessingJobArn": self.arn, "ProcessingJobStatus": self.status,
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

    def create_processing_job(self, params: dict[str, Any], schedule_arn: str | None = None,
                              input_filters: dict[str, Callable[[str], bool]] | None = None) -> dict[str, Any]:
        name = params["ProcessingJobName"]
        if name.lower() in self.jobs:
            raise AwsError("ResourceInUse", "Processing job names must be unique within an AWS account and region, "
                                            f"and a processing job with this name already exists "
                                            f"({self._arn_for('processing-job', name)})")
        cluster = params["ProcessingResources"]["ClusterConfig"]
        if not cluster.get("InstanceType"):
            raise ValidationException("ProcessingResources.ClusterConfig.InstanceType is required, e.g. ml.m5.xlarge.")
        require_cataloged(cluster["InstanceType"],
                          "ProcessingResources.ClusterConfig")
        _check_io(params)
        job = ProcessingJob(name=name, arn=self._arn_for("processing-job", name),
                            spec={k: copy.deepcopy(v) for k, v in params.items() if k != "Tags"},
                            monitoring_schedule_arn=schedule_arn, input_filters=input_filters or {},
                            tags=tag_dict(params.get("Tags")))
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


def _check_io(params: dict[str, Any]) -> None:
    """Local paths must live under /opt/ml/processing and not collide, as the service requires."""
    paths = [i["S3Input"]["LocalPath"] for i in params.get("ProcessingInputs", []) if "S3Input" in i]
    paths += [o["S3Output"]["LocalPath"] for o in (params.get("ProcessingOutputConfig") or {}).get("Outputs", [])
              if "S3Output" in o]
    for path in paths:
        if not path.startswith("/opt/ml/processing/") or ".." in path.split("/"):
            raise ValidationException(f"LocalPath {path!r} must be an absolute path under /opt/ml/processing/, "
                                      "e.g. /opt/ml/processing/input/data.")
    if len(paths) != len(set(paths)):
        raise ValidationException(f"Each ProcessingInput and ProcessingOutput needs its own LocalPath: {paths}.")
    names = [i["InputName"] for i in params.get("ProcessingInputs", [])]
    if len(names) != len(set(names)):
        raise ValidationException(f"InputName values must be unique within a processing job: {names}.")
