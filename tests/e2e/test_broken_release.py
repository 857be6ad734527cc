"""A release of a broken model fails, and the task's log says why (as `airflow dags test` shows it)."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from tests.e2e.release_runs import REPO, run_release, task_log

pytestmark = pytest.mark.e2e


def test_model_fn_raising_fails_the_deploy_with_the_reason(emulator, airflow_db, tmp_path):
    model_dir = tmp_path / "broken-model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "inference.py").write_text(textwrap.dedent("""
        def model_fn(model_dir):
            raise RuntimeError("the weights file is corrupt")

        def predict_fn(data, model):
            return data
    """))
    returncode, output = run_release(tmp_path, "broken-load", model_dir)
    assert returncode != 0
    deploy_log = task_log(output, "deploy_endpoint")
    assert "Task failed with exception" in deploy_log
    assert "model_fn raised RuntimeError: the weights file is corrupt" in deploy_log
    assert "[DAG TEST] starting task_id=smoke_test" not in output
    described = emulator.client("sagemaker").describe_endpoint(EndpointName="broken-load")
    assert described["EndpointStatus"] == "Failed"


def test_an_unsafe_model_folder_fails_packaging_with_the_reason(emulator, airflow_db, tmp_path):
    model_dir = tmp_path / "linked-model"
    shutil.copytree(REPO / "include/models/iris/code", model_dir / "code")
    (model_dir / "secrets").symlink_to("/etc/passwd")
    returncode, output = run_release(tmp_path, "broken-archive", model_dir)
    assert returncode != 0
    package_log = task_log(output, "package_model")
    assert "Task failed with exception" in package_log
    assert "secrets" in package_log and "link" in package_log.lower()
    assert "[DAG TEST] starting task_id=ensure_model" not in output
