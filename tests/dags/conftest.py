"""The parsed dags/ folder for the DAG test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    # Imported here, not at the top: pytest loads this conftest before the root conftest's
    # pytest_configure sets AIRFLOW_HOME, and Airflow reads its home when first imported.
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    for stat in sorted(bag.dagbag_stats, key=lambda s: s.file):
        print(f"parse time {stat.file}: {stat.duration.total_seconds():.3f} s ({stat.dag_num} DAGs)")
    return bag


@pytest.fixture(scope="module")
def dags(dagbag) -> dict:
    assert dagbag.import_errors == {}
    return dagbag.dags


def upstream(dag, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).upstream_task_ids)
