"""The pipeline files' monitoring section and the pure Model Monitor helpers: every mistake names its field."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sagemaker_ops import model_monitor_jobs
from sagemaker_ops.pipeline import load_pipeline
from tests.unit.pipeline_documents import PIPELINES, REPO, shipped_document
from tests.unit.pipeline_documents import document_errors as errors
from tests.unit.pipeline_documents import load_document as load


@pytest.fixture
def tree_document() -> dict:
    return shipped_document("iris-tree")


def test_the_shipped_iris_tree_pipeline_monitors_its_endpoint():
    config = load_pipeline(PIPELINES / "iris-tree.yaml").monitoring
    assert config.baseline.dataset == REPO / "include" / "data" / "iris.csv"
    assert (config.baseline.format, config.baseline.header, config.baseline.exclude_columns) == ("csv", True,
                                                                                                ("species",))
    assert config.baseline.output_s3_uri == "s3://sagemaker-ops-artifacts/monitoring/iris-tree/baseline"
    assert (config.schedule.name, config.schedule.cron, config.schedule.max_runtime_seconds) == (
        "iris-tree-data-quality", "cron(0 * ? * * *)", 1800)
    assert (config.check.window_minutes, config.check.policy, config.check.mode) == (60, "fail", "local")
    assert config.report_s3_uri == "s3://sagemaker-ops-artifacts/monitoring/drift-reports"


def test_defaults_fill_an_almost_empty_section(tmp_path: Path, tree_document: dict):
    tree_document["monitoring"] = {"baseline": {"dataset": tree_document["monitoring"]["baseline"]["dataset"],
                                                "exclude_columns": ["species"]}}
    config = load(tmp_path, tree_document).monitoring
    assert (config.schedule.name, config.schedule.cron, config.schedule.max_runtime_seconds,
            config.schedule.instance_type) == ("iris-tree-data-quality", "cron(0 * ? * * *)", 3600, "ml.m5.xlarge")
    assert (config.check.window_minutes, config.check.policy, config.check.mode, config.check.publish_metrics) == (
        60, "fail", "local", True)
    assert config.baseline.mode == "local"
    assert config.check.output_s3_uri == "s3://sagemaker-ops-artifacts/monitoring/checks"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m: m.pop("baseline"), "monitoring.baseline is required"),
        (lambda m: m["baseline"].update(dataset="/no/such.csv"), "monitoring.baseline.dataset must be an existing file"),
        (lambda m: m["baseline"].update(format="xlsx"), "monitoring.baseline.format must be one of csv, json, parquet"),
        (lambda m: m["baseline"].update(exclude_columns=["label"]),
         "monitoring.baseline.exclude_columns must name columns of iris.csv (sepal_length, sepal_width, "
         "petal_length, petal_width, species), got ['label']"),
        (lambda m: m["baseline"].update(mode="spark"), "monitoring.baseline.mode must be one of local, processing"),
        (lambda m: m["baseline"].update(header="yes"), "monitoring.baseline.header must be true or false"),
        (lambda m: m["schedule"].update(cron="rate(1 hour)"), "Invalid monitoring.schedule.cron 'rate(1 hour)': it "
                                                              "must be cron(Minutes Hours"),
        (lambda m: m["schedule"].update(cron="cron(0 25 ? * * *)"), "Invalid monitoring.schedule.cron "
                                                                    "'cron(0 25 ? * * *)': hour 25 is not between"),
        (lambda m: m["schedule"].update(max_runtime_seconds=7200),
         "monitoring.schedule.max_runtime_seconds must be an integer from 1 to 3600 (a monitoring job may not run "
         "longer than its schedule's period, cron(0 * ? * * *)), got 7200"),
        (lambda m: m["schedule"].update(instance_type="ml.m5.mega"),
         "monitoring.schedule.instance_type must be an instance type of the catalog instance_types.json"),
        (lambda m: m["schedule"].update(name="bad_name"), "monitoring.schedule.name must be a SageMaker monitoring"),
        (lambda m: m["schedule"].update(cron="NOW"), "monitoring.schedule.data_analysis_start_time and "
                                                     "monitoring.schedule.data_analysis_end_time are required when "
                                                     "ScheduleExpression is NOW"),
        (lambda m: m["schedule"].update(data_analysis_start_time="-PT1H"),
         "Give both monitoring.schedule.data_analysis_start_time and monitoring.schedule.data_analysis_end_time, "
         "or neither"),
        (lambda m: m["schedule"].update(output_s3_uri="bucket/prefix"), "monitoring.schedule.output_s3_uri must be "
                                                                        "an S3 URI"),
        (lambda m: m["check"].update(policy="page"), "monitoring.check.policy must be one of fail, warn, ignore"),
        (lambda m: m["check"].update(window_minutes=0), "monitoring.check.window_minutes must be an integer from 1 "
                                                        "to 1440"),
        (lambda m: m["check"].update(mode="remote"), "monitoring.check.mode must be one of local, processing"),
        (lambda m: m.update(report_s3_uri="http://x"), "monitoring.report_s3_uri must be an S3 URI"),
        (lambda m: m.update(alerts=True), "monitoring.alerts is not a known field"),
    ],
)
def test_each_monitoring_mistake_names_its_field(tmp_path: Path, tree_document: dict, edit, expected: str):
    edit(tree_document["monitoring"])
    messages = errors(tmp_path, tree_document)
    assert any(message.startswith(f"{(tmp_path / 'pipe.yaml').as_posix()}: ") and expected in message
               for message in messages), messages


def test_monitoring_needs_captured_requests(tmp_path: Path, tree_document: dict):
    without = copy.deepcopy(tree_document)
    without["endpoint"].pop("data_capture")
    assert any("monitoring needs endpoint.data_capture (enabled)" in m for m in errors(tmp_path, without))
    outputs_only = copy.deepcopy(tree_document)
    outputs_only["endpoint"]["data_capture"]["capture"] = ["output"]
    assert any("monitoring needs endpoint.data_capture.capture to include input" in m
               for m in errors(tmp_path, outputs_only))


def test_a_one_time_schedule_takes_its_window_and_a_daily_one_a_longer_runtime(tmp_path: Path, tree_document: dict):
    tree_document["monitoring"]["schedule"].update(cron="NOW", data_analysis_start_time="-PT2H",
                                                   data_analysis_end_time="-PT0H", max_runtime_seconds=7200)
    schedule = load(tmp_path, tree_document).monitoring.schedule
    assert (schedule.cron, schedule.data_analysis_start_time, schedule.max_runtime_seconds) == ("NOW", "-PT2H", 7200)
    tree_document["monitoring"]["schedule"] = {"cron": "cron(0 6 ? * * *)", "max_runtime_seconds": 86400}
    assert load(tmp_path, tree_document).monitoring.schedule.max_runtime_seconds == 86400


# -- images, requests, windows, datasets ----------------------------------------------------------


def test_the_analyzer_image_table_matches_the_sagemaker_sdk():
    import importlib.util

    sdk = Path(importlib.util.find_spec("sagemaker").submodule_search_locations[0])
    config = json.loads((sdk / "core" / "image_uri_config" / "model-monitor.json").read_text())
    [version] = config["versions"].values()
    assert version["repository"] == model_monitor_jobs.ANALYZER_REPOSITORY
    standard = {region: account for region, account in version["registries"].items() if "-iso" not in region}
    assert model_monitor_jobs.ANALYZER_ACCOUNTS == standard
    assert model_monitor_jobs.analyzer_image_uri("us-west-2") == \
        "159807026194.dkr.ecr.us-west-2.amazonaws.com/sagemaker-model-monitor-analyzer"
    assert model_monitor_jobs.analyzer_image_uri("cn-north-1").endswith(".amazonaws.com.cn/sagemaker-model-monitor-analyzer")
    with pytest.raises(model_monitor_jobs.MonitoringSpecError, match="pass image_uri"):
        model_monitor_jobs.analyzer_image_uri("mars-north-1")


def validate(operation: str, request: dict) -> None:
    """botocore's own input validation: what AWS (and the emulator's wire layer) accepts."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def test_requests_are_valid_aws_requests():
    definition = model_monitor_jobs.data_quality_job_definition(
        endpoint_name="iris-tree", image_uri=model_monitor_jobs.analyzer_image_uri("us-east-1"),
        statistics_s3_uri="s3://b/base/statistics.json", constraints_s3_uri="s3://b/base/constraints.json",
        output_s3_uri="s3://b/reports", role_arn="arn:aws:iam::123456789012:role/r", instance_type="ml.m5.xlarge")
    validate("CreateDataQualityJobDefinition", {"JobDefinitionName": "iris-tree-dq-1", **definition})
    assert json.loads(definition["DataQualityAppSpecification"]["Environment"]["dataset_format"]) == {
        "sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}}
    validate("CreateMonitoringSchedule", {"MonitoringScheduleName": "s", "MonitoringScheduleConfig":
                                          model_monitor_jobs.schedule_config("iris-tree-dq-1", "NOW", start_offset="-PT1H",
                                                                     end_offset="-PT0H")})
    job = model_monitor_jobs.processing_job_request(
        name="baseline-abc", image_uri="x/sagemaker-model-monitor-analyzer", role_arn="arn:aws:iam::1:role/r",
        environment=model_monitor_jobs.analyzer_environment(model_monitor_jobs.dataset_format("csv"),
                                                    model_monitor_jobs.BASELINE_DATASET_PATH, publish_metrics=False),
        inputs=[model_monitor_jobs.s3_input("baseline_dataset_input", "s3://b/d", model_monitor_jobs.BASELINE_DATASET_PATH)],
        output_s3_uri="s3://b/out", instance_type="ml.m5.xlarge")
    validate("CreateProcessingJob", job)
    assert job["Environment"] == {
        "dataset_format": '{"csv": {"header": true, "output_columns_position": "START"}}',
        "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
        "output_path": "/opt/ml/processing/output", "publish_cloudwatch_metrics": "Disabled"}


def test_job_names_fit_sagemaker_and_count_attempts():
    assert model_monitor_jobs.job_name("iris-tree-baseline", "0123456789ab") == "iris-tree-baseline-0123456789ab"
    assert model_monitor_jobs.job_name("iris-tree-baseline", "0123456789ab", 2) == "iris-tree-baseline-0123456789ab-2"
    long = model_monitor_jobs.job_name("x" * 80, "0123456789ab", 3)
    assert len(long) == 63 and long.endswith("-0123456789ab-3")


def test_a_window_spans_every_capture_hour_it_touches():
    start = datetime(2026, 11, 24, 20, 30, tzinfo=timezone.utc)
    end = datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc)
    assert model_monitor_jobs.capture_hours(start, end) == ["2026/11/24/20", "2026/11/24/21", "2026/11/24/22"]
    assert model_monitor_jobs.window_id(start, end) == "20261124T203000Z-20261124T220000Z"
    assert model_monitor_jobs.parse_time("2026-11-24T20:30:00Z", "t") == start
    assert model_monitor_jobs.parse_time("2026-11-24T20:30:00", "t") == start  # naive means UTC
    with pytest.raises(model_monitor_jobs.MonitoringSpecError, match="window_start must be an ISO-8601 time"):
        model_monitor_jobs.parse_time("yesterday", "window_start")
    with pytest.raises(model_monitor_jobs.MonitoringSpecError, match="may not exceed 24 hours"):
        model_monitor_jobs.check_window(start.replace(day=20), end)


