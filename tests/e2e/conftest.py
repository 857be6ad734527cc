"""The DAGs under test, parsed once per module against the session's emulator and Airflow database."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dags(emulator, airflow_db) -> dict:
    # Module scope: dag.test() runs leave state on the DAG objects; each module starts from a fresh parse.
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags
