"""Model Monitor data quality from Airflow: baselines, monitoring schedules, checks, execution reports.

Every operator converges on a re-run. Files in S3 are content-addressed (a re-run uploads
nothing), processing jobs are named after what they compute (a retry finds the job it started
instead of failing with "already exists"), and monitoring job definitions are named after their
spec (a changed spec is a new definition and an UpdateMonitoringSchedule, never a duplicate).

The analyzer (``data_quality``) is imported inside ``execute()``: it brings pyarrow and numpy.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook, is_not_found
from sagemaker_ops.monitoring import (
    BASELINE_DATASET_PATH,
    BASELINE_FILES_PATH,
    CAPTURE_DATASET_FORMAT,
    CONSTRAINTS_FILE,
    DATASET_FORMATS,
    ENDPOINT_INPUT_PATH,
    MAX_PROCESSING_INPUTS,
    STATISTICS_FILE,
    VIOLATIONS_FILE,
    MonitoringSpecError,
    analyzer_environment,
    analyzer_image_uri,
    capture_hours,
    check_window,
    data_quality_job_definition,
    dataset_format,
    iso,
    job_name,
    parse_time,
    prepare_dataset,
    processing_job_request,
    s3_input,
    s3_join,
    schedule_config,
    violation_summary,
    violations_table,
    window_id,
)
from sagemaker_ops.specs import check_resource_name, derive_name, spec_differences, spec_hash
from sagemaker_rules.monitor_schedule import (
    ScheduleRuleError,
    check_max_runtime,
    check_schedule_window,
    parse_schedule,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

POLICIES = ("fail", "warn", "ignore")
MODES = ("local", "processing")
JOB_FAILED_STATES = ("Failed", "Stopped")
# A retry after a failed processing job starts the next attempt (<name>-2, -3, ...), at most this many.
MAX_JOB_ATTEMPTS = 5
# Keep XCom small: a window with many violations lists the first ones and counts the rest.
MAX_VIOLATIONS_RETURNED = 100
MAX_UNPARSEABLE_SAMPLES = 5
PUT_METRIC_DATA_BATCH = 1000  # CloudWatch PutMetricData accepts up to 1000 metrics per call
REPORT_FILE = "drift_report.html"
# Processing-job names carry this many hex digits of their request's hash.
DIGEST_LENGTH = 12


class DataQualityViolations(AirflowFailException):
    """The captured data violates the baseline's constraints (retrying the same window cannot help)."""


class ProcessingJobFailed(AirflowException):
    """The analyzer's processing job ended Failed or Stopped."""


