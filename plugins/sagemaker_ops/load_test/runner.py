"""Run a load test in its own process and stream its progress into a log.

The Locust process (:mod:`sagemaker_ops.load_test.locustfile`) gets the plan as a JSON file and the
AWS credentials in its environment only (never on its command line, never logged); its progress
lines are passed to the caller's logger as they come, and its result document is read back.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

from sagemaker_ops.load_test.plan import LoadTestPlan

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
STARTUP_ALLOWANCE_SECONDS = 60  # process start, imports, and the open model's drain, on top of the plan
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding sagemaker_ops (plugins/)


class LoadTestProcessFailed(RuntimeError):
    """The Locust process exited with an error (the message carries the end of its output)."""


def credentials_environment(credentials: Any) -> dict[str, str | None]:
    """The AWS connection's credentials (botocore's ReadOnlyCredentials) as the Locust process's environment:
    they reach it this way only, never on its command line or in a log."""
    return {"AWS_ACCESS_KEY_ID": credentials.access_key, "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_SESSION_TOKEN": credentials.token}


def run_load_test(plan: LoadTestPlan, credentials: dict[str, str | None], log: logging.Logger,
                  workdir: Path | None = None) -> dict[str, Any]:
    """Follow ``plan`` in a Locust process; its result document. ``credentials`` maps the
    ``AWS_*`` variable names to values (None: unset); nothing else of the caller's AWS setup leaks in."""
    with tempfile.TemporaryDirectory(prefix="load-test-", dir=workdir) as folder:
        plan_path, result_path = Path(folder, "plan.json"), Path(folder, "result.json")
        plan_path.write_text(json.dumps(plan.to_json()), encoding="utf-8")
        command = [sys.executable, "-m", "sagemaker_ops.load_test.locustfile", str(plan_path), str(result_path)]
        log.info("Load test of %s: %s model, %d stage(s), %.0f s, in its own process.", plan.endpoint_name,
                 plan.model, len(plan.stages), plan.duration_seconds)
        tail: deque[str] = deque(maxlen=20)
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=_environment(credentials), cwd=folder) as process:
            # A process that outlives its plan is stopped (reading its output would otherwise wait forever).
            watchdog = threading.Timer(plan.duration_seconds + STARTUP_ALLOWANCE_SECONDS, process.kill)
            watchdog.start()
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    tail.append(line.rstrip())
                    log.info("%s", line.rstrip())
                code = process.wait()
            finally:
                watchdog.cancel()
        if code != 0 or not result_path.exists():
            raise LoadTestProcessFailed(f"The load-test process exited with code {code}; its last lines:\n"
                                        + "\n".join(tail))
        return json.loads(result_path.read_text(encoding="utf-8"))


def _environment(credentials: dict[str, str | None]) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in CREDENTIAL_VARIABLES}
    environment.update({key: value for key, value in credentials.items() if value})
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), environment.get("PYTHONPATH")]))
    environment["PYTHONUNBUFFERED"] = "1"
    return environment
