"""`make up`: the emulator plus `airflow standalone` (UI on http://localhost:8080), until Ctrl-C.

Ctrl-C (or SIGTERM) stops standalone with every component it started (api-server, scheduler,
dag-processor, triggerer and their task processes), then the emulator, and exits with code 0.
``AIRFLOW__API__PORT=...`` serves the UI on another port, ``--emulator-port`` moves the emulator.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from airflow_env import REPO, VENV_BIN, airflow_env

from sagemaker_emulator.launcher import EmulatorProcess, port_in_use

READY_TIMEOUT = 300  # seconds until every component reports healthy, before up.py says it is still waiting
STOP_GRACE = 30  # seconds standalone gets to stop its components before they are killed
PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


class StopRequested(Exception):
    """The user pressed Ctrl-C (SIGINT) or something sent SIGTERM."""


class Shutdown:
    """Signal handling while stopping: a second Ctrl-C kills at once instead of waiting."""

    hurry = False

    @classmethod
    def request_stop(cls, signum: int, frame: object) -> None:
        raise StopRequested(signal.Signals(signum).name)

    @classmethod
    def insist(cls, signum: int, frame: object) -> None:
        cls.hurry = True

    @classmethod
    def handle(cls, handler) -> None:
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emulator-port", type=int, default=4566)
    args = parser.parse_args()
    api_port = int(os.environ.get("AIRFLOW__API__PORT", "8080"))
    if port_in_use(api_port):
        print(f"port {api_port} is already in use: stop whatever listens there or serve Airflow on another "
              f"port (AIRFLOW__API__PORT=...)", file=sys.stderr)
        return 1
    home = Path(os.environ.get("AIRFLOW_HOME", REPO / ".airflow"))
    home.mkdir(parents=True, exist_ok=True)
    become_subreaper()
    Shutdown.handle(Shutdown.request_stop)
    emulator = EmulatorProcess(args.emulator_port, log=home / "emulator.log")
    standalone: subprocess.Popen | None = None
    try:
        try:
            emulator.start()
        except RuntimeError as error:  # its port is taken or it did not answer: the message says which
            print(error, file=sys.stderr)
            return 1
        print(f"emulator running at {emulator.url} (log: {emulator.log})", flush=True)
        env = standalone_env(emulator.url, api_port)  # standalone creates or upgrades the database itself
        # A session of its own: a terminal's Ctrl-C would reach each component twice (directly, then from
        # standalone), which can deadlock the dag-processor; stop_standalone signals standalone alone.
        standalone = subprocess.Popen([str(Path(VENV_BIN) / "airflow"), "standalone"], env=env,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        returncode = serve(standalone, api_port, home)
        print(f"airflow standalone exited on its own with code {returncode}", file=sys.stderr)
        return returncode or 1
    except StopRequested as stop:
        print(f"\n{stop}: stopping Airflow, then the emulator (Ctrl-C again to kill at once)", flush=True)
        return 0
    finally:
        Shutdown.handle(Shutdown.insist)
        if standalone is not None:
            stop_standalone(standalone)
        stop_leftovers(spare=emulator)  # Airflow's stragglers first: they may still be calling the emulator
        emulator.stop()
        stop_leftovers()
        print("Airflow and the emulator are stopped", flush=True)


def standalone_env(emulator_url: str, api_port: int) -> dict[str, str]:
    env = airflow_env(emulator_url)
    # Only this machine reaches the UI: the simple auth manager keeps its passwords in plain text.
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    # Tasks reach the API server's execution API; Airflow's default URL assumes port 8080.
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{api_port}/execution/")
    return env


def serve(standalone: subprocess.Popen, api_port: int, home: Path) -> int:
    """Wait for standalone to exit; say where the UI is once every component is healthy."""
    deadline = time.monotonic() + READY_TIMEOUT
    announced = False
    while standalone.poll() is None:
        if not announced and airflow_healthy(api_port):
            announce(api_port, home)
            announced = True
        elif not announced and time.monotonic() > deadline:
            print(f"Airflow is not healthy after {READY_TIMEOUT} s: see the log above and "
                  f"http://localhost:{api_port}/api/v2/monitor/health", file=sys.stderr, flush=True)
            announced = True
        time.sleep(1)
    return standalone.returncode


def airflow_healthy(api_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=2) as response:
            components = json.load(response)
    except (OSError, ValueError):
        return False
    return all(component.get("status") == "healthy" for component in components.values())


def announce(api_port: int, home: Path) -> None:
    password_file = home / "simple_auth_manager_passwords.json.generated"
    login = f"user admin, password in {password_file}" if password_file.exists() else "log in as configured"
    print(f"\nAirflow UI: http://localhost:{api_port}  ({login})\nCtrl-C stops Airflow and the emulator.\n",
          flush=True)


def stop_standalone(standalone: subprocess.Popen) -> None:
    """Ctrl-C for standalone alone: it stops each component with one SIGTERM. (A second signal to a component
    can deadlock it: the dag-processor's handler logs under a lock the first handler holds.) Components
    still running after the grace are killed with their whole process group."""
    with_process(lambda: os.kill(standalone.pid, signal.SIGINT))
    deadline = time.monotonic() + STOP_GRACE
    while standalone.poll() is None and time.monotonic() < deadline and not Shutdown.hurry:
        time.sleep(0.2)
    if standalone.poll() is None:
        reason = "asked twice" if Shutdown.hurry else f"airflow standalone did not stop within {STOP_GRACE} s"
        print(f"{reason}: killing it and its components", file=sys.stderr, flush=True)
        signal_group(standalone.pid, signal.SIGKILL)
    standalone.wait()


def stop_leftovers(spare: EmulatorProcess | None = None) -> None:
    """Task processes run in process groups of their own; once their parents are gone they are re-parented
    to this process (a subreaper), so every process `make up` started is found here and stopped."""
    spared = set(process_tree(spare.process.pid)) if spare and spare.process else set()
    leftovers = [process for process in psutil.Process().children(recursive=True) if process.pid not in spared]
    for process in leftovers:
        with_process(process.terminate)
    _, alive = psutil.wait_procs(leftovers, timeout=0 if Shutdown.hurry else 10)
    for process in alive:
        with_process(process.kill)
    psutil.wait_procs(alive, timeout=5)  # reap them


def process_tree(pid: int) -> list[int]:
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def with_process(action) -> None:
    """Run action on a process that may have exited meanwhile."""
    try:
        action()
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass


def become_subreaper() -> None:
    """Orphaned descendants (a task whose supervisor died) become this process's children, not init's."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


if __name__ == "__main__":
    sys.exit(main())
