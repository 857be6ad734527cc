"""Model Monitor data quality, the pure half: analyzer jobs' images and requests, baseline datasets, check windows.

Schedule expressions and their limits are ``sagemaker_rules.monitor_schedule`` (shared with the
emulator). No Airflow, no boto3: the pipeline config, the operators and the DAGs import this at parse time.
Requests are built the way the SageMaker SDK builds them (``DefaultModelMonitor.suggest_baseline``,
``_generate_env_map``, ``_build_create_data_quality_job_definition_request``) so that the same
operators drive AWS's ``sagemaker-model-monitor-analyzer`` image and the emulator's analyzer.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sagemaker_rules.monitor_schedule import MAX_ANALYSIS_WINDOW

ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
# The account hosting the analyzer image in each region, as the SageMaker SDK ships it
# (sagemaker/core/image_uri_config/model-monitor.json); tests/unit/test_monitoring_config.py checks
# this copy against the installed SDK. Kept here because importing the SDK takes seconds.
ANALYZER_ACCOUNTS = {
    "af-south-1": "875698925577", "ap-east-1": "001633400207", "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524", "ap-northeast-3": "990339680094", "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676", "ap-southeast-2": "563025443158", "ap-southeast-3": "669540362728",
    "ca-central-1": "536280801234", "cn-north-1": "453000072557", "cn-northwest-1": "453252182341",
    "eu-central-1": "048819808253", "eu-central-2": "590183933784", "eu-north-1": "895015795356",
    "eu-south-1": "933208885752", "eu-south-2": "437450045455", "eu-west-1": "468650794304",
    "eu-west-2": "749857270468", "eu-west-3": "680080141114", "il-central-1": "843974653677",
    "me-central-1": "588750061953", "me-south-1": "607024016150", "sa-east-1": "539772159869",
    "us-east-1": "156813124566", "us-east-2": "777275614652", "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}

# Container paths of the analyzer's processing jobs (the SDK's _CONTAINER_BASE_PATH layout).
CONTAINER_BASE = "/opt/ml/processing"
BASELINE_DATASET_PATH = f"{CONTAINER_BASE}/input/baseline_dataset_input"
ENDPOINT_INPUT_PATH = f"{CONTAINER_BASE}/input/endpoint"
BASELINE_FILES_PATH = f"{CONTAINER_BASE}/baseline"
OUTPUT_PATH = f"{CONTAINER_BASE}/output"

STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"

DATASET_FORMATS = ("csv", "json", "parquet")
# What a data-quality check reads from each capture record: the request the model was asked.
CAPTURE_DATASET_FORMAT = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}}
METRICS_NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"

MAX_PROCESSING_INPUTS = 10


class MonitoringSpecError(ValueError):
    """A monitoring setting AWS would refuse; the message names the field."""


# -- images, formats, names ----------------------------------------------------------------------


def analyzer_image_uri(region: str) -> str:
    """The region's ``sagemaker-model-monitor-analyzer`` image, resolved without network."""
    account = ANALYZER_ACCOUNTS.get(region)
    if account is None:
        raise MonitoringSpecError(f"No Model Monitor analyzer image is known for region {region!r} "
                                  f"(known: {', '.join(sorted(ANALYZER_ACCOUNTS))}); pass image_uri.")
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{ANALYZER_REPOSITORY}"


def dataset_format(file_format: str, header: bool = True) -> dict[str, Any]:
    """AWS's ``dataset_format`` for a baseline dataset (the SDK's ``DatasetFormat``)."""
    if file_format == "csv":
        return {"csv": {"header": bool(header), "output_columns_position": "START"}}
    if file_format == "json":
        return {"json": {"lines": True}}
    if file_format == "parquet":
        return {"parquet": {}}
    raise MonitoringSpecError(f"format must be one of {', '.join(DATASET_FORMATS)}, got {file_format!r}")


def job_name(prefix: str, digest: str, attempt: int = 1) -> str:
    """``<prefix>-<digest>`` (``-<attempt>`` from the second), within SageMaker's 63 characters."""
    suffix = f"-{digest}" + (f"-{attempt}" if attempt > 1 else "")
    return f"{prefix[:63 - len(suffix)].rstrip('-')}{suffix}"


def s3_join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(part.strip("/") for part in parts if part)])


# -- baseline datasets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedDataset:
    path: Path
    sha256: str
    rows: int
    columns: tuple[str, ...]


