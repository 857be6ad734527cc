"""`make up`: the emulator plus `airflow standalone` (UI on http://localhost:8080), until Ctrl-C."""

from __future__ import annotations

import argparse
import subprocess
import sys

from airflow_env import REPO, airflow_env, migrate

from sagemaker_emulator.launcher import EmulatorProcess


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emulator-port", type=int, default=4566)
    args = parser.parse_args()
    log_path = REPO / ".airflow" / "emulator.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with EmulatorProcess(args.emulator_port, log=log_path) as emulator:
        print(f"emulator running at {emulator.url} (log: {log_path})", flush=True)
        env = airflow_env(emulator.url)
        migrate(env)
        # standalone prints the admin password and serves the UI on :8080.
        standalone = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env)
        try:
            return standalone.wait()
        except KeyboardInterrupt:
            standalone.terminate()
            return standalone.wait()


if __name__ == "__main__":
    sys.exit(main())
