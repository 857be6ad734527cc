"""The ``monitoring:`` section: Model Monitor data quality (baseline, schedule, the DAG's check, report).

Checked here so that a bad schedule fails the parse, not the release. The schedule's rules are
:mod:`sagemaker_rules.monitor_schedule`, the code the emulator's CreateMonitoringSchedule runs too.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagemaker_ops.pipeline.fields import INSTANCE_TYPE_PATTERN, MISSING, S3_URI, SAGEMAKER_NAME_PATTERN, FieldReader
from sagemaker_ops.pipeline.models import (
    BaselineConfig,
    DataQualityCheckConfig,
    EndpointConfig,
    MonitoringConfig,
    MonitoringScheduleConfig,
)

PROCESSING_MODES = ("local", "processing")


def read_monitoring(fields: FieldReader, value: Any, endpoint: EndpointConfig | None,
                    bucket: str | None) -> MonitoringConfig | None:
    path = "monitoring"
    data = fields.mapping(value, path)
    fields.no_unknown_keys(data, path, {"baseline", "schedule", "check", "report_s3_uri"})
    if endpoint is not None:
        capture = endpoint.data_capture
        if capture is None or not capture.enabled:
            fields.fail(path, "needs endpoint.data_capture (enabled): Model Monitor checks the captured requests")
        elif "input" not in capture.capture:
            fields.fail(path, "needs endpoint.data_capture.capture to include input (the requests are what "
                              "the data-quality check reads)", list(capture.capture))
    endpoint_name = endpoint.name if endpoint is not None else "endpoint"
    base = f"s3://{bucket}/monitoring"
    baseline = None
    if not isinstance(data.get("baseline"), Mapping):
        fields.fail(f"{path}.baseline", "is required (a mapping: dataset, format, header, exclude_columns, mode)",
                    data.get("baseline"))
    else:
        baseline = _baseline(fields, dict(data["baseline"]), f"{base}/{endpoint_name}/baseline")
    schedule = _schedule(fields, data.get("schedule"), endpoint_name, f"{base}/schedules")
    check = _check(fields, data.get("check"), f"{base}/checks")
    report = fields.string(data, path, "report_s3_uri", default=f"{base}/drift-reports", **S3_URI)
    if None in (baseline, schedule, check, report):
        return None
    return MonitoringConfig(baseline=baseline, schedule=schedule, check=check, report_s3_uri=report.rstrip("/"))


def _baseline(fields: FieldReader, data: dict, default_output: str) -> BaselineConfig | None:
    from sagemaker_ops.model_monitor_jobs import DATASET_FORMATS

    path = "monitoring.baseline"
    fields.no_unknown_keys(data, path, {"dataset", "format", "header", "exclude_columns", "mode", "output_s3_uri"})
    dataset = fields.file(data, path, "dataset")
    file_format = fields.choice(data, path, "format", DATASET_FORMATS, default="csv")
    header = fields.boolean(data, path, "header", default=True)
    exclude = fields.string_list(data, path, "exclude_columns")
    if dataset is not None and file_format == "csv":
        _check_csv_columns(fields, dataset, header, exclude, f"{path}.exclude_columns")
    return _complete(BaselineConfig, dict(
        dataset=dataset, format=file_format, header=header, exclude_columns=tuple(exclude),
        mode=fields.choice(data, path, "mode", PROCESSING_MODES, default="local"),
        output_s3_uri=fields.string(data, path, "output_s3_uri", default=default_output, **S3_URI),
    ))


def _check_csv_columns(fields: FieldReader, dataset: Path, header: bool, exclude: list[str], field_path: str) -> None:
    """Excluded columns must exist: named by the header line, else ``_c0``, ``_c1``, ..."""
    with dataset.open(newline="", encoding="utf-8") as handle:
        first = next(csv.reader(handle), [])
    columns = first if header else [f"_c{index}" for index in range(len(first))]
    unknown = [name for name in exclude if name not in columns]
    if unknown:
        fields.fail(field_path, f"must name columns of {dataset.name} ({', '.join(columns)})", unknown)


def _schedule(fields: FieldReader, value: Any, endpoint_name: str,
              default_output: str) -> MonitoringScheduleConfig | None:
    from sagemaker_rules.monitor_schedule import ScheduleRuleError, check_schedule_window, parse_schedule

    path = "monitoring.schedule"
    data = fields.mapping(value, path)
    fields.no_unknown_keys(data, path, {"name", "cron", "max_runtime_seconds", "instance_type", "output_s3_uri",
                                        "publish_metrics", "data_analysis_start_time", "data_analysis_end_time"})
    default_name = f"{endpoint_name[:63 - len('-data-quality')].rstrip('-')}-data-quality"
    name = fields.string(data, path, "name", default=default_name, pattern=SAGEMAKER_NAME_PATTERN, max_length=63,
                         expectation="a SageMaker monitoring schedule name")
    cron = fields.string(data, path, "cron", default="cron(0 * ? * * *)", expectation="a schedule expression")
    start = data.get("data_analysis_start_time")
    end = data.get("data_analysis_end_time")
    expression = None
    try:  # the rules CreateMonitoringSchedule applies (the emulator checks with the same code)
        expression = parse_schedule(cron, f"{path}.cron") if cron else None
        if expression is not None:
            check_schedule_window(expression, start, end, f"{path}.data_analysis_start_time",
                                  f"{path}.data_analysis_end_time")
    except ScheduleRuleError as error:
        fields.errors.append(f"{fields.shown_path}: {error}")
    max_runtime = _max_runtime(fields, data.get("max_runtime_seconds", MISSING), expression, path)
    config = dict(
        name=name, cron=cron, max_runtime_seconds=max_runtime,
        instance_type=_instance_type(fields, data, path),
        output_s3_uri=fields.string(data, path, "output_s3_uri", default=default_output, **S3_URI),
        publish_metrics=fields.boolean(data, path, "publish_metrics", default=True),
    )
    if expression is None:
        return None
    return _complete(MonitoringScheduleConfig, config, data_analysis_start_time=start, data_analysis_end_time=end)


def _max_runtime(fields: FieldReader, value: Any, expression: Any, path: str) -> int | None:
    """At most the schedule's period ("cannot exceed the frequency of the job"): 3600 s when hourly."""
    limit = expression.max_runtime_seconds if expression else 3600
    if value is MISSING:
        return min(3600, limit)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        why = f" (a monitoring job may not run longer than its schedule's period, {expression.expression})" \
            if expression and value is not None and isinstance(value, int) and value > limit else ""
        fields.fail(f"{path}.max_runtime_seconds", f"must be an integer from 1 to {limit}{why}", value)
        return None
    return value