def prepare_dataset(source: Path, file_format: str, header: bool, exclude_columns: tuple[str, ...] | list[str],
                    workdir: Path) -> PreparedDataset:
    """
    Copy ``source`` without ``exclude_columns`` (e.g. the label), byte-stable, and hash the result.

    CSV cells are copied as text (no float reformatting); without a header, columns are named
    ``_c0``, ``_c1``, ... as the analyzer names them. JSON is JSON Lines of flat objects.
    """
    source, target = Path(source), Path(workdir) / f"dataset.{file_format}"
    readers = {"csv": _prepare_csv, "json": _prepare_json_lines, "parquet": _prepare_parquet}
    if file_format not in readers:
        dataset_format(file_format)  # raises the message naming the formats
    rows, columns = readers[file_format](source, target, header, tuple(exclude_columns))
    return PreparedDataset(path=target, sha256=hashlib.sha256(target.read_bytes()).hexdigest(), rows=rows,
                           columns=columns)


def _kept(columns: list[str], exclude: tuple[str, ...], source: Path) -> list[int]:
    unknown = sorted(set(exclude) - set(columns))
    if unknown:
        raise MonitoringSpecError(f"exclude_columns {unknown} are not columns of {source} "
                                  f"(columns: {', '.join(columns)})")
    return [index for index, name in enumerate(columns) if name not in exclude]


def _prepare_csv(source: Path, target: Path, header: bool, exclude: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    with source.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if not rows:
        raise MonitoringSpecError(f"the baseline dataset {source} is empty")
    columns = rows[0] if header else [f"_c{index}" for index in range(len(rows[0]))]
    keep = _kept(list(columns), exclude, source)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row[index] for index in keep if index < len(row)])
    target.write_text(out.getvalue(), encoding="utf-8")
    return len(rows) - (1 if header else 0), tuple(columns[index] for index in keep)


