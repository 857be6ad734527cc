"""The environment Airflow runs with locally: this repository's DAGs and plugins, a home under
``.airflow/``, and the ``aws_default`` connection pointing at the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
# Not resolved: .venv/bin/python is a symlink to the base interpreter, whose folder has no `airflow`.
VENV_BIN = str(Path(sys.executable).parent)


def airflow_env(emulator_url: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update({
        # `airflow standalone` starts its components as plain `airflow ...` commands: the virtualenv's
        # bin/ must come first on PATH even when nobody activated the virtualenv.
        "PATH": os.pathsep.join([VENV_BIN, *[p for p in env.get("PATH", "").split(os.pathsep) if p]]),
        "AIRFLOW_HOME": env.get("AIRFLOW_HOME", str(REPO / ".airflow")),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The emulator accepts any key pair: these are placeholders, not credentials.
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": "emulator", "password": "emulator",
            "extra": {"region_name": REGION, "endpoint_url": emulator_url}}),
        "AWS_ACCESS_KEY_ID": "emulator",
        "AWS_SECRET_ACCESS_KEY": "emulator",
        "AWS_DEFAULT_REGION": REGION,
    })
    return env


def airflow(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(VENV_BIN) / "airflow"), *args], env=env, **kwargs)


def migrate(env: dict[str, str]) -> None:
    """Create or upgrade the metadata database (idempotent)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    result = airflow("db", "migrate", env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}")