def test_a_csv_baseline_drops_the_label_and_keeps_the_text(tmp_path: Path):
    source = tmp_path / "in.csv"
    source.write_text("a,b,label\n1.10,x,cat\n2,y,dog\n\n")
    prepared = model_monitor_jobs.prepare_dataset(source, "csv", True, ["label"], tmp_path)
    assert prepared.path.read_text() == "a,b\n1.10,x\n2,y\n"
    assert (prepared.rows, prepared.columns) == (2, ("a", "b"))
    again = model_monitor_jobs.prepare_dataset(source, "csv", True, ["label"], tmp_path / ".." / tmp_path.name)
    assert again.sha256 == prepared.sha256
    headerless = model_monitor_jobs.prepare_dataset(source, "csv", False, ["_c2"], tmp_path)
    assert headerless.columns == ("_c0", "_c1")
    with pytest.raises(model_monitor_jobs.MonitoringSpecError, match=r"exclude_columns \['species'\] are not columns"):
        model_monitor_jobs.prepare_dataset(source, "csv", True, ["species"], tmp_path)


def test_json_lines_and_parquet_baselines_drop_the_label(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = tmp_path / "in.jsonl"
    lines.write_text('{"a": 1, "label": "x"}\n{"a": 2.5, "label": "y"}\n')
    prepared = model_monitor_jobs.prepare_dataset(lines, "json", True, ["label"], tmp_path)
    assert prepared.path.read_text() == '{"a":1}\n{"a":2.5}\n'
    table = tmp_path / "in.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "label": ["x", "y"]}), table)
    prepared = model_monitor_jobs.prepare_dataset(table, "parquet", True, ["label"], tmp_path)
    assert pq.read_table(prepared.path).column_names == ["a"] and prepared.rows == 2


def test_violation_tables_and_summaries():
    violations = [{"feature_name": "petal_length", "constraint_check_type": "baseline_drift_check",
                   "description": "Baseline drift distance: 0.6 exceeds threshold: 0.1"},
                  {"feature_name": "petal_length", "constraint_check_type": "missing_column_check",
                   "description": "There are missing columns"}]
    table = model_monitor_jobs.violations_table(violations)
    assert table.splitlines()[0].split() == ["feature", "check", "description"]
    assert "petal_length  baseline_drift_check  Baseline drift distance: 0.6" in table
    assert model_monitor_jobs.violation_summary(violations) == {"baseline_drift_check": ["petal_length"],
                                                        "missing_column_check": ["petal_length"]}
    assert model_monitor_jobs.violations_table([]) == "no violations"
