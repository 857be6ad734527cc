"""Shared fixtures: a real emulator process, AWS settings pointing at it, and an Airflow home.

Environment is set in ``pytest_configure`` so that Airflow, when first imported by a test, reads the
test AIRFLOW_HOME and the connection that points at the emulator.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
# Tests run the emulator's clock 20x faster: the 60 s invocation timeout becomes 3 s.
TIME_SCALE = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


EMULATOR_PORT = _free_port()
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
    process: subprocess.Popen
    log_path: Path

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_emulator(port: int, log_path: Path, time_scale: float = TIME_SCALE) -> subprocess.Popen:
    """Start ``sagemaker-emulator serve`` and wait until it answers its health check."""
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sagemaker_emulator.cli", "serve", "--port", str(port),
         "--time-scale", str(time_scale)],
        stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("emulator did not become healthy within 60 s")


def stop_emulator(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> RunningEmulator:
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    process = start_emulator(EMULATOR_PORT, log_path)
    yield RunningEmulator(url=EMULATOR_URL, port=EMULATOR_PORT, process=process, log_path=log_path)
    stop_emulator(process)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database in the session's AIRFLOW_HOME (dag.test() needs one)."""
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True,
                   stdout=subprocess.DEVNULL, env=os.environ.copy())
    return Path(os.environ["AIRFLOW_HOME"])
