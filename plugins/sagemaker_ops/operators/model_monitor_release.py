"""Model Monitor at release time: profile the data-quality baseline, keep the monitoring schedule on it.

Both converge on a re-run: the baseline is content-addressed in S3 (a re-run with the same data
computes nothing), its processing job is named after its request (a retry finds it), and the
monitoring job definition is named after its spec (a changed spec is a new definition and an
UpdateMonitoringSchedule, never a duplicate). The analyzer (``data_quality``) is imported inside
``execute()``: it brings pyarrow and numpy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowFailException
from sagemaker_ops.model_monitor_jobs import (
    BASELINE_DATASET_PATH,
    CONSTRAINTS_FILE,
    DATASET_FORMATS,
    STATISTICS_FILE,
    MonitoringSpecError,
    analyzer_environment,
    analyzer_image_uri,
    data_quality_job_definition,
    dataset_format,
    prepare_dataset,
    processing_job_request,
    s3_input,
    s3_join,
    schedule_config,
)
from sagemaker_ops.operators.base import check_positive, check_s3_uri, check_waiter_arguments, store_arguments
from sagemaker_ops.operators.model_monitor_base import (
    DIGEST_LENGTH,
    MODES,
    AnalyzerJobOperator,
    ModelMonitorBaseOperator,
    check_choice,
)
from sagemaker_ops.specs import aws_tags, check_resource_name, check_tags, derive_name, spec_differences, spec_hash
from sagemaker_rules.monitor_schedule import (
    ScheduleRuleError,
    check_max_runtime,
    check_schedule_window,
    parse_schedule,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class CreateDataQualityBaselineOperator(AnalyzerJobOperator):
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

    @store_arguments
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

    def _validate(self) -> None:
        if not isinstance(self.dataset, str | Path) or not Path(self.dataset).is_file():
            raise ValueError(f"dataset must be a file on this worker, got {self.dataset!r}.")
        check_s3_uri("output_s3_uri", self.output_s3_uri)
        check_choice("dataset_format", self.dataset_format, DATASET_FORMATS)
        check_choice("mode", self.mode, MODES)
        if not isinstance(self.exclude_columns, list | tuple) or not all(
                isinstance(name, str) for name in self.exclude_columns):
            raise ValueError(f"exclude_columns must be a list of column names, got {self.exclude_columns!r}.")
        if self.mode == "processing":
            check_positive("max_runtime_seconds", self.max_runtime_seconds, 86400)
            self.check_processing_arguments()
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
            uploaded = self.s3.upload_unless_present(prepared.path, dataset_uri, prepared.sha256)
            build_request = partial(self._baseline_job, data_format=data_format, prefix=prefix,
                                    dataset_uri=dataset_uri)
            name = None
            computed = not (self.s3.exists(statistics_uri) and self.s3.exists(constraints_uri))
            if self.resumed_job_name:  # back from the deferred wait: this task's job wrote the files
                computed, name = True, self.resumed_job_name
            elif not computed:
                self.log.info("The baseline of this dataset is already in %s; nothing to compute.", prefix)
                if self.mode == "processing":
                    name = self.hook.completed_processing_job_name(self.attempt_names(self.job_name_prefix,
                                                                                     build_request))
            elif self.mode == "local":
                self._suggest_locally(prepared.path, data_format, Path(workdir) / "baseline", prefix)
            else:
                name = self.run_job(self.job_name_prefix, build_request)["ProcessingJobName"]
        statistics = self.s3.read_json(statistics_uri)
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
            self.s3.upload(out_dir / file_name, s3_join(prefix, file_name))

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


class EnsureMonitoringScheduleOperator(ModelMonitorBaseOperator):
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

    @store_arguments
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
        super().__init__(**kwargs)

    def _validate(self) -> None:
        check_resource_name("schedule_name", self.schedule_name)
        check_resource_name("endpoint_name", self.endpoint_name)
        for field in ("statistics_s3_uri", "constraints_s3_uri", "output_s3_uri"):
            check_s3_uri(field, getattr(self, field))
        if not isinstance(self.role_arn, str) or not self.role_arn.startswith("arn:"):
            raise ValueError(f"role_arn must be an IAM role ARN, got {self.role_arn!r}.")
        try:  # the rules CreateMonitoringSchedule applies (the emulator checks with the same code)
            schedule = parse_schedule(self.schedule_expression, "schedule_expression")
            check_schedule_window(schedule, self.data_analysis_start_time, self.data_analysis_end_time,
                                  "data_analysis_start_time", "data_analysis_end_time")
            check_max_runtime(schedule, self.max_runtime_seconds, "max_runtime_seconds")
        except ScheduleRuleError as error:
            raise ValueError(str(error)) from error
        if self.environment is not None and not isinstance(self.environment, Mapping):
            raise TypeError(f"environment must map strings to strings, got {self.environment!r}.")
        check_tags(self.tags)
        check_waiter_arguments(self)

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

    def _ensure_job_definition(self, name: str, spec: dict[str, Any], actions: list[str]) -> str:
        existing = self.hook.describe_or_none("data_quality_job_definition", name)
        if existing is None:
            self.log.info("Creating data-quality job definition %s", name)
            try:
                arn = self.hook.conn.create_data_quality_job_definition(
                    JobDefinitionName=name, Tags=aws_tags(self.tags), **spec)["JobDefinitionArn"]
                actions.append(f"created job definition {name}")
                return arn
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceInUse":
                    raise
                existing = self.hook.describe_or_none("data_quality_job_definition", name)
                if existing is None:
                    raise
        differences = spec_differences(spec, existing)
        if differences:
            raise AirflowFailException(f"Data-quality job definition {name} exists with a different spec: "
                                       f"{'; '.join(differences)}. Delete it or rename the schedule.")
        self.log.info("Reusing data-quality job definition %s (same spec).", name)
        return existing["JobDefinitionArn"]

    def _ensure_schedule(self, config: dict[str, Any], actions: list[str]) -> dict[str, Any]:
        existing = self.hook.describe_or_none("monitoring_schedule", self.schedule_name)
        if existing is None:
            self.log.info("Creating monitoring schedule %s (%s)", self.schedule_name, self.schedule_expression)
            try:
                self.hook.conn.create_monitoring_schedule(MonitoringScheduleName=self.schedule_name,
                                                          MonitoringScheduleConfig=config, Tags=aws_tags(self.tags))
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
        """The schedule once it is no longer Pending (waited for with ``MonitoringScheduleSettled``)."""
        if schedule is not None and schedule["MonitoringScheduleStatus"] not in ("Pending", "Failed"):
            return schedule
        return self.hook.wait_for_monitoring_schedule(self.schedule_name, self.waiter_delay, self.waiter_max_attempts)

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