def _prepare_json_lines(source: Path, target: Path, header: bool,
                        exclude: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records or not all(isinstance(record, dict) for record in records):
        raise MonitoringSpecError(f"the baseline dataset {source} must be JSON Lines of objects, one per line")
    columns = list(dict.fromkeys(key for record in records for key in record))
    _kept(columns, exclude, source)
    lines = [json.dumps({k: v for k, v in record.items() if k not in exclude}, separators=(",", ":"))
             for record in records]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(records), tuple(name for name in columns if name not in exclude)


def _prepare_parquet(source: Path, target: Path, header: bool,
                     exclude: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    import pyarrow.parquet as pq  # only when a parquet baseline is asked for

    table = pq.read_table(source)
    keep = _kept(list(table.column_names), exclude, source)
    table = table.select(keep)
    pq.write_table(table, target)
    return table.num_rows, tuple(table.column_names)


# -- windows and capture folders -----------------------------------------------------------------


def parse_time(value: Any, field: str) -> datetime:
    """An aware UTC datetime from a datetime or an ISO-8601 string (naive means UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise MonitoringSpecError(f"{field} must be an ISO-8601 time like 2026-11-24T21:00:00Z, "
                                      f"got {value!r}") from None
    if not isinstance(value, datetime):
        raise MonitoringSpecError(f"{field} must be an ISO-8601 time or a datetime, got {value!r}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def check_window(start: datetime, end: datetime) -> None:
    if not start < end:
        raise MonitoringSpecError(f"the window start {start.isoformat()} must be before its end {end.isoformat()}")
    if end - start > MAX_ANALYSIS_WINDOW:
        raise MonitoringSpecError(f"the window {start.isoformat()} .. {end.isoformat()} may not exceed 24 hours")


def capture_hours(start: datetime, end: datetime) -> list[str]:
    """The ``yyyy/mm/dd/hh`` capture folders that can hold records of [start, end]."""
    moment, folders = start.replace(minute=0, second=0, microsecond=0), []
    while moment <= end:
        folders.append(moment.strftime("%Y/%m/%d/%H"))
        moment += timedelta(hours=1)
    return folders


def window_id(start: datetime, end: datetime) -> str:
    """A folder name for one check window, e.g. ``20261124T2000Z-20261124T2100Z``."""
    return f"{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- requests ------------------------------------------------------------------------------------


def analyzer_environment(data_format: dict[str, Any], dataset_source: str, *, publish_metrics: bool,
                         extra: dict[str, str] | None = None) -> dict[str, str]:
    """The analyzer's environment, as the SDK's ``_generate_env_map`` builds it."""
    return {
        "dataset_format": json.dumps(data_format),
        "dataset_source": dataset_source,
        "output_path": OUTPUT_PATH,
        "publish_cloudwatch_metrics": "Enabled" if publish_metrics else "Disabled",
        **(extra or {}),
    }


def s3_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix",
                                           "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}


def processing_job_request(*, name: str, image_uri: str, environment: dict[str, str], inputs: list[dict[str, Any]],
                           output_s3_uri: str, role_arn: str, instance_type: str, instance_count: int = 1,
                           volume_size_gb: int = 20, max_runtime_seconds: int = 3600) -> dict[str, Any]:
    """A CreateProcessingJob request running the analyzer: its outputs go to ``output_s3_uri`` at the end."""
    return {
        "ProcessingJobName": name,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": output_s3_uri, "LocalPath": OUTPUT_PATH, "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": instance_count, "InstanceType": instance_type,
                                                  "VolumeSizeInGB": volume_size_gb}},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "AppSpecification": {"ImageUri": image_uri},
        "Environment": environment,
        "RoleArn": role_arn,
    }


def data_quality_job_definition(*, endpoint_name: str, image_uri: str, statistics_s3_uri: str,
                                constraints_s3_uri: str, output_s3_uri: str, role_arn: str, instance_type: str,
                                instance_count: int = 1, volume_size_gb: int = 20, max_runtime_seconds: int = 3600,
                                publish_metrics: bool = True,
                                environment: dict[str, str] | None = None) -> dict[str, Any]:
    """
    CreateDataQualityJobDefinition's request without the name (the name is derived from it).

    ``dataset_format`` names only ``endpointInput``: the baseline profiles the model's inputs (its
    label excluded), so the schedule's executions compare the captured requests, as the Airflow
    check does, instead of putting the captured answers first as Model Monitor does by default.
    """
    return {
        "DataQualityBaselineConfig": {"ConstraintsResource": {"S3Uri": constraints_s3_uri},
                                      "StatisticsResource": {"S3Uri": statistics_s3_uri}},
        "DataQualityAppSpecification": {
            "ImageUri": image_uri,
            "Environment": {"dataset_format": json.dumps(CAPTURE_DATASET_FORMAT),
                            "publish_cloudwatch_metrics": "Enabled" if publish_metrics else "Disabled",
                            **(environment or {})},
        },
        "DataQualityJobInput": {"EndpointInput": {"EndpointName": endpoint_name, "LocalPath": ENDPOINT_INPUT_PATH,
                                                  "S3InputMode": "File",
                                                  "S3DataDistributionType": "FullyReplicated"}},
        "DataQualityJobOutputConfig": {"MonitoringOutputs": [{"S3Output": {
            "S3Uri": output_s3_uri, "LocalPath": OUTPUT_PATH, "S3UploadMode": "EndOfJob"}}]},
        "JobResources": {"ClusterConfig": {"InstanceCount": instance_count, "InstanceType": instance_type,
                                           "VolumeSizeInGB": volume_size_gb}},
        "RoleArn": role_arn,
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
    }


def schedule_config(job_definition_name: str, expression: str, *, start_offset: str | None = None,
                    end_offset: str | None = None) -> dict[str, Any]:
    """CreateMonitoringSchedule's ``MonitoringScheduleConfig`` pointing at a data-quality job definition."""
    schedule: dict[str, Any] = {"ScheduleExpression": expression}
    if start_offset is not None:
        schedule.update(DataAnalysisStartTime=start_offset, DataAnalysisEndTime=end_offset)
    return {"ScheduleConfig": schedule, "MonitoringJobDefinitionName": job_definition_name,
            "MonitoringType": "DataQuality"}


# -- results -------------------------------------------------------------------------------------


def violations_table(violations: list[dict[str, Any]], limit: int = 50) -> str:
    """A fixed-width table of violations for the task log."""
    if not violations:
        return "no violations"
    rows = [("feature", "check", "description")] + [
        (v.get("feature_name", ""), v.get("constraint_check_type", ""), str(v.get("description", "")).strip())
        for v in violations[:limit]]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}" for row in rows]
    if len(violations) > limit:
        lines.append(f"... and {len(violations) - limit} more")
    return "\n".join(lines)


def violation_summary(violations: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Check type -> the features it flagged, e.g. ``{"baseline_drift_check": ["petal_length"]}``."""
    summary: dict[str, list[str]] = {}
    for violation in violations:
        summary.setdefault(violation.get("constraint_check_type", "unknown"), []).append(
            violation.get("feature_name", ""))
    return {check: sorted(features) for check, features in sorted(summary.items())}
