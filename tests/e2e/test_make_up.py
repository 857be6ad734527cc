"""`make up` as a user runs it: from a shell without the virtualenv on PATH, Airflow comes up with every DAG
of dags/ listed by its REST API, and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from sagemaker_emulator.launcher import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HEALTHY_WITHIN = 150  # seconds from `make up` until every Airflow component reports healthy (2 shared cores)
DAGS_LISTED_WITHIN = 60  # seconds more until the dag-processor has stored every DAG file
STOPPED_WITHIN = 60  # seconds from Ctrl-C until `make up` has exited
COMPONENTS = ("airflow standalone", "airflow scheduler", "airflow dag-processor", "airflow triggerer",
              "airflow api_server", "LocalExecutor", "sagemaker_emulator.cli serve")


class MakeUp:
    """`make up` in a session of its own, as in a terminal: Ctrl-C signals its whole process group."""

    def __init__(self, home: Path):
        self.home = home
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.log_path = home / "make-up.log"
        self.process: subprocess.Popen | None = None
        self.seen: dict[int, psutil.Process] = {}  # every process of it observed, for the clean-up

    def start(self) -> None:
        env = user_shell_env(AIRFLOW_HOME=str(self.home), AIRFLOW__API__PORT=self.api_url.rsplit(":", 1)[1],
                             EMULATOR_PORT=str(free_port()))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(["make", "up"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def get_json(self, path: str, token: str | None = None) -> dict:
        request = urllib.request.Request(f"{self.api_url}{path}",
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def token(self) -> str:
        password = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        request = urllib.request.Request(f"{self.api_url}/auth/token", method="POST",
                                         data=json.dumps({"username": "admin", "password": password}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["access_token"]

    def wait_for(self, what: str, within: float, check) -> object:
        """Poll check() until it returns something truthy; fail early if `make up` exits."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"`make up` exited with code {self.process.returncode} before {what}:\n{self.log_tail()}")
            try:
                result = check()
            except (OSError, ValueError, KeyError):
                result = None
            if result:
                return result
            time.sleep(1)
        pytest.fail(f"no {what} within {within} s:\n{self.log_tail()}")


def user_shell_env(**settings: str) -> dict[str, str]:
    """This environment minus the test session's Airflow and AWS settings, the virtualenv and a parent make."""
    venv_bin = Path(sys.executable).parent
    path = [entry for entry in os.environ.get("PATH", "").split(os.pathsep)
            if entry and Path(entry).absolute() != venv_bin.absolute()]
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AIRFLOW", "AWS_", "MAKE", "MFLAGS", "PYTEST", "VIRTUAL_ENV", "PYTHON"))}
    return {**env, "PATH": os.pathsep.join(path or ["/usr/bin", "/bin"]), **settings}


def processes_of(make_up: MakeUp) -> list[psutil.Process]:
    """Everything `make up` started: its process tree, and any process whose environment carries its
    AIRFLOW_HOME (one that left the tree; processes renamed by setproctitle lose their environment, but the
    test takes the tree while they are in it)."""
    found = {}
    try:
        found.update({p.pid: p for p in psutil.Process(make_up.process.pid).children(recursive=True)})
    except psutil.NoSuchProcess:
        pass
    for process in psutil.process_iter(["environ"]):
        if (process.info["environ"] or {}).get("AIRFLOW_HOME") == str(make_up.home):
            found.setdefault(process.pid, process)
    make_up.seen.update(found)
    return [process for process in found.values() if running(process)]


def running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        try:
            lines.append(f"{process.pid} {' '.join(process.cmdline())[:150]}")
        except psutil.NoSuchProcess:
            pass
    return "\n".join(lines)


@pytest.fixture
def make_up(tmp_path: Path):
    started = MakeUp(tmp_path / "airflow-home")
    started.home.mkdir()
    started.start()
    yield started
    processes_of(started)
    leftovers = [process for process in started.seen.values() if running(process)]  # when the test failed
    for process in leftovers:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(leftovers, timeout=10)
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def test_make_up_serves_the_dags_and_ctrl_c_stops_every_process_it_started(make_up: MakeUp):
    health = make_up.wait_for("healthy Airflow", HEALTHY_WITHIN, lambda: all_healthy(make_up))
    assert set(health) >= {"metadatabase", "scheduler", "triggerer", "dag_processor"}

    token = make_up.token()
    dag_files = sorted(path.name for path in (REPO / "dags").glob("*.py"))
    listed = make_up.wait_for("DAG listed from every file of dags/", DAGS_LISTED_WITHIN,
                              lambda: dags_of_every_file(make_up, token, dag_files))
    assert {"ab_test", "model_monitoring", "release_iris"} <= {dag["dag_id"] for dag in listed}
    assert make_up.get_json("/api/v2/importErrors", token)["total_entries"] == 0

    started = processes_of(make_up)
    commands = describe(started)
    assert all(component in commands for component in COMPONENTS), f"components missing:\n{commands}"

    make_up.ctrl_c()
    try:
        returncode = make_up.process.wait(timeout=STOPPED_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`make up` still running {STOPPED_WITHIN} s after Ctrl-C:\n{make_up.log_tail()}")
    # make itself ends by the SIGINT it received, as after any Ctrl-C; the recipe (scripts/up.py) exited 0,
    # or make would have printed "make: *** [Makefile:..: up] Error <code>".
    log = make_up.log_path.read_text(errors="replace")
    assert returncode in (0, -signal.SIGINT) and "] Error" not in log, make_up.log_tail()
    left = [process for process in started if running(process)] + processes_of(make_up)
    assert left == [], f"still running after Ctrl-C:\n{describe(left)}"
    assert "Airflow and the emulator are stopped" in log


def all_healthy(make_up: MakeUp) -> dict | None:
    health = make_up.get_json("/api/v2/monitor/health")
    return health if all(component["status"] == "healthy" for component in health.values()) else None


def dags_of_every_file(make_up: MakeUp, token: str, dag_files: list[str]) -> list[dict] | None:
    dags = make_up.get_json("/api/v2/dags?limit=100", token)["dags"]
    return dags if sorted({Path(dag["fileloc"]).name for dag in dags}) == dag_files else None
