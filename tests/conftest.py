"""Shared fixtures: a real emulator process, AWS settings pointing at it, and an Airflow home.

Environment is set in ``pytest_configure`` so that Airflow, when first imported by a test, reads the
test AIRFLOW_HOME and the connection that points at the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from sagemaker_emulator.launcher import EmulatorProcess, free_port

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
# Tests run the emulator's clock 20x faster: the 60 s invocation timeout becomes 3 s.
TIME_SCALE = 20


EMULATOR_PORT = free_port()
EMULATOR_URL = f"http://127.0.0.1:{EMULATOR_PORT}"


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="airflow-home-"))
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"region_name": REGION, "endpoint_url": EMULATOR_URL},
        }),
    })
    os.environ.pop("AWS_PROFILE", None)


@dataclass
class RunningEmulator:
    url: str
    port: int
    process: EmulatorProcess
    log_path: Path

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> RunningEmulator:
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with EmulatorProcess(EMULATOR_PORT, time_scale=TIME_SCALE, log=log_path) as process:
        yield RunningEmulator(url=EMULATOR_URL, port=EMULATOR_PORT, process=process, log_path=log_path)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database in the session's AIRFLOW_HOME (dag.test() needs one)."""
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL, env=os.environ.copy())
    return Path(os.environ["AIRFLOW_HOME"])