def apply_policy(result: Mapping[str, Any], policy: str, log: Any) -> None:
    """``fail``: raise listing the violations; ``warn``: log them as a warning; ``ignore``: just count them."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}.")
    violations = list(result.get("violations") or [])
    count = int(result.get("violation_count", len(violations)))
    where = f"endpoint {result.get('endpoint_name')}, window {result.get('window_start')} .. {result.get('window_end')}"
    if result.get("unparseable_records"):
        log.warning("%d captured record(s) could not be parsed (%s); samples: %s", result["unparseable_records"],
                    where, result.get("unparseable_samples"))
    if not count:
        log.info("No data-quality violations (%s, %s records).", where, result.get("records"))
        return
    table = violations_table(violations)
    if policy == "fail":
        raise DataQualityViolations(f"{count} data-quality violation(s) ({where}):\n{table}")
    if policy == "warn":
        log.warning("%d data-quality violation(s) (%s):\n%s", count, where, table)
    else:
        log.info("%d data-quality violation(s) (%s); policy ignore: not failing.", count, where)


def _check_choice(field: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(choices)}, got {value!r}.")


def _check_s3_uri(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.startswith("s3://") or len(value) <= len("s3://"):
        raise ValueError(f"{field} must be an s3:// URI, got {value!r}.")


def _check_positive(field: str, value: Any, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (maximum and value > maximum):
        bound = f"from 1 to {maximum}" if maximum else ">= 1"
        raise ValueError(f"{field} must be an integer {bound}, got {value!r}.")


class _ModelMonitorOperator(AwsBaseOperator[SageMakerOpsHook]):
    """S3 files, processing jobs and their waits, shared by the Model Monitor operators."""

    aws_hook_class = SageMakerOpsHook
    ui_color = "#d1c4e9"
    waiter_delay: int = 30
    waiter_max_attempts: int = 120
    deferrable: bool = False
    resumed_job_name: str | None = None  # set when execute() runs again after a deferred wait

    @cached_property
    def s3(self) -> S3Hook:
        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify,
                      config=self.botocore_config)

    @property
    def region(self) -> str:
        return self.region_name or self.hook.conn_region_name

    # -- S3 -------------------------------------------------------------------------------------

    def _exists(self, uri: str) -> bool:
        bucket, key = S3Hook.parse_s3_url(uri)
        return self.s3.head_object(key=key, bucket_name=bucket) is not None

    def _read_json(self, uri: str) -> Any:
        bucket, key = S3Hook.parse_s3_url(uri)
        return json.loads(self.s3.read_key(key=key, bucket_name=bucket))

    def _read_json_or_none(self, uri: str) -> Any:
        return self._read_json(uri) if self._exists(uri) else None

    def _upload(self, path: Path, uri: str, content_type: str = "application/json") -> None:
        bucket, key = S3Hook.parse_s3_url(uri)
        self.s3.get_conn().upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})

    def _download(self, uri: str, path: Path) -> Path:
        bucket, key = S3Hook.parse_s3_url(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.s3.get_conn().download_file(bucket, key, str(path))
        return path

    def _upload_unless_present(self, path: Path, uri: str, sha256: str) -> bool:
        bucket, key = S3Hook.parse_s3_url(uri)
        existing = self.s3.head_object(key=key, bucket_name=bucket)
        if existing is not None and existing.get("Metadata", {}).get("sha256") == sha256:
            self.log.info("%s already holds this dataset; nothing to upload.", uri)
            return False
        self.log.info("Uploading %s to %s", path.name, uri)
        self.s3.get_conn().upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}})
        return True

    # -- processing jobs ------------------------------------------------------------------------

    def _check_waiter_arguments(self) -> None:
        _check_positive("waiter_delay", self.waiter_delay)
        _check_positive("waiter_max_attempts", self.waiter_max_attempts)

    def _describe_job_or_none(self, name: str) -> dict[str, Any] | None:
        try:
            return self.hook.describe_processing_job(name)
        except ClientError as error:
            if is_not_found(error):
                return None
            raise

    @staticmethod
    def _request_digest(build_request: Callable[[str], dict[str, Any]]) -> str:
        """Names the job after everything it is asked to do: the same request finds the same job."""
        return spec_hash(build_request(""), length=DIGEST_LENGTH)

    def _run_job(self, name_prefix: str, build_request: Callable[[str], dict[str, Any]]) -> dict:
        """
        Find or start the analyzer job ``<prefix>-<request digest>`` and wait for it; return its description.

        A job of that name that already ended Failed/Stopped belongs to an earlier try: the next
        attempt gets the next name (``-2``, ``-3``, ...). A job that fails now fails the task with
        its FailureReason.
        """
        digest = self._request_digest(build_request)
        for attempt in range(1, MAX_JOB_ATTEMPTS + 1):
            name = job_name(name_prefix, digest, attempt)
            job = self._describe_job_or_none(name)
            if job is not None and job["ProcessingJobStatus"] in JOB_FAILED_STATES:
                self.log.warning("Processing job %s of an earlier try ended %s (%s); starting another.", name,
                                 job["ProcessingJobStatus"], job.get("FailureReason") or "no FailureReason")
                continue
            if job is None:
                job = self._create_job(build_request(name))
            if job["ProcessingJobStatus"] != "Completed":
                job = self._wait_for_job(name)
            return job
        raise AirflowFailException(f"Processing job {name_prefix}-{digest} failed {MAX_JOB_ATTEMPTS} times; "
                                   "see the FailureReason of each attempt above.")

    def _completed_job_name(self, name_prefix: str, digest: str) -> str | None:
        """The attempt that completed, if a job computed these results (None if they came from elsewhere)."""
        for attempt in range(1, MAX_JOB_ATTEMPTS + 1):
            job = self._describe_job_or_none(job_name(name_prefix, digest, attempt))
            if job is None:
                return None
            if job["ProcessingJobStatus"] == "Completed":
                return job["ProcessingJobName"]
        return None

    def _create_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ProcessingJobName"]
        self.log.info("Starting processing job %s (%s)", name, request["AppSpecification"]["ImageUri"])
        try:
            self.hook.conn.create_processing_job(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUse":
                raise
            self.log.info("Processing job %s was started concurrently; waiting for it.", name)
        return self.hook.describe_processing_job(name)

    def _wait_for_job(self, name: str) -> dict[str, Any]:
        if self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(job_name=name, job_type="processing", waiter_delay=self.waiter_delay,
                                         waiter_max_attempts=self.waiter_max_attempts, aws_conn_id=self.aws_conn_id,
                                         region_name=self.region_name, verify=self.verify,
                                         botocore_config=self.botocore_config),
                method_name="execute_complete",
            )
        try:
            wait(
                waiter=self.hook.get_waiter("processing_job_completed_or_stopped"),
                waiter_delay=self.waiter_delay,
                waiter_max_attempts=self.waiter_max_attempts,
                args={"ProcessingJobName": name},
                failure_message=f"Processing job {name} failed",
                status_message=f"Status of processing job {name}",
                status_args=["ProcessingJobStatus"],
            )
        except AirflowException as error:
            job = self._describe_job_or_none(name) or {}
            if job.get("ProcessingJobStatus") not in JOB_FAILED_STATES:
                raise ProcessingJobFailed(f"Gave up waiting for processing job {name}: {error}") from error
        return self._judge_job(self.hook.describe_processing_job(name))

    @staticmethod
    def _judge_job(job: dict[str, Any]) -> dict[str, Any]:
        status = job["ProcessingJobStatus"]
        if status in JOB_FAILED_STATES:
            raise ProcessingJobFailed(f"Processing job {job['ProcessingJobName']} ended {status}: "
                                      f"{job.get('FailureReason') or 'no FailureReason given'}")
        return job

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the deferred wait: a failed job fails the task; else run again (it finds the job done)."""
        event = validate_execute_complete_event(event)
        if event.get("status") != "success":
            job = self._describe_job_or_none(event.get("job_name", "")) or {}
            reason = job.get("FailureReason") or event.get("message") or event
            raise ProcessingJobFailed(f"Processing job {event.get('job_name')} ended "
                                      f"{job.get('ProcessingJobStatus', event.get('status'))}: {reason}")
        self.resumed_job_name = event.get("job_name")
        return self.execute(context)

    def _job_output_uri(self, job: Mapping[str, Any]) -> str:
        return job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]


