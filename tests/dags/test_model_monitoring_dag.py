"""The model_monitoring DAG and the release DAG's monitoring steps: shape, schedule, house rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.dags.conftest import upstream

REPO = Path(__file__).resolve().parents[2]


def test_monitoring_runs_hourly_and_when_a_monitored_endpoint_is_released(dags):
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    dag = dags["model_monitoring"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert isinstance(dag.timetable.timetable, CronTriggerTimetable)
    assert dag.timetable.timetable.expression == "0 * * * *"
    assert [asset.uri for asset in dag.timetable.asset_condition.objects] == ["sagemaker://endpoint/iris-tree"]
    assert dag.catchup is False and dag.max_active_runs == 1


def test_monitoring_follows_the_house_rules(dags):
    dag = dags["model_monitoring"]
    assert {"monitoring", "data-quality"} <= set(dag.tags)
    assert "iris-tree-data-quality" in dag.doc_md and "enforce_policy" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == "data-team" and task.retries >= 2, task.task_id
    assert set(dag.params) == {"window_start", "window_end"}


def test_each_monitored_pipeline_gets_executions_check_report_and_policy(dags):
    dag = dags["model_monitoring"]
    order = ["iris_tree.latest_executions", "iris_tree.check", "iris_tree.drift_report", "iris_tree.enforce_policy"]
    assert sorted(dag.task_ids) == sorted(order)
    for before, after in zip(order, order[1:]):
        assert before in upstream(dag, after), f"{before} >> {after}"
    check = dag.get_task("iris_tree.check")
    assert (check.endpoint_name, check.window_minutes, check.policy, check.mode) == ("iris-tree", 60, "ignore",
                                                                                     "local")
    assert check.output_s3_uri == "s3://sagemaker-ops-artifacts/monitoring/checks"
    report = dag.get_task("iris_tree.drift_report")
    assert report.report_s3_uri == "s3://sagemaker-ops-artifacts/monitoring/drift-reports"


def test_the_release_creates_baseline_and_schedule_before_publishing(dags):
    dag = dags["release_iris_tree"]
    assert upstream(dag, "create_baseline") == {"smoke_test"}
    assert upstream(dag, "ensure_monitoring_schedule") >= {"create_baseline", "deploy_endpoint"}
    assert "ensure_monitoring_schedule" in upstream(dag, "publish_endpoint")
    baseline = dag.get_task("create_baseline")
    assert (baseline.exclude_columns, baseline.mode, baseline.dataset_format) == (["species"], "local", "csv")
    schedule = dag.get_task("ensure_monitoring_schedule")
    assert (schedule.schedule_name, schedule.schedule_expression, schedule.max_runtime_seconds) == (
        "iris-tree-data-quality", "cron(0 * ? * * *)", 1800)
    assert "create_baseline" not in dags["release_iris"].task_ids  # no monitoring section, no monitoring steps


def test_the_dag_file_imports_nothing_heavy_at_module_top():
    tree = ast.parse((REPO / "dags" / "model_monitoring.py").read_text())
    top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
           for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert not top & {"pandas", "matplotlib", "numpy", "pyarrow", "data_quality", "sagemaker", "boto3"}
