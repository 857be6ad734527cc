"""Model worker processes: one OS process per instance of a production variant.

An ``Instance`` starts ``python -m sagemaker_emulator.runtime.worker`` and learns over a status pipe
whether the model loaded (and on which port) or why not. A ``VariantFleet`` keeps its instances
alive: an instance that dies is taken out of rotation at once and replaced, and the fleet keeps
serving on the others.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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


class VariantFleet:
    """The instances of one production variant, kept at the desired count."""

    def __init__(self, endpoint: str, variant: str, spec: ContainerSpec, workdir: Path, logs: LogSink,
                 startup_timeout: float, stop_grace: float):
        self.endpoint = endpoint
        self.variant = variant
        self.spec = spec
        self.workdir = workdir
        self.logs = logs
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.instances: list[Instance] = []
        self.desired = 0
        self.closed = False
        self._round_robin = itertools.count()
        self._supervisors: set[asyncio.Task] = set()
        self.on_change: Callable[[], None] = lambda: None
        self.multi_model = None  # a MultiModelHost (runtime/multimodel.py) when the model is multi-model

    @property
    def ready(self) -> list[Instance]:
        return [i for i in self.instances if not i.stopping]

    def pick(self, exclude: set[str] = frozenset()) -> Instance | None:
        """The next instance in rotation, preferring idle ones (round robin among the least busy)."""
        ready = [i for i in self.ready if i.id not in exclude]
        if not ready:
            return None
        start = next(self._round_robin) % len(ready)
        rotated = ready[start:] + ready[:start]
        return min(rotated, key=lambda instance: instance.inflight)

    async def scale_to(self, count: int) -> None:
        """Start or stop instances until ``count`` serve; raise ``WorkerStartError`` if one cannot start."""
        missing = count - len(self.ready)
        if missing > 0:
            await self._start(missing)  # raises before ``desired`` moves, so nothing chases a failed count
        self.desired = count
        for instance in self.ready[count:]:
            await self._retire(instance)
        self.on_change()

    async def _start(self, how_many: int) -> None:
        started = [Instance(self.variant, self.spec, self.workdir, self.logs) for _ in range(how_many)]
        results = await asyncio.gather(*(i.start(self.startup_timeout) for i in started), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(i.stop(grace=1) for i in started))
            first = failures[0]
            raise first if isinstance(first, WorkerStartError) else WorkerStartError(repr(first))
        for instance in started:
            self.instances.append(instance)
            self._supervise(instance)

    def _supervise(self, instance: Instance) -> None:
        task = asyncio.create_task(self._watch(instance))
        self._supervisors.add(task)
        task.add_done_callback(self._supervisors.discard)

    async def _watch(self, instance: Instance) -> None:
        code = await instance.wait_exit()
        if instance.stopping or self.closed:
            return
        log.warning("instance %s of %s/%s exited with code %s; replacing it",
                    instance.id, self.endpoint, self.variant, code)
        self.logs.write(instance.log_stream, [f"Instance {instance.id} exited unexpectedly (code {code}); replacing it."])
        instance.stopping = True
        self.instances.remove(instance)
        self.on_change()
        await self._replace()

    async def _replace(self) -> None:
        delay = 1.0
        while not self.closed and len(self.ready) < self.desired:
            try:
                await self._start(1)
                self.on_change()
            except WorkerStartError as error:
                log.error("replacement for %s/%s failed: %s; retrying in %.0f s",
                          self.endpoint, self.variant, error.reason, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _retire(self, instance: Instance) -> None:
        instance.stopping = True
        # Let requests already on this instance finish before it is stopped.
        for _ in range(int(self.stop_grace * 10)):
            if instance.inflight == 0:
                break
            await asyncio.sleep(0.1)
        await instance.stop(self.stop_grace)
        if instance in self.instances:
            self.instances.remove(instance)

    async def close(self) -> None:
        self.closed = True
        for task in list(self._supervisors):
            task.cancel()
        await asyncio.gather(*(self._retire(i) for i in list(self.instances)))
        self.instances.clear()
