"""The monitoring DAG's own data-quality check of a window of captured requests, and its policy.

The analyzer (``data_quality``) is imported inside ``execute()``: it brings pyarrow and numpy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sagemaker_ops.model_monitor_jobs import (
    BASELINE_FILES_PATH,
    CAPTURE_DATASET_FORMAT,
    CONSTRAINTS_FILE,
    ENDPOINT_INPUT_PATH,
    MAX_PROCESSING_INPUTS,
    STATISTICS_FILE,
    VIOLATIONS_FILE,
    MonitoringSpecError,
    analyzer_environment,
    analyzer_image_uri,
    capture_hours,
    check_window,
    iso,
    parse_time,
    processing_job_request,
    s3_input,
    s3_join,
    violation_summary,
    violations_table,
    window_id,
)
from sagemaker_ops.operators.base import check_positive, check_s3_uri, store_arguments
from sagemaker_ops.operators.model_monitor_base import MODES, AnalyzerJobOperator, check_choice
from sagemaker_ops.specs import check_resource_name

if TYPE_CHECKING:
    from airflow.sdk import Context

POLICIES = ("fail", "warn", "ignore")
# Keep XCom small: a window with many violations lists the first ones and counts the rest.
MAX_VIOLATIONS_RETURNED = 100
MAX_UNPARSEABLE_SAMPLES = 5
PUT_METRIC_DATA_BATCH = 1000  # CloudWatch PutMetricData accepts up to 1000 metrics per call


class DataQualityViolations(AirflowFailException):
    """The captured data violates the baseline's constraints (retrying the same window cannot help)."""


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


class DataQualityCheckOperator(AnalyzerJobOperator):
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

    @store_arguments
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

    def _validate(self) -> None:
        check_resource_name("endpoint_name", self.endpoint_name)
        for field in ("statistics_s3_uri", "constraints_s3_uri", "output_s3_uri"):
            check_s3_uri(field, getattr(self, field))
        if self.capture_s3_uri is not None:
            check_s3_uri("capture_s3_uri", self.capture_s3_uri)
        check_choice("policy", self.policy, POLICIES)
        check_choice("mode", self.mode, MODES)
        if isinstance(self.window_minutes, str) and self.window_minutes.isdigit():
            self.window_minutes = int(self.window_minutes)  # rendered from a template
        check_positive("window_minutes", self.window_minutes, 24 * 60)
        if self.schedule_name is not None:
            check_resource_name("schedule_name", self.schedule_name)
        if self.mode == "processing":
            self.check_processing_arguments()

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
        endpoint = self.hook.describe_or_none("endpoint", self.endpoint_name)
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
                self.s3.download(f"s3://{bucket}/{key}", work / "capture" / f"{index:06d}.jsonl")
            statistics = self.s3.download(self.statistics_s3_uri, work / "baseline" / STATISTICS_FILE)
            constraints = self.s3.download(self.constraints_s3_uri, work / "baseline" / CONSTRAINTS_FILE)
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
                self.s3.upload(work / "out" / file_name, s3_join(output, file_name))
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
        job = self.run_job(prefix, partial(self._check_job, capture_uri=capture_uri, folders=folders, start=start,
                                            end=end, output=output))
        output = self.job_output_uri(job)
        violations = (self.s3.read_json_or_none(s3_join(output, VIOLATIONS_FILE)) or {}).get("violations", [])
        statistics = self.s3.read_json_or_none(s3_join(output, STATISTICS_FILE)) or {}
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