def _instance_type(fields: FieldReader, data: dict, path: str) -> str | None:
    from sagemaker_rules.instance_catalog import CATALOG_FILE, catalog  # a JSON file: cheap

    value = fields.string(data, path, "instance_type", default="ml.m5.xlarge", pattern=INSTANCE_TYPE_PATTERN,
                          expectation="an ml.* instance type like ml.m5.xlarge")
    if value is not None and value not in catalog().types:
        fields.fail(f"{path}.instance_type", f"must be an instance type of the catalog {CATALOG_FILE.name}", value)
        return None
    return value


def _check(fields: FieldReader, value: Any, default_output: str) -> DataQualityCheckConfig | None:
    path = "monitoring.check"
    data = fields.mapping(value, path)
    fields.no_unknown_keys(data, path, {"window_minutes", "policy", "mode", "publish_metrics", "output_s3_uri"})
    return _complete(DataQualityCheckConfig, dict(
        window_minutes=fields.integer(data, path, "window_minutes", minimum=1, maximum=24 * 60, default=60),
        policy=fields.choice(data, path, "policy", ("fail", "warn", "ignore"), default="fail"),
        mode=fields.choice(data, path, "mode", PROCESSING_MODES, default="local"),
        publish_metrics=fields.boolean(data, path, "publish_metrics", default=True),
        output_s3_uri=fields.string(data, path, "output_s3_uri", default=default_output, **S3_URI),
    ))


def _complete(config_class: type, values: dict[str, Any], **optional: Any) -> Any:
    """``config_class(**values)`` when every value was read (None: its problem is reported), with the
    ``output_s3_uri`` prefix written without a trailing slash."""
    if None in values.values():
        return None
    return config_class(**{**values, "output_s3_uri": values["output_s3_uri"].rstrip("/")}, **optional)