class _AnalyzerJobOperator(_ModelMonitorOperator):
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

    def __init__(
        self,
        *,
        mode: str = "local",
        role_arn: str | None = None,
        instance_type: str = "ml.m5.xlarge",
        max_runtime_seconds: int = 3600,
        image_uri: str | None = None,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 120,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.mode = mode
        self.role_arn = role_arn
        self.instance_type = instance_type
        self.max_runtime_seconds = max_runtime_seconds
        self.image_uri = image_uri
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.deferrable = deferrable


class CreateDataQualityBaselineOperator(_AnalyzerJobOperator):
    """
    Profile a training dataset as a Model Monitor data-quality baseline: ``statistics.json`` and
    ``constraints.json`` in S3.

    The dataset is copied without ``exclude_columns`` (the label: requests do not carry it) and
    uploaded content-addressed to ``<output_s3_uri>/<digest>/dataset/``, where ``<digest>`` hashes
    the prepared bytes and the dataset format. The baseline files go to
    ``<output_s3_uri>/<digest>/``; a re-run with the same data finds them and does nothing.

    ``mode="local"`` runs the analyzer (``data_quality.suggest_baseline``) in the task;
    ``mode="processing"`` runs a SageMaker processing job with the region's
    ``sagemaker-model-monitor-analyzer`` image, as ``DefaultModelMonitor.suggest_baseline`` does,
    named ``<job_name_prefix>-<digest>`` so that a retry finds it. Both write the same files.

    Returns ``{"statistics_s3_uri", "constraints_s3_uri", "dataset_s3_uri", "digest", "mode",
    "job_name", "computed", "uploaded", "item_count", "features"}``.

    :param dataset: the dataset file on the worker (CSV, JSON Lines or Parquet).
    :param output_s3_uri: where the baseline is written (under ``<digest>/``).
    :param dataset_format: ``csv``, ``json`` (JSON Lines) or ``parquet``.
    :param header: whether the CSV's first line names the columns.
    :param exclude_columns: columns left out of the baseline, e.g. ``["species"]``.
    :param mode: ``local`` or ``processing``.
    :param role_arn: the processing job's execution role (``processing`` mode).
    :param instance_type: the processing job's instance type.
    :param max_runtime_seconds: the processing job's StoppingCondition.
    :param image_uri: the analyzer image; default: the region's ``sagemaker-model-monitor-analyzer``.
    :param job_name_prefix: the processing job is ``<prefix>-<digest>``.
    :param waiter_delay: seconds between two DescribeProcessingJob calls.
    :param waiter_max_attempts: how many DescribeProcessingJob calls before giving up.
    :param deferrable: wait for the processing job in the triggerer.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "dataset", "output_s3_uri", "exclude_columns", "role_arn", "image_uri", "job_name_prefix")
    template_fields_renderers: ClassVar[dict] = {"exclude_columns": "json"}

    def __init__(
        self,
        *,
        dataset: str,
        output_s3_uri: str,
        dataset_format: str = "csv",
        header: bool = True,
        exclude_columns: Sequence[str] = (),
        job_name_prefix: str = "baseline",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.output_s3_uri = output_s3_uri
        self.dataset_format = dataset_format
        self.header = header
        self.exclude_columns = exclude_columns
        self.job_name_prefix = job_name_prefix

    def _validate(self) -> None:
        if not isinstance(self.dataset, str | Path) or not Path(self.dataset).is_file():
            raise ValueError(f"dataset must be a file on this worker, got {self.dataset!r}.")
        _check_s3_uri("output_s3_uri", self.output_s3_uri)
        _check_choice("dataset_format", self.dataset_format, DATASET_FORMATS)
        _check_choice("mode", self.mode, MODES)
        if not isinstance(self.exclude_columns, list | tuple) or not all(
                isinstance(name, str) for name in self.exclude_columns):
            raise ValueError(f"exclude_columns must be a list of column names, got {self.exclude_columns!r}.")
        if self.mode == "processing":
            if not self.role_arn:
                raise ValueError("role_arn is required with mode='processing' (the processing job's role).")
            _check_positive("max_runtime_seconds", self.max_runtime_seconds, 86400)
            self._check_waiter_arguments()
        check_resource_name("job_name_prefix", self.job_name_prefix)

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        data_format = dataset_format(self.dataset_format, self.header)
        with tempfile.TemporaryDirectory(prefix="baseline-") as workdir:
            try:
                prepared = prepare_dataset(Path(self.dataset), self.dataset_format, self.header,
                                           tuple(self.exclude_columns), Path(workdir))
            except MonitoringSpecError as error:
                raise ValueError(str(error)) from error
            digest = spec_hash([prepared.sha256, data_format], length=DIGEST_LENGTH)
            prefix = s3_join(self.output_s3_uri, digest)
            dataset_uri = s3_join(prefix, "dataset", prepared.path.name)
            statistics_uri, constraints_uri = s3_join(prefix, STATISTICS_FILE), s3_join(prefix, CONSTRAINTS_FILE)
            uploaded = self._upload_unless_present(prepared.path, dataset_uri, prepared.sha256)
            build_request = partial(self._baseline_job, data_format=data_format, prefix=prefix,
                                    dataset_uri=dataset_uri)
            name = None
            computed = not (self._exists(statistics_uri) and self._exists(constraints_uri))
            if self.resumed_job_name:  # back from the deferred wait: this task's job wrote the files
                computed, name = True, self.resumed_job_name
            elif not computed:
                self.log.info("The baseline of this dataset is already in %s; nothing to compute.", prefix)
                if self.mode == "processing":
                    name = self._completed_job_name(self.job_name_prefix, self._request_digest(build_request))
            elif self.mode == "local":
                self._suggest_locally(prepared.path, data_format, Path(workdir) / "baseline", prefix)
            else:
                name = self._run_job(self.job_name_prefix, build_request)["ProcessingJobName"]
        statistics = self._read_json(statistics_uri)
        features = [feature["name"] for feature in statistics.get("features", [])]
        self.log.info("Baseline of %d rows x %d features: %s", statistics.get("dataset", {}).get("item_count", 0),
                      len(features), statistics_uri)
        return {
            "statistics_s3_uri": statistics_uri,
            "constraints_s3_uri": constraints_uri,
            "dataset_s3_uri": dataset_uri,
            "digest": digest,
            "mode": self.mode,
            "job_name": name,
            "computed": computed,
            "uploaded": uploaded,
            "item_count": int(statistics.get("dataset", {}).get("item_count", prepared.rows)),
            "features": features,
        }

    def _suggest_locally(self, dataset: Path, data_format: dict, out_dir: Path, prefix: str) -> None:
        from data_quality import DataQualityError, suggest_baseline

        try:
            suggest_baseline(dataset, data_format, out_dir)
        except DataQualityError as error:
            raise AirflowFailException(f"The analyzer refused the dataset {self.dataset}: {error}") from error
        # constraints last: its presence means the baseline is complete.
        for file_name in (STATISTICS_FILE, CONSTRAINTS_FILE):
            self._upload(out_dir / file_name, s3_join(prefix, file_name))

    def _baseline_job(self, name: str, data_format: dict, prefix: str, dataset_uri: str) -> dict[str, Any]:
        return processing_job_request(
            name=name,
            image_uri=self.image_uri or analyzer_image_uri(self.region),
            environment=analyzer_environment(data_format, BASELINE_DATASET_PATH, publish_metrics=False),
            inputs=[s3_input("baseline_dataset_input", dataset_uri.rsplit("/", 1)[0], BASELINE_DATASET_PATH)],
            output_s3_uri=prefix,
            role_arn=self.role_arn,
            instance_type=self.instance_type,
            max_runtime_seconds=self.max_runtime_seconds,
        )


class EnsureMonitoringScheduleOperator(_ModelMonitorOperator):
    """
    Make a data-quality monitoring schedule check an endpoint against a baseline: create it, update
    it, or leave it alone.

    The data-quality job definition is named ``<schedule_name>-<spec hash>``: the same spec reuses
    it, a different one (a new baseline, instance type, ...) creates a new definition (they are
    immutable) and UpdateMonitoringSchedule points the schedule at it; the definition it replaced
    is then deleted. A schedule already on the wanted definition and expression is left alone.
    A ``Failed`` schedule fails the task with its FailureReason.

    Returns ``{"schedule_name", "schedule_arn", "schedule_status", "schedule_expression",
    "job_definition_name", "job_definition_arn", "actions_taken", "changed"}``.

    :param schedule_name: the monitoring schedule.
    :param endpoint_name: the endpoint (it must capture its requests).
    :param statistics_s3_uri: the baseline ``statistics.json``.
    :param constraints_s3_uri: the baseline ``constraints.json``.
    :param output_s3_uri: where executions write their reports
        (``<uri>/<endpoint>/<schedule>/yyyy/mm/dd/hh/``).
    :param role_arn: the role the monitoring jobs run with.
    :param schedule_expression: ``cron(0 * ? * * *)`` (hourly), ``cron(0 H ? * * *)``,
        ``cron(0 H/N ? * * *)`` or ``NOW`` (with the data analysis offsets).
    :param instance_type: the monitoring jobs' instance type.
    :param max_runtime_seconds: at most the schedule's period (3600 for hourly).
    :param publish_metrics: publish ``feature_*`` metrics to CloudWatch
        (``/aws/sagemaker/Endpoints/data-metric``).
    :param data_analysis_start_time: with ``NOW``: e.g. ``-PT1H``.
    :param data_analysis_end_time: with ``NOW``: e.g. ``-PT0H``.
    :param image_uri: the analyzer image; default: the region's ``sagemaker-model-monitor-analyzer``.
    :param environment: extra analyzer environment (e.g. ``categorical_drift_method``).
    :param tags: tags for new job definitions and a new schedule.
    :param waiter_delay: seconds between two DescribeMonitoringSchedule calls while it is Pending.
    :param waiter_max_attempts: how many DescribeMonitoringSchedule calls before giving up.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "schedule_name", "endpoint_name", "statistics_s3_uri", "constraints_s3_uri", "output_s3_uri", "role_arn",
        "schedule_expression", "image_uri", "environment", "tags")
    template_fields_renderers: ClassVar[dict] = {"environment": "json", "tags": "json"}

    def __init__(
        self,
        *,
        schedule_name: str,
        endpoint_name: str,
        statistics_s3_uri: str,
        constraints_s3_uri: str,
        output_s3_uri: str,
        role_arn: str,
        schedule_expression: str = "cron(0 * ? * * *)",
        instance_type: str = "ml.m5.xlarge",
        max_runtime_seconds: int = 3600,
        publish_metrics: bool = True,
        data_analysis_start_time: str | None = None,
        data_analysis_end_time: str | None = None,
        image_uri: str | None = None,
        environment: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        waiter_delay: int = 5,
        waiter_max_attempts: int = 60,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.schedule_name = schedule_name
        self.endpoint_name = endpoint_name
        self.statistics_s3_uri = statistics_s3_uri
        self.constraints_s3_uri = constraints_s3_uri
        self.output_s3_uri = output_s3_uri
        self.role_arn = role_arn
        self.schedule_expression = schedule_expression
        self.instance_type = instance_type
        self.max_runtime_seconds = max_runtime_seconds
        self.publish_metrics = publish_metrics
        self.data_analysis_start_time = data_analysis_start_time
        self.data_analysis_end_time = data_analysis_end_time
        self.image_uri = image_uri
        self.environment = environment
        self.tags = tags
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def _validate(self) -> None:
        check_resource_name("schedule_name", self.schedule_name)
        check_resource_name("endpoint_name", self.endpoint_name)
        for field in ("statistics_s3_uri", "constraints_s3_uri", "output_s3_uri"):
            _check_s3_uri(field, getattr(self, field))
        if not isinstance(self.role_arn, str) or not self.role_arn.startswith("arn:"):
            raise ValueError(f"role_arn must be an IAM role ARN, got {self.role_arn!r}.")
        try:  # the rules CreateMonitoringSchedule applies (the emulator checks with the same code)
            schedule = parse_schedule(self.schedule_expression, "schedule_expression")
            check_schedule_window(schedule, self.data_analysis_start_time, self.data_analysis_end_time,
                                  "data_analysis_start_time", "data_analysis_end_time")
            check_max_runtime(schedule, self.max_runtime_seconds, "max_runtime_seconds")
        except ScheduleRuleError as error:
            raise ValueError(str(error)) from error
        for field in ("environment", "tags"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{field} must map strings to strings, got {value!r}.")
        self._check_waiter_arguments()

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        spec = data_quality_job_definition(
            endpoint_name=self.endpoint_name,
            image_uri=self.image_uri or analyzer_image_uri(self.region),
            statistics_s3_uri=self.statistics_s3_uri,
            constraints_s3_uri=self.constraints_s3_uri,
            output_s3_uri=self.output_s3_uri,
            role_arn=self.role_arn,
            instance_type=self.instance_type,
            max_runtime_seconds=self.max_runtime_seconds,
            publish_metrics=self.publish_metrics,
            environment=dict(self.environment or {}),
        )
        actions: list[str] = []
        definition_name = derive_name(self.schedule_name, spec)
        definition_arn = self._ensure_job_definition(definition_name, spec, actions)
        config = schedule_config(definition_name, self.schedule_expression, start_offset=self.data_analysis_start_time,
                                 end_offset=self.data_analysis_end_time)
        schedule = self._ensure_schedule(config, actions)
        return {
            "schedule_name": self.schedule_name,
            "schedule_arn": schedule["MonitoringScheduleArn"],
            "schedule_status": schedule["MonitoringScheduleStatus"],
            "schedule_expression": self.schedule_expression,
            "job_definition_name": definition_name,
            "job_definition_arn": definition_arn,
            "actions_taken": actions,
            "changed": bool(actions),
        }

    def _describe_or_none(self, method: str, **kwargs: str) -> dict[str, Any] | None:
        try:
            response = getattr(self.hook.conn, method)(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFound" or is_not_found(error):
                return None
            raise
        response.pop("ResponseMetadata", None)
        return response

    def _ensure_job_definition(self, name: str, spec: dict[str, Any], actions: list[str]) -> str:
        existing = self._describe_or_none("describe_data_quality_job_definition", JobDefinitionName=name)
        if existing is None:
            self.log.info("Creating data-quality job definition %s", name)
            tags = [{"Key": k, "Value": str(v)} for k, v in sorted((self.tags or {}).items())]
            try:
                arn = self.hook.conn.create_data_quality_job_definition(JobDefinitionName=name, Tags=tags,
                                                                        **spec)["JobDefinitionArn"]
                actions.append(f"created job definition {name}")
                return arn
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceInUse":
                    raise
                existing = self._describe_or_none("describe_data_quality_job_definition", JobDefinitionName=name)
                if existing is None:
                    raise
        differences = spec_differences(spec, existing)
        if differences:
            raise AirflowFailException(f"Data-quality job definition {name} exists with a different spec: "
                                       f"{'; '.join(differences)}. Delete it or rename the schedule.")
        self.log.info("Reusing data-quality job definition %s (same spec).", name)
        return existing["JobDefinitionArn"]

    def _ensure_schedule(self, config: dict[str, Any], actions: list[str]) -> dict[str, Any]:
        existing = self._describe_or_none("describe_monitoring_schedule", MonitoringScheduleName=self.schedule_name)
        if existing is None:
            self.log.info("Creating monitoring schedule %s (%s)", self.schedule_name, self.schedule_expression)
            tags = [{"Key": k, "Value": str(v)} for k, v in sorted((self.tags or {}).items())]
            try:
                self.hook.conn.create_monitoring_schedule(MonitoringScheduleName=self.schedule_name,
                                                          MonitoringScheduleConfig=config, Tags=tags)
                actions.append("created schedule")
                return self._settled_schedule()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceInUse":
                    raise
                self.log.info("Monitoring schedule %s was created concurrently; comparing it.", self.schedule_name)
        existing = self._settled_schedule(existing)
        differences = spec_differences(config, existing["MonitoringScheduleConfig"])
        if not differences:
            self.log.info("Monitoring schedule %s already runs %s with %s.", self.schedule_name,
                          self.schedule_expression, config["MonitoringJobDefinitionName"])
            return existing
        old_definition = existing["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName")
        self.log.info("Updating monitoring schedule %s: %s", self.schedule_name, "; ".join(differences))
        self.hook.conn.update_monitoring_schedule(MonitoringScheduleName=self.schedule_name,
                                                  MonitoringScheduleConfig=config)
        actions.append("updated schedule")
        schedule = self._settled_schedule()
        if old_definition and old_definition != config["MonitoringJobDefinitionName"]:
            self._delete_replaced_definition(old_definition, actions)
        return schedule

    def _settled_schedule(self, schedule: dict[str, Any] | None = None) -> dict[str, Any]:
        """Wait (bounded) while the schedule is Pending; a Failed schedule fails the task."""
        for _ in range(self.waiter_max_attempts):
            schedule = schedule or self._describe_or_none("describe_monitoring_schedule",
                                                          MonitoringScheduleName=self.schedule_name)
            if schedule is None:
                raise AirflowException(f"Monitoring schedule {self.schedule_name} disappeared while being set up.")
            status = schedule["MonitoringScheduleStatus"]
            if status == "Failed":
                raise AirflowException(f"Monitoring schedule {self.schedule_name} is Failed: "
                                       f"{schedule.get('FailureReason') or 'no FailureReason given'}")
            if status != "Pending":
                return schedule
            self.log.info("Monitoring schedule %s is Pending; waiting %d s.", self.schedule_name, self.waiter_delay)
            time.sleep(self.waiter_delay)
            schedule = None
        raise AirflowException(f"Monitoring schedule {self.schedule_name} stayed Pending for "
                               f"{self.waiter_max_attempts} looks.")

    def _delete_replaced_definition(self, name: str, actions: list[str]) -> None:
        if not name.startswith(f"{self.schedule_name}-"):
            self.log.info("Leaving job definition %s alone: this operator did not name it.", name)
            return
        try:
            self.hook.conn.delete_data_quality_job_definition(JobDefinitionName=name)
            actions.append(f"deleted job definition {name}")
        except ClientError as error:
            # Still used by another schedule, or already gone: neither should fail the update.
            self.log.warning("Kept the replaced job definition %s: %s", name, error)


class DataQualityCheckOperator(_AnalyzerJobOperator):
    """
    Check one window of an endpoint's captured requests against its baseline, now.

    ``mode="local"`` downloads the capture objects of the window's ``yyyy/mm/dd/hh`` folders (every
    variant) and the baseline files, runs the analyzer (``data_quality.run_check``) in the task,
    uploads ``statistics.json`` and ``constraint_violations.json`` to
    ``<output_s3_uri>/<endpoint>/<window>/`` and publishes the ``feature_*`` metrics to CloudWatch
    (namespace ``/aws/sagemaker/Endpoints/data-metric``, dimensions EndpointName and
    ScheduleName). ``mode="processing"`` runs the same analysis as a processing job with the
    analyzer image (which publishes the metrics itself), named after the window and the baseline
    so that a retry finds it.

    Then the ``policy``: ``fail`` raises :class:`DataQualityViolations` listing the violations,
    ``warn`` logs them as a table and succeeds, ``ignore`` only counts them. Unparseable records
    are always reported. The window is ``[window_end - window_minutes, window_end]`` unless
    ``window_start`` is given; ``window_end`` defaults to the DAG run's ``run_after`` (so a retry
    checks the same window), else now.

    Returns ``{"endpoint_name", "window_start", "window_end", "mode", "records",
    "unparseable_records", "unparseable_samples", "violation_count", "violations",
    "violation_summary", "drift_distances", "statistics_s3_uri", "violations_s3_uri",
    "baseline_statistics_s3_uri", "baseline_constraints_s3_uri", "capture_objects",
    "metrics_published", "job_name", "policy"}``; ``drift_distances`` (local mode) is the
    analyzer's drift distance per feature.

    :param endpoint_name: the endpoint whose captured requests are checked.
    :param statistics_s3_uri: the baseline ``statistics.json``.
    :param constraints_s3_uri: the baseline ``constraints.json``.
    :param output_s3_uri: where the check's files go (under ``<endpoint>/<window>/``).
    :param capture_s3_uri: the endpoint's data capture destination; default: DescribeEndpoint's.
    :param window_minutes: the window's length, up to 1440.
    :param window_start: the window's start (ISO-8601), instead of ``window_end - window_minutes``.
    :param window_end: the window's end (ISO-8601).
    :param policy: ``fail``, ``warn`` or ``ignore``.
    :param mode: ``local`` or ``processing``.
    :param publish_metrics: publish the data-quality metrics to CloudWatch.
    :param schedule_name: the metrics' ScheduleName dimension (default ``<endpoint>-airflow-check``).
    :param role_arn: the processing job's role (``processing`` mode).
    :param instance_type: the processing job's instance type.
    :param max_runtime_seconds: the processing job's StoppingCondition.
    :param image_uri: the analyzer image; default: the region's ``sagemaker-model-monitor-analyzer``.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "statistics_s3_uri", "constraints_s3_uri", "output_s3_uri", "capture_s3_uri",
        "window_minutes", "window_start", "window_end", "policy", "schedule_name", "role_arn", "image_uri")

    def __init__(
        self,
        *,
        endpoint_name: str,
        statistics_s3_uri: str,
        constraints_s3_uri: str,
        output_s3_uri: str,
        capture_s3_uri: str | None = None,
        window_minutes: int = 60,
        window_start: str | datetime | None = None,
        window_end: str | datetime | None = None,
        policy: str = "fail",
        publish_metrics: bool = True,
        schedule_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.statistics_s3_uri = statistics_s3_uri
        self.constraints_s3_uri = constraints_s3_uri
        self.output_s3_uri = output_s3_uri
        self.capture_s3_uri = capture_s3_uri
        self.window_minutes = window_minutes
        self.window_start = window_start
        self.window_end = window_end
        self.policy = policy
        self.publish_metrics = publish_metrics
        self.schedule_name = schedule_name

    def _validate(self) -> None:
        check_resource_name("endpoint_name", self.endpoint_name)
        for field in ("statistics_s3_uri", "constraints_s3_uri", "output_s3_uri"):
            _check_s3_uri(field, getattr(self, field))
        if self.capture_s3_uri is not None:
            _check_s3_uri("capture_s3_uri", self.capture_s3_uri)
        _check_choice("policy", self.policy, POLICIES)
        _check_choice("mode", self.mode, MODES)
        if isinstance(self.window_minutes, str) and self.window_minutes.isdigit():
            self.window_minutes = int(self.window_minutes)  # rendered from a template
        _check_positive("window_minutes", self.window_minutes, 24 * 60)
        if self.schedule_name is not None:
            check_resource_name("schedule_name", self.schedule_name)
        if self.mode == "processing":
            if not self.role_arn:
                raise ValueError("role_arn is required with mode='processing' (the processing job's role).")
            self._check_waiter_arguments()

    def _window(self, context: Context) -> tuple[datetime, datetime]:
        try:
            if self.window_end not in (None, ""):
                end = parse_time(self.window_end, "window_end")
            else:
                dag_run = context.get("dag_run") if context else None
                run_after = getattr(dag_run, "run_after", None)
                end = parse_time(run_after, "window_end") if run_after else datetime.now(timezone.utc)
            start = (parse_time(self.window_start, "window_start") if self.window_start not in (None, "")
                     else end - timedelta(minutes=self.window_minutes))
            check_window(start, end)
        except MonitoringSpecError as error:
            raise ValueError(str(error)) from error
        return start.replace(microsecond=0), end.replace(microsecond=0)

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        start, end = self._window(context)
        capture_uri = self.capture_s3_uri or self._capture_destination()
        output = s3_join(self.output_s3_uri, self.endpoint_name, window_id(start, end))
        self.log.info("Checking endpoint %s's requests captured from %s to %s (%s mode) against %s",
                      self.endpoint_name, iso(start), iso(end), self.mode, self.constraints_s3_uri)
        captured = self._captured_objects(capture_uri, start, end)
        if not captured:
            self.log.warning("No requests of endpoint %s were captured in this window (%s/%s/); nothing to check.",
                             self.endpoint_name, capture_uri.rstrip("/"), self.endpoint_name)
            result = self._result(start, end, records=0, violations=[], capture_objects=0)
        elif self.mode == "local":
            result = self._check_locally(capture_uri, captured, start, end, output)
        else:
            result = self._check_in_processing_job(capture_uri, sorted(captured), start, end, output)
        self.log.info("Checked %s records: %s", result["records"], violations_table(result["violations"]))
        apply_policy(result, self.policy, self.log)
        return result

    @property
    def _metrics_schedule_name(self) -> str:
        return self.schedule_name or f"{self.endpoint_name[:63 - len('-airflow-check')].rstrip('-')}-airflow-check"

    def _capture_destination(self) -> str:
        endpoint = self.hook.describe_endpoint_or_none(self.endpoint_name)
        if endpoint is None:
            raise AirflowException(f"Endpoint {self.endpoint_name} does not exist; release it first.")
        capture = endpoint.get("DataCaptureConfig") or {}
        if not capture.get("EnableCapture"):
            raise AirflowFailException(f"Endpoint {self.endpoint_name} does not capture data: enable "
                                       "DataCaptureConfig in its endpoint config to monitor it.")
        return capture["DestinationS3Uri"]

    def _captured_objects(self, capture_uri: str, start: datetime, end: datetime) -> dict[str, list[str]]:
        """The keys in each ``<endpoint>/<variant>/yyyy/mm/dd/hh/`` folder that can hold the window's records."""
        bucket, key = S3Hook.parse_s3_url(s3_join(capture_uri, self.endpoint_name) + "/")
        variants = self.s3.list_prefixes(bucket_name=bucket, prefix=key, delimiter="/") or []
        folders = [f"{variant}{hour}/" for variant in sorted(variants) for hour in capture_hours(start, end)]
        listed = {folder: self.s3.list_keys(bucket_name=bucket, prefix=folder) or [] for folder in folders}
        return {folder: keys for folder, keys in listed.items() if keys}

    def _check_locally(self, capture_uri: str, captured: dict[str, list[str]], start: datetime, end: datetime,
                       output: str) -> dict[str, Any]:
        from data_quality import DataQualityError, NoDataError, run_check

        bucket, _ = S3Hook.parse_s3_url(capture_uri)
        keys = [key for folder_keys in captured.values() for key in folder_keys]
        with tempfile.TemporaryDirectory(prefix="data-quality-check-") as workdir:
            work = Path(workdir)
            for index, key in enumerate(keys):  # numbered, not by key: a key with ".." must not escape workdir
                self._download(f"s3://{bucket}/{key}", work / "capture" / f"{index:06d}.jsonl")
            statistics = self._download(self.statistics_s3_uri, work / "baseline" / STATISTICS_FILE)
            constraints = self._download(self.constraints_s3_uri, work / "baseline" / CONSTRAINTS_FILE)
            try:
                check = run_check(work / "capture", CAPTURE_DATASET_FORMAT, statistics, constraints, work / "out",
                                  start_time=start, end_time=end, endpoint_name=self.endpoint_name,
                                  schedule_name=self._metrics_schedule_name)
            except NoDataError as error:
                self.log.warning("Nothing to check: %s", error)
                return self._result(start, end, records=0, violations=[], capture_objects=len(keys))
            except DataQualityError as error:
                raise AirflowFailException(f"The analyzer could not check the captured data: {error}") from error
            for file_name in (STATISTICS_FILE, VIOLATIONS_FILE):
                self._upload(work / "out" / file_name, s3_join(output, file_name))
        published = self._publish_metrics(check.metrics_namespace, check.metrics) if self.publish_metrics else 0
        distances = {m["MetricName"].removeprefix("feature_baseline_drift_"): m["Value"] for m in check.metrics
                     if m["MetricName"].startswith("feature_baseline_drift_")}
        return self._result(start, end, records=check.records, violations=check.violations,
                            capture_objects=len(keys), output=output, metrics_published=published,
                            unparseable_records=check.unparseable_records,
                            unparseable_samples=check.unparseable_samples, drift_distances=distances)

    def _publish_metrics(self, namespace: str, metrics: list[dict[str, Any]]) -> int:
        if not metrics:
            return 0
        cloudwatch = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="cloudwatch", region_name=self.region_name,
                                 verify=self.verify, config=self.botocore_config).get_conn()
        for first in range(0, len(metrics), PUT_METRIC_DATA_BATCH):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=metrics[first:first + PUT_METRIC_DATA_BATCH])
        self.log.info("Published %d metrics to CloudWatch namespace %s", len(metrics), namespace)
        return len(metrics)

    def _check_in_processing_job(self, capture_uri: str, folders: list[str], start: datetime, end: datetime,
                                 output: str) -> dict[str, Any]:
        """The analyzer as a processing job over the window's non-empty capture folders (AWS fails a job on an
        input prefix without objects)."""
        prefix = f"{self.endpoint_name[:30].rstrip('-')}-dq-check"
        job = self._run_job(prefix, partial(self._check_job, capture_uri=capture_uri, folders=folders, start=start,
                                            end=end, output=output))
        output = self._job_output_uri(job)
        violations = (self._read_json_or_none(s3_join(output, VIOLATIONS_FILE)) or {}).get("violations", [])
        statistics = self._read_json_or_none(s3_join(output, STATISTICS_FILE)) or {}
        records = int(statistics.get("dataset", {}).get("item_count", 0))
        return self._result(start, end, records=records, violations=violations, capture_objects=None,
                            output=output, metrics_published=None, job_name=job["ProcessingJobName"])

    def _check_job(self, name: str, capture_uri: str, folders: list[str], start: datetime, end: datetime,
                   output: str) -> dict[str, Any]:
        bucket, _ = S3Hook.parse_s3_url(capture_uri)
        endpoint_root = s3_join(capture_uri, self.endpoint_name)
        endpoint_key = S3Hook.parse_s3_url(endpoint_root)[1]
        inputs = [s3_input(f"capture_{index}", f"s3://{bucket}/{folder}",
                           f"{ENDPOINT_INPUT_PATH}/{folder[len(endpoint_key) + 1:].rstrip('/')}")
                  for index, folder in enumerate(folders)]
        if len(inputs) > MAX_PROCESSING_INPUTS - 2:  # many variants: take the endpoint's prefix, filtered by time
            inputs = [s3_input("capture", endpoint_root, ENDPOINT_INPUT_PATH)]
        inputs += [s3_input("baseline_statistics", self.statistics_s3_uri, f"{BASELINE_FILES_PATH}/statistics"),
                   s3_input("baseline_constraints", self.constraints_s3_uri, f"{BASELINE_FILES_PATH}/constraints")]
        environment = analyzer_environment(CAPTURE_DATASET_FORMAT, ENDPOINT_INPUT_PATH,
                                           publish_metrics=self.publish_metrics, extra={
            "baseline_statistics": f"{BASELINE_FILES_PATH}/statistics/{STATISTICS_FILE}",
            "baseline_constraints": f"{BASELINE_FILES_PATH}/constraints/{CONSTRAINTS_FILE}",
            "start_time": iso(start),
            "end_time": iso(end),
            "sagemaker_endpoint_name": self.endpoint_name,
            "sagemaker_monitoring_schedule_name": self._metrics_schedule_name,
        })
        return processing_job_request(
            name=name, image_uri=self.image_uri or analyzer_image_uri(self.region), environment=environment,
            inputs=inputs, output_s3_uri=output, role_arn=self.role_arn, instance_type=self.instance_type,
            max_runtime_seconds=self.max_runtime_seconds)

    def _result(self, start: datetime, end: datetime, *, records: int, violations: list[dict[str, Any]],
                capture_objects: int | None, output: str | None = None, metrics_published: int | None = 0,
                unparseable_records: int | None = 0, unparseable_samples: list[str] | None = None,
                job_name: str | None = None, drift_distances: dict[str, float] | None = None) -> dict[str, Any]:
        return {
            "endpoint_name": self.endpoint_name,
            "window_start": iso(start),
            "window_end": iso(end),
            "mode": self.mode,
            "records": records,
            "unparseable_records": unparseable_records,
            "unparseable_samples": list(unparseable_samples or [])[:MAX_UNPARSEABLE_SAMPLES],
            "violation_count": len(violations),
            "violations": violations[:MAX_VIOLATIONS_RETURNED],
            "violation_summary": violation_summary(violations),
            "drift_distances": drift_distances or {},
            "statistics_s3_uri": s3_join(output, STATISTICS_FILE) if output else None,
            "violations_s3_uri": s3_join(output, VIOLATIONS_FILE) if output else None,
            "baseline_statistics_s3_uri": self.statistics_s3_uri,
            "baseline_constraints_s3_uri": self.constraints_s3_uri,
            "capture_objects": capture_objects,
            "metrics_published": metrics_published,
            "job_name": job_name,
            "policy": self.policy,
        }


class MonitoringExecutionsOperator(_ModelMonitorOperator):
    """
    Read a monitoring schedule: its baseline, and its latest executions with the violations each reported.

    DescribeMonitoringSchedule and its data-quality job definition give the endpoint and the
    baseline files (so a check runs against exactly what the schedule uses);
    ListMonitoringExecutions (newest scheduled first) and each finished execution's
    ``constraint_violations.json`` give the history. A schedule that does not exist (yet) skips
    the task, and with it the checks downstream: the monitoring DAG may run before the first release.

    Returns ``{"schedule_name", "schedule_status", "endpoint_name", "job_definition_name",
    "statistics_s3_uri", "constraints_s3_uri", "executions": [{"scheduled_time", "status",
    "failure_reason", "processing_job_name", "report_s3_uri", "violation_count",
    "violation_summary"}]}``.

    :param schedule_name: the monitoring schedule.
    :param max_results: how many executions, newest first (1-100).
    """

    template_fields: Sequence[str] = aws_template_fields("schedule_name")

    def __init__(self, *, schedule_name: str, max_results: int = 5, **kwargs: Any) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.schedule_name = schedule_name
        self.max_results = max_results

    def execute(self, context: Context) -> dict[str, Any]:
        check_resource_name("schedule_name", self.schedule_name)
        _check_positive("max_results", self.max_results, 100)
        try:
            schedule = self.hook.conn.describe_monitoring_schedule(MonitoringScheduleName=self.schedule_name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFound":
                raise
            raise AirflowSkipException(f"Monitoring schedule {self.schedule_name} does not exist (yet): release "
                                       "the endpoint with its monitoring section first.") from error
        definition_name = schedule["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName")
        baseline = self._baseline(schedule, definition_name)
        summaries = self.hook.conn.list_monitoring_executions(
            MonitoringScheduleName=self.schedule_name, SortBy="ScheduledTime", SortOrder="Descending",
            MaxResults=self.max_results)["MonitoringExecutionSummaries"]
        executions = [self._execution(summary) for summary in summaries]
        self.log.info("Schedule %s (%s), latest executions:\n%s", self.schedule_name,
                      schedule["MonitoringScheduleStatus"], _executions_table(executions))
        return {"schedule_name": self.schedule_name, "schedule_status": schedule["MonitoringScheduleStatus"],
                "endpoint_name": schedule.get("EndpointName"), "job_definition_name": definition_name,
                **baseline, "executions": executions}

    def _baseline(self, schedule: Mapping[str, Any], definition_name: str | None) -> dict[str, str | None]:
        if definition_name:
            definition = self.hook.conn.describe_data_quality_job_definition(JobDefinitionName=definition_name)
            config = definition.get("DataQualityBaselineConfig") or {}
        else:  # an inline MonitoringJobDefinition
            config = schedule["MonitoringScheduleConfig"].get("MonitoringJobDefinition", {}).get("BaselineConfig") or {}
        return {"statistics_s3_uri": (config.get("StatisticsResource") or {}).get("S3Uri"),
                "constraints_s3_uri": (config.get("ConstraintsResource") or {}).get("S3Uri")}

    def _execution(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        status = summary["MonitoringExecutionStatus"]
        execution = {"scheduled_time": iso(summary["ScheduledTime"]), "status": status,
                     "failure_reason": summary.get("FailureReason"), "processing_job_name": None,
                     "report_s3_uri": None, "violation_count": None, "violation_summary": {}}
        arn = summary.get("ProcessingJobArn")
        job = self._describe_job_or_none(arn.rsplit("/", 1)[-1]) if arn else None
        if job is None:
            return execution
        execution["processing_job_name"] = job["ProcessingJobName"]
        execution["report_s3_uri"] = self._job_output_uri(job)
        if status in ("Completed", "CompletedWithViolations"):
            report = self._read_json_or_none(s3_join(execution["report_s3_uri"], VIOLATIONS_FILE)) or {}
            violations = report.get("violations", [])
            execution.update(violation_count=len(violations), violation_summary=violation_summary(violations))
        return execution


def _executions_table(executions: list[dict[str, Any]]) -> str:
    if not executions:
        return "no executions yet"
    return "\n".join(f"{e['scheduled_time']}  {e['status']:<24} violations={e['violation_count']}  "
                     f"{e['failure_reason'] or ''}" for e in executions)


class DriftReportOperator(_ModelMonitorOperator):
    """
    Render a check's drift report (a self-contained HTML page with one plot per feature) to S3.

    Reads the check's statistics and violations and the baseline's statistics and constraints
    (the S3 URIs of :class:`DataQualityCheckOperator`'s result), renders them with
    :func:`sagemaker_ops.drift_report.render_drift_report` and uploads the page to
    ``<report_s3_uri>/<endpoint>/<window>/drift_report.html``.

    Returns ``{"report_s3_uri", "features", "drifted_features", "violation_count"}``.

    :param check: the check operator's result (usually its XComArg).
    :param report_s3_uri: where reports go.
    :param executions: the schedule's latest executions (:class:`MonitoringExecutionsOperator`'s
        result), shown in the report.
    """

    template_fields: Sequence[str] = aws_template_fields("check", "report_s3_uri", "executions")

    def __init__(self, *, check: dict[str, Any], report_s3_uri: str, executions: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.check = check
        self.report_s3_uri = report_s3_uri
        self.executions = executions

    def execute(self, context: Context) -> dict[str, Any]:
        from sagemaker_ops.drift_report import render_drift_report

        _check_s3_uri("report_s3_uri", self.report_s3_uri)
        if not isinstance(self.check, Mapping) or "baseline_statistics_s3_uri" not in self.check:
            raise ValueError(f"check must be a DataQualityCheckOperator result, got {self.check!r}.")
        check = self.check
        current = self._read_json_or_none(check["statistics_s3_uri"]) if check.get("statistics_s3_uri") else None
        report = render_drift_report(
            endpoint_name=check["endpoint_name"],
            window_start=check["window_start"],
            window_end=check["window_end"],
            baseline_statistics=self._read_json(check["baseline_statistics_s3_uri"]),
            constraints=self._read_json(check["baseline_constraints_s3_uri"]),
            current_statistics=current,
            violations=check.get("violations") or [],
            records=check.get("records") or 0,
            unparseable_records=check.get("unparseable_records"),
            executions=(self.executions or {}).get("executions"),
        )
        window = window_id(parse_time(check["window_start"], "window_start"),
                           parse_time(check["window_end"], "window_end"))
        uri = s3_join(self.report_s3_uri, check["endpoint_name"], window, REPORT_FILE)
        bucket, key = S3Hook.parse_s3_url(uri)
        self.s3.get_conn().put_object(Bucket=bucket, Key=key, Body=report.html.encode("utf-8"),
                                      ContentType="text/html; charset=utf-8")
        self.log.info("Drift report (%d features, drifted: %s): %s", len(report.features),
                      ", ".join(report.drifted_features) or "none", uri)
        return {"report_s3_uri": uri, "features": [f.name for f in report.features],
                "drifted_features": report.drifted_features, "violation_count": check.get("violation_count", 0)}
