"""The container contract: environment in, files, metrics file, failure file and exit status out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_quality import main
from tests.unit.test_data_quality_check import capture_record, sample, write_capture

ANALYZER_ENV = ("dataset_format", "dataset_source", "output_path", "baseline_statistics", "baseline_constraints",
                "start_time", "end_time", "sagemaker_endpoint_name", "sagemaker_monitoring_schedule_name",
                "publish_cloudwatch_metrics", "categorical_drift_method", "metrics_path", "failure_path",
                "record_preprocessor_script", "post_analytics_processor_script")


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in ANALYZER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("failure_path", str(tmp_path / "failure"))

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))
    return set_env


@pytest.fixture
def baseline_dir(tmp_path, env):
    data = tmp_path / "baseline-input"
    data.mkdir()
    (data / "train.csv").write_text("x,n,cat\n" + "\n".join(",".join(row) for row in sample(500, seed=1)) + "\n")
    env(dataset_format=json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
        dataset_source=data, output_path=tmp_path / "baseline", categorical_drift_method="LInfinity")
    assert main([]) == 0
    return tmp_path / "baseline"


def test_a_baseline_job_writes_statistics_and_constraints(capsys, baseline_dir):
    statistics = json.loads((baseline_dir / "statistics.json").read_text())
    constraints = json.loads((baseline_dir / "constraints.json").read_text())
    assert statistics["dataset"] == {"item_count": 500}
    assert [f["name"] for f in constraints["features"]] == ["x", "n", "cat"]
    assert constraints["monitoring_config"]["distribution_constraints"]["categorical_drift_method"] == "LInfinity"
    assert "wrote statistics.json and constraints.json for 3 feature(s), 500 row(s)" in capsys.readouterr().out


def test_a_monitoring_job_writes_violations_statistics_and_metrics(baseline_dir, tmp_path, env, capsys):
    rows = sample(300, seed=2, shift=1.0)
    lines = [capture_record(",".join(row)) for row in rows]
    lines.append(capture_record("1,2,a").replace("2026-11-24T20", "2026-11-24T23"))  # outside the window
    root = write_capture(tmp_path / "endpointdata", lines)
    env(dataset_format=json.dumps({"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}}),
        dataset_source=root, output_path=tmp_path / "report", baseline_statistics=baseline_dir / "statistics.json",
        baseline_constraints=baseline_dir / "constraints.json", start_time="2026-11-24T20:00:00Z",
        end_time="2026-11-24T21:00:00Z", sagemaker_endpoint_name="churn", sagemaker_monitoring_schedule_name="hourly",
        publish_cloudwatch_metrics="Enabled", metrics_path=tmp_path / "metrics" / "cloudwatch" / "m.jsonl")
    assert main([]) == 0
    violations = json.loads((tmp_path / "report" / "constraint_violations.json").read_text())["violations"]
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [("x", "baseline_drift_check")]
    assert json.loads((tmp_path / "report" / "statistics.json").read_text())["dataset"] == {"item_count": 300}
    metrics = [json.loads(line) for line in (tmp_path / "metrics" / "cloudwatch" / "m.jsonl").read_text().splitlines()]
    assert {m["Namespace"] for m in metrics} == {"/aws/sagemaker/Endpoints/data-metric"}
    drift = next(m for m in metrics if m["MetricName"] == "feature_baseline_drift_x")
    assert set(drift) == {"Namespace", "MetricName", "Dimensions", "Value", "Unit"} and drift["Value"] > 0.2
    assert drift["Dimensions"] == [{"Name": "EndpointName", "Value": "churn"}, {"Name": "ScheduleName", "Value": "hourly"}]
    out = capsys.readouterr().out
    assert "300 record(s) analysed, 0 unparseable, 1 outside the window; 1 violation(s)" in out
    assert not (tmp_path / "failure").exists()


def test_metrics_are_not_written_when_publishing_is_disabled(baseline_dir, tmp_path, env):
    root = write_capture(tmp_path / "endpointdata", [capture_record(",".join(r)) for r in sample(50, seed=3)])
    env(dataset_format=json.dumps({"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}}),
        dataset_source=root, output_path=tmp_path / "report", baseline_statistics=baseline_dir / "statistics.json",
        baseline_constraints=baseline_dir / "constraints.json", publish_cloudwatch_metrics="Disabled",
        metrics_path=tmp_path / "m.jsonl")
    assert main([]) == 0
    assert not (tmp_path / "m.jsonl").exists()
    assert (tmp_path / "report" / "constraint_violations.json").exists()


@pytest.mark.parametrize("values, message", [
    ({}, "The environment variable dataset_format is not set"),
    ({"dataset_format": '{"orc": {}}', "dataset_source": "/tmp", "output_path": "/tmp/x"}, "unknown key 'orc'"),
    ({"dataset_format": '{"csv": {}}', "dataset_source": "/nonexistent/data", "output_path": "/tmp/x"},
     "dataset_source '/nonexistent/data' does not exist"),
    ({"dataset_format": '{"csv": {}}', "dataset_source": "/tmp", "output_path": "/tmp/x",
      "baseline_statistics": "/nonexistent/statistics.json"}, "cannot read the baseline statistics file"),
    ({"dataset_format": '{"csv": {}}', "dataset_source": "/tmp", "output_path": "/tmp/x",
      "baseline_statistics": __file__, "start_time": "yesterday"}, "is not valid JSON"),
    ({"dataset_format": '{"csv": {}}', "dataset_source": "/tmp", "output_path": "/tmp/x",
      "record_preprocessor_script": "/opt/ml/processing/code/pre.py"}, "record_preprocessor_script is not supported"),
])
def test_bad_input_fails_with_the_reason_in_the_failure_file(env, tmp_path, capsys, values, message):
    env(**values)
    assert main([]) == 1
    reason = (tmp_path / "failure").read_text()
    assert message in reason
    assert message in capsys.readouterr().err


def test_a_bad_window_time_is_named(baseline_dir, tmp_path, env):
    env(dataset_format=json.dumps({"sagemakerCaptureJson": {}}), dataset_source=tmp_path, output_path=tmp_path / "r",
        baseline_statistics=baseline_dir / "statistics.json", start_time="yesterday")
    assert main([]) == 1
    assert "start_time='yesterday' is not an ISO-8601 time such as 2026-11-24T20:00:00Z" in (tmp_path / "failure").read_text()


def test_python_dash_m_runs_the_analyzer(tmp_path):
    """The emulator starts the analyzer as `python -m data_quality` in a subprocess."""
    (tmp_path / "d.csv").write_text("a,b\n1,x\n2,y\n")
    environment = {key: value for key, value in os.environ.items() if key not in ANALYZER_ENV}
    environment.update(dataset_format='{"csv": {"header": true}}', dataset_source=str(tmp_path / "d.csv"),
                       output_path=str(tmp_path / "out"), failure_path=str(tmp_path / "failure"))
    done = subprocess.run([sys.executable, "-m", "data_quality"], env=environment, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "statistics.json").read_text())["dataset"] == {"item_count": 2}
    environment["dataset_format"] = '{"xml": {}}'
    failed = subprocess.run([sys.executable, "-m", "data_quality"], env=environment, capture_output=True, text=True,
                            timeout=120, check=False)
    assert failed.returncode == 1 and "unknown key 'xml'" in Path(tmp_path / "failure").read_text()
