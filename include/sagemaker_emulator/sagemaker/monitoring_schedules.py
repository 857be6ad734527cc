"""Model Monitor data quality: job definitions, monitoring schedules and their executions. Pure state.

An execution is a processing job that runs the analyzer image over the endpoint's captured data for
the execution's window (sagemaker-api.md §4.5); its status is read from that job. The monitoring
controller decides *when* a schedule fires and calls ``start_execution``.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sagemaker_emulator.sagemaker.errors import AwsError, ValidationException
from sagemaker_emulator.s3_uri import join_s3_uri
from sagemaker_emulator.sagemaker.listing import page_results
from sagemaker_emulator.sagemaker.tags import tag_dict
from sagemaker_emulator.sagemaker.typed_requests import ProcessingJobRequest
from sagemaker_emulator.sagemaker.processing import JobStatus, ProcessingJob, ProcessingJobs
from sagemaker_emulator.sagemaker.schedules import Schedule, analysis_window, parse_schedule, validate_window

DATA_QUALITY = "DataQuality"
CAPTURE_INDEXES = ["endpointInput", "endpointOutput"]
CAPTURE_INPUT = "endpoint_input"
BASELINE_ROOT = "/opt/ml/processing/baseline"
# The execution status a job's ExitMessage announces; the others share their names with job statuses.
COMPLETED_WITH_VIOLATIONS = "CompletedWithViolations"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class JobSpec:
    """What a data-quality job runs, whether declared by a job definition or inline in a schedule."""

    image: str
    environment: dict[str, str]
    endpoint_input: dict[str, Any]
    output: dict[str, Any]  # S3Output: S3Uri, LocalPath, S3UploadMode
    cluster: dict[str, Any]
    role_arn: str
    max_runtime: int
    statistics_uri: str | None
    constraints_uri: str | None
    app: dict[str, Any]

    @classmethod
    def from_definition(cls, params: dict[str, Any]) -> "JobSpec":
        app = params["DataQualityAppSpecification"]
        return cls._build(app, params["DataQualityJobInput"], params["DataQualityJobOutputConfig"],
                          params["JobResources"], params["RoleArn"], params.get("StoppingCondition"),
                          params.get("DataQualityBaselineConfig"))

    @classmethod
    def from_inline(cls, definition: dict[str, Any]) -> "JobSpec":
        inputs = definition["MonitoringInputs"]
        if len(inputs) != 1:
            raise ValidationException("MonitoringInputs must hold exactly one EndpointInput for DataQuality monitoring.")
        return cls._build(definition["MonitoringAppSpecification"], inputs[0], definition["MonitoringOutputConfig"],
                          definition["MonitoringResources"], definition["RoleArn"],
                          definition.get("StoppingCondition"), definition.get("BaselineConfig"),
                          definition.get("Environment"))

    @classmethod
    def _build(cls, app, job_input, output_config, resources, role_arn, stopping, baseline,
               environment=None) -> "JobSpec":
        if "EndpointInput" not in job_input:
            raise ValidationException("The emulator monitors endpoints: give DataQualityJobInput an EndpointInput "
                                      "(BatchTransformInput is not supported).")
        outputs = output_config["MonitoringOutputs"]
        baseline = baseline or {}
        return cls(image=app["ImageUri"], environment={**(environment or {}), **(app.get("Environment") or {})},
                   endpoint_input=copy.deepcopy(job_input["EndpointInput"]), output=copy.deepcopy(outputs[0]["S3Output"]),
                   cluster=copy.deepcopy(resources["ClusterConfig"]), role_arn=role_arn,
                   max_runtime=int((stopping or {}).get("MaxRuntimeInSeconds", 3600)),
                   statistics_uri=(baseline.get("StatisticsResource") or {}).get("S3Uri"),
                   constraints_uri=(baseline.get("ConstraintsResource") or {}).get("S3Uri"),
                   app=copy.deepcopy(app))

    @property
    def endpoint_name(self) -> str:
        return self.endpoint_input["EndpointName"]


@dataclass
class JobDefinition:
    name: str
    arn: str
    spec: dict[str, Any]
    created: float = field(default_factory=time.time)
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {**copy.deepcopy(self.spec), "JobDefinitionArn": self.arn, "CreationTime": self.created}


@dataclass
class Execution:
    schedule_name: str
    scheduled_time: float
    endpoint_name: str
    job: ProcessingJob
    definition_name: str | None
    created: float = field(default_factory=time.time)

    @property
    def status(self) -> str:
        if self.job.status == JobStatus.COMPLETED and (self.job.exit_message or "").startswith(COMPLETED_WITH_VIOLATIONS):
            return COMPLETED_WITH_VIOLATIONS
        return self.job.status

    def summary(self) -> dict[str, Any]:
        out = {"MonitoringScheduleName": self.schedule_name, "ScheduledTime": self.scheduled_time,
               "CreationTime": self.created, "LastModifiedTime": self.job.modified,
               "MonitoringExecutionStatus": self.status, "ProcessingJobArn": self.job.arn,
               "EndpointName": self.endpoint_name, "MonitoringType": DATA_QUALITY}
        if self.job.failure_reason:
            out["FailureReason"] = self.job.failure_reason
        if self.definition_name:
            out["MonitoringJobDefinitionName"] = self.definition_name
        return out


@dataclass
class MonitoringSchedule:
    name: str
    arn: str
    config: dict[str, Any]
    schedule: Schedule
    status: str = "Scheduled"
    failure_reason: str | None = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    executions: list[Execution] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def definition_name(self) -> str | None:
        return self.config.get("MonitoringJobDefinitionName")

    def describe(self, endpoint_name: str) -> dict[str, Any]:
        out = {"MonitoringScheduleArn": self.arn, "MonitoringScheduleName": self.name,
               "MonitoringScheduleStatus": self.status, "MonitoringType": DATA_QUALITY,
               "CreationTime": self.created, "LastModifiedTime": self.modified,
               "MonitoringScheduleConfig": copy.deepcopy(self.config), "EndpointName": endpoint_name}
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.executions:
            out["LastMonitoringExecutionSummary"] = self.executions[-1].summary()
        return out


class Monitoring:
    """The data-quality half of the Model Monitor API for one account and region."""

    def __init__(self, arn_for: Callable[[str, str], str], processing: ProcessingJobs,
                 endpoint_capture: Callable[[str], dict[str, Any]]):
        self._arn_for = arn_for
        self.processing = processing
        # EndpointName -> its DescribeEndpoint DataCaptureConfig (raises if the endpoint does not exist)
        self._endpoint_capture = endpoint_capture
        self.definitions: dict[str, JobDefinition] = {}
        self.schedules: dict[str, MonitoringSchedule] = {}

    def lookups(self) -> dict[str, Callable[[str], Any]]:
        """ARN resource type -> lookup by name, for the tag operations."""
        return {"data-quality-job-definition": self._definition, "monitoring-schedule": self.get_schedule}

    # -- job definitions --------------------------------------------------------------------------

    def create_data_quality_job_definition(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["JobDefinitionName"]
        arn = self._arn_for("data-quality-job-definition", name)
        if name.lower() in self.definitions:
            raise AwsError("ResourceInUse", f'Job definition "{arn}" already exists.')
        spec = {k: copy.deepcopy(v) for k, v in params.items() if k != "Tags"}
        JobSpec.from_definition(spec)
        self.definitions[name.lower()] = JobDefinition(name, arn, spec, tags=tag_dict(params.get("Tags")))
        return {"JobDefinitionArn": arn}

    def _definition(self, name: str) -> JobDefinition:
        definition = self.definitions.get(name.lower())
        if definition is None:
            raise AwsError("ResourceNotFound",
                           f'Could not find job definition "{self._arn_for("data-quality-job-definition", name)}".')
        return definition

    def describe_data_quality_job_definition(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._definition(params["JobDefinitionName"]).describe()

    def delete_data_quality_job_definition(self, params: dict[str, Any]) -> dict[str, Any]:
        definition = self._definition(params["JobDefinitionName"])
        users = sorted(s.name for s in self.schedules.values() if (s.definition_name or "").lower() == definition.name.lower())
        if users:
            raise AwsError("ResourceInUse", f'Job definition "{definition.arn}" is used by monitoring schedule(s) '
                                            f"{', '.join(users)}: delete them or point them at another definition first.")
        del self.definitions[definition.name.lower()]
        return {}

    def list_data_quality_job_definitions(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [{"MonitoringJobDefinitionName": d.name, "MonitoringJobDefinitionArn": d.arn, "CreationTime": d.created,
                 "EndpointName": JobSpec.from_definition(d.spec).endpoint_name} for d in self.definitions.values()]
        page, token = page_results(rows, params, "MonitoringJobDefinitionName", equal={"EndpointName": "EndpointName"})
        return {"JobDefinitionSummaries": page, **token}

    # -- schedules --------------------------------------------------------------------------------

    def create_monitoring_schedule(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["MonitoringScheduleName"]
        arn = self._arn_for("monitoring-schedule", name)
        if name.lower() in self.schedules:
            raise AwsError("ResourceInUse", f'Monitoring schedule "{arn}" already exists.')
        config = copy.deepcopy(params["MonitoringScheduleConfig"])
        schedule = MonitoringSchedule(name, arn, config, self._validate_config(config),
                                      tags=tag_dict(params.get("Tags")))
        self.schedules[name.lower()] = schedule
        return {"MonitoringScheduleArn": arn}

    def update_monitoring_schedule(self, params: dict[str, Any]) -> dict[str, Any]:
        schedule = self.get_schedule(params["MonitoringScheduleName"])
        config = copy.deepcopy(params["MonitoringScheduleConfig"])
        schedule.schedule = self._validate_config(config)
        schedule.config, schedule.modified = config, time.time()
        return {"MonitoringScheduleArn": schedule.arn}

    def get_schedule(self, name: str) -> MonitoringSchedule:
        schedule = self.schedules.get(name.lower())
        if schedule is None:
            raise AwsError("ResourceNotFound",
                           f'Could not find monitoring schedule "{self._arn_for("monitoring-schedule", name)}".')
        return schedule

    def describe_monitoring_schedule(self, params: dict[str, Any]) -> dict[str, Any]:
        schedule = self.get_schedule(params["MonitoringScheduleName"])
        return schedule.describe(self.job_spec(schedule).endpoint_name)

    def delete_monitoring_schedule(self, params: dict[str, Any]) -> dict[str, Any]:
        schedule = self.get_schedule(params["MonitoringScheduleName"])
        del self.schedules[schedule.name.lower()]
        return {}

    def stop_monitoring_schedule(self, params: dict[str, Any]) -> dict[str, Any]:
        schedule = self.get_schedule(params["MonitoringScheduleName"])
        schedule.status, schedule.modified = "Stopped", time.time()
        return {}

    def start_monitoring_schedule(self, params: dict[str, Any]) -> dict[str, Any]:
        schedule = self.get_schedule(params["MonitoringScheduleName"])
        schedule.status, schedule.modified = "Scheduled", time.time()
        return {}

    def list_monitoring_schedules(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for schedule in self.schedules.values():
            row = {"MonitoringScheduleName": schedule.name, "MonitoringScheduleArn": schedule.arn,
                   "CreationTime": schedule.created, "LastModifiedTime": schedule.modified,
                   "MonitoringScheduleStatus": schedule.status, "MonitoringType": DATA_QUALITY,
                   "EndpointName": self.job_spec(schedule).endpoint_name}
            if schedule.definition_name:
                row["MonitoringJobDefinitionName"] = schedule.definition_name
            rows.append(row)
        page, token = page_results(rows, params, "MonitoringScheduleName", equal={
            "EndpointName": "EndpointName", "StatusEquals": "MonitoringScheduleStatus",
            "MonitoringJobDefinitionName": "MonitoringJobDefinitionName", "MonitoringTypeEquals": "MonitoringType"})
        return {"MonitoringScheduleSummaries": page, **token}

    def list_monitoring_executions(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [e.summary() for s in self.schedules.values() for e in s.executions]
        page, token = page_results(rows, params, "MonitoringScheduleName", page_size=10, equal={
            "MonitoringScheduleName": "MonitoringScheduleName", "EndpointName": "EndpointName",
            "StatusEquals": "MonitoringExecutionStatus", "MonitoringJobDefinitionName": "MonitoringJobDefinitionName",
            "MonitoringTypeEquals": "MonitoringType"})
        return {"MonitoringExecutionSummaries": page, **token}

    def job_spec(self, schedule: MonitoringSchedule) -> JobSpec:
        if schedule.definition_name:
            return JobSpec.from_definition(self._definition(schedule.definition_name).spec)
        return JobSpec.from_inline(schedule.config["MonitoringJobDefinition"])

    def _validate_config(self, config: dict[str, Any]) -> Schedule:
        monitoring_type = config.get("MonitoringType", DATA_QUALITY)
        if monitoring_type != DATA_QUALITY:
            raise ValidationException(f"MonitoringType {monitoring_type} is not supported by the emulator; "
                                      "it runs DataQuality monitoring.")
        if bool(config.get("MonitoringJobDefinitionName")) == bool(config.get("MonitoringJobDefinition")):
            raise ValidationException("Exactly one of MonitoringJobDefinitionName and MonitoringJobDefinition must "
                                      "be given in MonitoringScheduleConfig.")
        if config.get("MonitoringJobDefinitionName") and "MonitoringType" not in config:
            raise ValidationException("MonitoringType is required when MonitoringJobDefinitionName is given.")
        schedule_config = config.get("ScheduleConfig")
        if not schedule_config:
            raise ValidationException("MonitoringScheduleConfig.ScheduleConfig.ScheduleExpression is required, e.g. "
                                      "cron(0 * ? * * *) for hourly runs.")
        schedule = parse_schedule(schedule_config["ScheduleExpression"])
        start, end = schedule_config.get("DataAnalysisStartTime"), schedule_config.get("DataAnalysisEndTime")
        if schedule.one_time and (start is None or end is None):
            raise ValidationException("DataAnalysisStartTime and DataAnalysisEndTime are required when "
                                      "ScheduleExpression is NOW, e.g. -PT1H and -PT0H.")
        if (start is None) != (end is None):
            raise ValidationException("Give both DataAnalysisStartTime and DataAnalysisEndTime, or neither.")
        if start is not None:
            validate_window(start, end)
        spec = (JobSpec.from_definition(self._definition(config["MonitoringJobDefinitionName"]).spec)
                if config.get("MonitoringJobDefinitionName") else JobSpec.from_inline(config["MonitoringJobDefinition"]))
        self._check_endpoint(spec.endpoint_name)
        budget = int(schedule.period.total_seconds())
        if not schedule.one_time and spec.max_runtime > budget:
            raise ValidationException(f"MaxRuntimeInSeconds {spec.max_runtime} cannot exceed the frequency of the "
                                      f"schedule {schedule.expression}: at most {budget} seconds.")
        return schedule

    def _check_endpoint(self, endpoint_name: str) -> None:
        capture = self._endpoint_capture(endpoint_name)
        if not capture or not capture.get("EnableCapture"):
            raise ValidationException(f"Endpoint {endpoint_name} does not capture data: enable DataCaptureConfig "
                                      "in its endpoint configuration before monitoring it.")

    # -- executions (called by the monitoring controller) -----------------------------------------

    def start_execution(self, schedule: MonitoringSchedule, scheduled_time: datetime) -> Execution:
        spec = self.job_spec(schedule)
        capture = self._endpoint_capture(spec.endpoint_name)
        config = schedule.config["ScheduleConfig"]
        start, end = analysis_window(schedule.schedule, scheduled_time, config.get("DataAnalysisStartTime"),
                                     config.get("DataAnalysisEndTime"))
        request = execution_job_request(schedule, spec, capture["DestinationS3Uri"], scheduled_time, start, end)
        self.processing.create_processing_job(ProcessingJobRequest.from_aws(request), schedule_arn=schedule.arn,
                                              input_filters={CAPTURE_INPUT: hour_filter(start, end)})
        job = self.processing.get(request["ProcessingJobName"])
        execution = Execution(schedule.name, scheduled_time.timestamp(), spec.endpoint_name, job,
                              schedule.definition_name)
        schedule.executions.append(execution)
        return execution


def execution_job_request(schedule: MonitoringSchedule, spec: JobSpec, capture_uri: str, scheduled_time: datetime,
                          start: datetime, end: datetime) -> dict[str, Any]:
    """The processing job AWS starts for one execution: the analyzer over the window's captured data."""
    endpoint = spec.endpoint_name
    capture_path = f"{spec.endpoint_input['LocalPath'].rstrip('/')}/{endpoint}"
    inputs = [{"InputName": CAPTURE_INPUT, "S3Input": {
        "S3Uri": join_s3_uri(capture_uri, endpoint), "LocalPath": capture_path,
        "S3DataType": "S3Prefix", "S3InputMode": "File"}}]
    environment = {
        "dataset_format": json.dumps({"sagemakerCaptureJson": {"captureIndexNames": CAPTURE_INDEXES}}),
        "dataset_source": capture_path,
        "output_path": spec.output["LocalPath"],
        "publish_cloudwatch_metrics": "Enabled",
        "sagemaker_endpoint_name": endpoint,
        "sagemaker_monitoring_schedule_name": schedule.name,
        "start_time": _iso(start),
        "end_time": _iso(end),
        "metric_time": _iso(scheduled_time),
    }
    for kind, uri, file_name in (("constraints", spec.constraints_uri, "constraints.json"),
                                 ("statistics", spec.statistics_uri, "statistics.json")):
        if uri:
            inputs.append({"InputName": kind, "S3Input": {
                "S3Uri": uri, "LocalPath": f"{BASELINE_ROOT}/{kind}", "S3DataType": "S3Prefix", "S3InputMode": "File"}})
            environment[f"baseline_{kind}"] = f"{BASELINE_ROOT}/{kind}/{uri.rstrip('/').rsplit('/', 1)[-1] or file_name}"
    environment.update(spec.environment)  # the user's Environment wins, as on AWS
    app = {"ImageUri": spec.image, **{k: v for k, v in spec.app.items()
                                      if k in ("ContainerEntrypoint", "ContainerArguments")}}
    report_prefix = join_s3_uri(spec.output["S3Uri"], endpoint, schedule.name, f"{scheduled_time:%Y/%m/%d/%H}")
    return {
        "ProcessingJobName": f"model-monitoring-{scheduled_time:%Y%m%d%H%M}-{uuid.uuid4().hex[:20]}",
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": report_prefix, "LocalPath": spec.output["LocalPath"],
            "S3UploadMode": spec.output.get("S3UploadMode", "EndOfJob")}}]},
        "ProcessingResources": {"ClusterConfig": spec.cluster},
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime},
        "AppSpecification": app,
        "Environment": environment,
        "RoleArn": spec.role_arn,
    }


def hour_filter(start: datetime, end: datetime) -> Callable[[str], bool]:
    """Keeps the capture objects whose yyyy/mm/dd/hh folder overlaps [start, end): the rest is not downloaded."""
    hours, moment = set(), start.replace(minute=0, second=0, microsecond=0)
    while moment < end:
        hours.add(moment.strftime("/%Y/%m/%d/%H/"))
        moment += timedelta(hours=1)
    return lambda key: any(hour in key for hour in hours)
