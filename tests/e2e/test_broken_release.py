"""A release of a broken model fails, and the task's log says why (as `airflow dags test` shows it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def write_pipeline(folder: Path, name: str, model_dir: Path) -> None:
    """A copy of the iris pipeline pointing at ``model_dir``, without retries."""
    text = (REPO / "include/pipelines/iris.yaml").read_text()
    text = text.replace("name: iris\n", f"name: {name}\n", 1).replace("  name: iris\n", f"  name: {name}\n", 1)
    text = text.replace("source: ../models/iris", f"source: {model_dir}").replace("retries: 2", "retries: 0")
    text = text.replace("payload_file: ../data/iris_sample.csv",
                        f"payload_file: {REPO / 'include/data/iris_sample.csv'}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


def run_release(tmp_path: Path, name: str, model_dir: Path) -> tuple[int, str]:
    """`airflow dags test` of the release DAG built from a folder holding only this pipeline."""
    write_pipeline(tmp_path / "pipelines", name, model_dir)
    env = {**os.environ, "SAGEMAKER_OPS_PIPELINES_DIR": str(tmp_path / "pipelines")}
    result = subprocess.run([str(Path(sys.executable).with_name("airflow")), "dags", "test",
                             f"release_{name.replace('-', '_')}"],
                            env=env, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def task_log(output: str, task_id: str) -> str:
    """What the run printed while ``task_id`` ran."""
    start = output.index(f"[DAG TEST] starting task_id={task_id}")
    end = output.find("[DAG TEST] end task", start)
    return output[start:end if end != -1 else None]


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
