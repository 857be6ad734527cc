"""Release runs of a pipeline written for one test: `airflow dags test` in a subprocess, and its log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# The iris pipeline's sections a test release keeps (the others need more than one endpoint's worth of time).
KEPT_SECTIONS = ("description", "owner", "model", "artifacts", "endpoint", "smoke_test")


def write_pipeline(folder: Path, name: str, model_dir: Path, **sections: Any) -> None:
    """The iris pipeline as ``name`` serving ``model_dir``, without retries, plus ``sections`` (e.g. promotion)."""
    iris = yaml.safe_load((REPO / "include/pipelines/iris.yaml").read_text())
    document = {key: iris[key] for key in KEPT_SECTIONS}
    document.update(name=name, retries=0, **sections)
    document["model"] = {**document["model"], "source": str(model_dir)}
    document["endpoint"] = {**document["endpoint"], "name": name}
    document["smoke_test"] = {**document["smoke_test"],
                              "payload_file": str(REPO / "include/data/iris_sample.csv")}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def run_release(tmp_path: Path, name: str, model_dir: Path, **sections: Any) -> tuple[int, str]:
    """`airflow dags test` of the release DAG built from a folder holding only this pipeline."""
    write_pipeline(tmp_path / "pipelines", name, model_dir, **sections)
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
