"""Start and stop an emulator process from Python (tests, the demo, benchmarks, ``make up``)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmulatorProcess:
    """``with EmulatorProcess(port) as emulator:`` runs ``sagemaker-emulator serve`` until the block ends."""

    def __init__(self, port: int, *, time_scale: float = 1.0, log: IO | Path | None = None,
                 startup_timeout: float = 60.0, workdir: Path | None = None):
        self.port = port
        self.workdir = workdir  # None: a fresh temporary folder
        self.url = f"http://127.0.0.1:{port}"
        self.time_scale = time_scale
        self.log = log
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> "EmulatorProcess":
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is already in use: stop whatever listens there "
                               f"or choose another port (EMULATOR_PORT=...)")
        output = self.log.open("w") if isinstance(self.log, Path) else self.log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sagemaker_emulator.cli", "serve", "--port", str(self.port),
             "--time-scale", str(self.time_scale), *(["--workdir", str(self.workdir)] if self.workdir else [])],
            stdout=output, stderr=subprocess.STDOUT if output is not None else None)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator exited with code {self.process.returncode} during start-up")
            try:
                with urllib.request.urlopen(f"{self.url}/_emulator/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the emulator did not answer on {self.url} within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # the emulator stops its model workers on the way out
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "EmulatorProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
