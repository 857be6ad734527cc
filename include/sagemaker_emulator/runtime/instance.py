"""One instance of a production variant: a real worker process serving the SageMaker container contract.

An ``Instance`` starts ``python -m sagemaker_emulator.runtime.worker`` and learns over a status pipe
whether the model loaded (and on which port) or why not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sagemaker_emulator.runtime.telemetry import LogSink

log = logging.getLogger(__name__)

# Variables a worker inherits from the emulator; AWS credentials and the like are not among them.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


class WorkerStartError(Exception):
    """An instance could not start; ``reason`` becomes the endpoint's FailureReason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ContainerSpec:
    """What a worker needs to emulate one container of a model."""

    image: str
    environment: dict[str, str] = field(default_factory=dict)
    model_data_s3_uri: str | None = None
    model_data_url: str | None = None  # the same object over the emulator's own S3 (HTTP, path-style)
    container_name: str = "container_1"


def new_instance_id() -> str:
    return "i-" + secrets.token_hex(9)[:17]


class Instance:
    """One running worker process."""

    def __init__(self, variant: str, spec: ContainerSpec, workdir: Path, logs: LogSink):
        self.variant = variant
        self.spec = spec
        self.id = new_instance_id()
        self.model_dir = workdir / self.id / "model"
        self.logs = logs
        self.log_stream = logs.stream_for(variant, self.id)
        self.port: int | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = False
        self.inflight = 0
        self._pump: asyncio.Task | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, startup_timeout: float) -> None:
        """Start the process and wait until its model is loaded; raise ``WorkerStartError`` if not."""
        self.model_dir.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sagemaker_emulator.runtime.worker", *self._arguments(write_fd),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, pass_fds=(write_fd,), env=self._environment(),
                start_new_session=True,  # a Ctrl-C at the emulator's terminal is ours to relay
                preexec_fn=self._before_exec,
            )
        finally:
            os.close(write_fd)
        self._pump = asyncio.create_task(self._forward_output())
        try:
            status = await asyncio.wait_for(asyncio.to_thread(_read_status, read_fd), startup_timeout)
        except asyncio.TimeoutError:
            await self.stop(grace=0)
            raise WorkerStartError(
                f"The primary container for production variant {self.variant} did not pass the ping health "
                f"check within {startup_timeout:.0f} seconds.") from None
        finally:
            os.close(read_fd)
        if status.get("status") != "ready":
            await self.stop(grace=5)
            raise WorkerStartError(status.get("reason") or
                                   f"The worker for production variant {self.variant} exited during start-up.")
        self.port = int(status["port"])

    def _before_exec(self) -> None:
        """Runs in the child between fork and exec: where a subclass sets resource limits."""
        _die_with_parent()

    def _arguments(self, status_fd: int) -> list[str]:
        args = ["--model-dir", str(self.model_dir), "--status-fd", str(status_fd),
                "--container-name", self.spec.container_name]
        if self.spec.model_data_url:
            args += ["--model-data-url", self.spec.model_data_url,
                     "--model-data-source", self.spec.model_data_s3_uri or self.spec.model_data_url]
        return args

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV}
        env.update({"PYTHONUNBUFFERED": "1", "SAGEMAKER_PROGRAM": "inference.py"})
        env.update({k: str(v) for k, v in self.spec.environment.items()})
        return env

    async def _forward_output(self) -> None:
        assert self.process and self.process.stdout
        batch: list[str] = []
        while True:
            line = await self.process.stdout.readline()
            if line:
                batch.append(line.decode(errors="replace").rstrip("\n"))
            # Flush when the pipe has nothing more buffered, so logs appear promptly but in batches.
            if batch and (not line or len(self.process.stdout._buffer) == 0 or len(batch) >= 100):  # noqa: SLF001
                self.logs.write(self.log_stream, batch)
                batch = []
            if not line:
                return

    async def wait_exit(self) -> int:
        assert self.process
        code = await self.process.wait()
        if self._pump:
            await asyncio.gather(self._pump, return_exceptions=True)
        return code

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds, as SageMaker stops containers."""
        self.stopping = True
        process = self.process
        if process and process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                await asyncio.wait_for(process.wait(), grace)
            except (asyncio.TimeoutError, ProcessLookupError):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await process.wait()
        if self._pump:
            await asyncio.gather(self._pump, return_exceptions=True)
        shutil.rmtree(self.model_dir.parent, ignore_errors=True)


def _die_with_parent() -> None:
    """Linux: have the kernel SIGTERM the worker if the emulator dies without stopping it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _read_status(fd: int) -> dict:
    """Read the worker's single JSON status line (blocking; runs in a thread)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    try:
        return json.loads(data.decode() or "{}")
    except ValueError:
        return {"status": "failed", "reason": f"worker wrote an unreadable status line: {data[:200]!r}"}
