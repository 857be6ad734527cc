"""One instance of a production variant: a real worker process serving the SageMaker container contract.

An ``Instance`` starts ``python -m sagemaker_emulator.runtime.worker`` in a process group of its own
and learns over a status pipe whether the model loaded (and on which port) or why not. As on AWS:

* **Download**: ``ModelDataDownloadTimeoutInSeconds`` bounds download plus extraction (the worker
  enforces it and says so in the FailureReason).
* **Readiness**: the instance is ready only when ``GET /ping`` answers 200 on the shared port and on
  every serving process's own port, within ``ContainerStartupHealthCheckTimeoutInSeconds`` of the
  model data being in place.
* **Liveness**: once started, a periodic health check (``instance_health.py``) kills the process group
  of an instance that stops answering ``/ping`` or exceeds its type's memory, with a line saying why
  in its CloudWatch log stream; the fleet's exit watch (``wait_exit``) then replaces it.
* **Instance types**: the worker runs one serving process per vCPU of ``instance_type``
  (``serving_processes.py``), each under RLIMIT_DATA of the type's memory.
* **Nothing left behind**: a start that fails, times out or is cancelled kills the process group.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sagemaker_emulator.runtime.instance_health import HealthCheck, ping, proportional_set_bytes
from sagemaker_emulator.runtime.telemetry import LogSink
from sagemaker_emulator.runtime.worker import download_timeout_reason
from sagemaker_rules import instance_catalog
from sagemaker_rules.instance_catalog import InstanceType

log = logging.getLogger(__name__)

# Variables a worker inherits from the emulator; AWS credentials and the like are not among them.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")
MIB = 1024 * 1024
# The worker enforces ModelDataDownloadTimeoutInSeconds itself; a worker that hangs (stopped, say)
# is given this much more before the instance gives up on it.
DOWNLOAD_BACKSTOP_SECONDS = 10.0
READY_POLL_SECONDS = 0.05  # between readiness pings, until every serving process answers
FAILED_EXIT_GRACE_SECONDS = 5.0  # a worker that reported its failure is exiting; let it flush its logs


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
    model_data_presigned_url: str | None = None  # a pre-signed GET of that object on the emulator's S3
    container_name: str = "container_1"


def cataloged_instance_type(name: str | None) -> InstanceType | None:
    """The catalog's entry for a variant's InstanceType; None (one serving process, no memory bound) for
    a serverless variant. CreateEndpointConfig has already refused types missing from the catalog."""
    if not name:
        return None
    try:
        return instance_catalog.instance_type(name)
    except instance_catalog.UnknownInstanceType:
        log.warning("instance type %s is not in the catalog: its instances run one serving process", name)
        return None


def new_instance_id() -> str:
    return "i-" + secrets.token_hex(9)[:17]


class Instance:
    """One running worker process (and the serving processes it forks, in its process group)."""

    def __init__(self, variant: str, spec: ContainerSpec, workdir: Path, logs: LogSink, *,
                 instance_type: InstanceType | None = None, health: HealthCheck = HealthCheck()):
        """``instance_type``: one serving process per vCPU, within its memory; None (serverless
        workers, direct use): one serving process and no memory bound of its own."""
        self.variant = variant
        self.spec = spec
        self.instance_type = instance_type
        self.health = health
        self.id = new_instance_id()
        self.model_dir = workdir / self.id / "model"
        self.logs = logs
        self.log_stream = logs.stream_for(variant, self.id)
        self.port: int | None = None
        self.health_ports: list[int] = []  # one per serving process
        self.pids: list[int] = []  # the serving processes, the first one being ``process``
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = False
        self.inflight = 0
        self._pump: asyncio.Task | None = None
        self._health_task: asyncio.Task | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def memory_limit_bytes(self) -> int | None:
        return self.instance_type.memory_mib * MIB if self.instance_type else None

    async def start(self, startup_timeout: float, download_timeout: float | None = None) -> None:
        """Start the worker and return once every serving process answers ``GET /ping``.

        ``download_timeout`` (ModelDataDownloadTimeoutInSeconds) bounds download plus extraction;
        ``startup_timeout`` (ContainerStartupHealthCheckTimeoutInSeconds) runs from then until the
        pings answer. Raises ``WorkerStartError`` with the FailureReason. On any failure, and when
        the start is cancelled (DeleteEndpoint while model_fn runs), the process group is killed:
        no process of the instance is left behind.
        """
        self.model_dir.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sagemaker_emulator.runtime.worker",
                *self._arguments(write_fd, download_timeout),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, pass_fds=(write_fd,), env=self._environment(),
                start_new_session=True,  # its own process group: one signal reaches every serving process
                preexec_fn=self._before_exec,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._pump = asyncio.create_task(self._forward_output())
        try:
            ping_deadline = await self._await_ready_line(read_fd, startup_timeout, download_timeout)
            await self._await_pings(ping_deadline, startup_timeout)
        except WorkerStartError as error:
            await self._end_failed_start(error)
            raise
        except BaseException:  # cancelled, or a bug here: the process must not outlive the start
            self._kill_group()
            await self._reap()
            raise
        self._health_task = asyncio.create_task(self._check_health())

    async def _await_ready_line(self, read_fd: int, startup_timeout: float, download_timeout: float | None) -> float:
        """Read status lines until ready; return the deadline for the pings (monotonic)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(read_fd, "rb", buffering=0))
        downloading = bool(self.spec.model_data_presigned_url)
        # The worker enforces the download timeout itself; this is the backstop for a worker that hangs.
        deadline = loop.time() + ((download_timeout + DOWNLOAD_BACKSTOP_SECONDS)
                                  if downloading and download_timeout else startup_timeout)
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        line = await reader.readline()
                except TimeoutError:
                    if downloading and download_timeout:
                        raise WorkerStartError(download_timeout_reason(
                            self.spec.container_name, self.spec.model_data_s3_uri, download_timeout)) from None
                    raise WorkerStartError(self._not_healthy_reason(startup_timeout)) from None
                status = _parse_status(line)
                if status["status"] == "downloaded":  # the container starts now: so does its health clock
                    downloading = False
                    deadline = loop.time() + startup_timeout
                elif status["status"] == "ready":
                    self.port = int(status["port"])
                    self.health_ports = [int(p) for p in status.get("health_ports") or [self.port]]
                    self.pids = [int(p) for p in status.get("pids") or [status.get("pid") or self.process.pid]]
                    return deadline
                else:
                    raise _ReportedFailure(status.get("reason") or
                                           f"The worker for production variant {self.variant} exited during start-up.")
        finally:
            transport.close()

    async def _await_pings(self, deadline: float, startup_timeout: float) -> None:
        """Ready only when every serving process (and the shared port) answers GET /ping with 200."""
        loop = asyncio.get_running_loop()
        waiting = list(dict.fromkeys([self.port, *self.health_ports]))
        while waiting:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WorkerStartError(self._not_healthy_reason(startup_timeout))
            answers = await asyncio.gather(*(ping(port, min(self.health.timeout, remaining)) for port in waiting))
            waiting = [port for port, healthy in zip(waiting, answers) if not healthy]
            if waiting:
                if self.process.returncode is not None:
                    raise WorkerStartError(f"The worker for production variant {self.variant} exited during "
                                           f"start-up (code {self.process.returncode}).")
                await asyncio.sleep(READY_POLL_SECONDS)

    def _not_healthy_reason(self, startup_timeout: float) -> str:
        return (f"The primary container for production variant {self.variant} did not pass the ping health "
                f"check within {startup_timeout:.0f} seconds (ContainerStartupHealthCheckTimeoutInSeconds).")

    async def _end_failed_start(self, error: WorkerStartError) -> None:
        """A worker that reported its failure exits by itself (give it a moment to flush its logs);
        one that timed out is killed with its whole process group at once."""
        self.stopping = True
        if not isinstance(error, _ReportedFailure):
            self._kill_group()
        elif self.process.returncode is None:
            try:
                await asyncio.wait_for(asyncio.shield(self.process.wait()), FAILED_EXIT_GRACE_SECONDS)
            except asyncio.TimeoutError:
                self._kill_group()
        await self._reap()
        log.info("instance %s of %s did not start: %s", self.id, self.variant, error.reason)

    def _before_exec(self) -> None:
        """Runs in the child between fork and exec: where resource limits are set."""
        _die_with_parent()
        if self.instance_type is not None:
            # No process of the instance may hold more than its type's memory (the health check bounds the sum).
            limit = self.memory_limit_bytes
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    def _arguments(self, status_fd: int, download_timeout: float | None) -> list[str]:
        args = ["--model-dir", str(self.model_dir), "--status-fd", str(status_fd),
                "--container-name", self.spec.container_name]
        if self.spec.model_data_presigned_url:
            args += ["--model-data-url", self.spec.model_data_presigned_url,
                     "--model-data-source", self.spec.model_data_s3_uri or self.spec.model_data_presigned_url]
            if download_timeout:
                args += ["--download-timeout", f"{download_timeout:g}"]
        if self.instance_type is not None:
            args += ["--vcpus", str(self.instance_type.vcpus)]
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

    # -- liveness -----------------------------------------------------------------------------------

    async def _check_health(self) -> None:
        """Ping every serving process each interval; kill the instance when one fails ``failures`` times
        in a row or the instance holds more than its type's memory. Its fleet's exit watch replaces it."""
        failed = dict.fromkeys(self.health_ports, 0)
        while not self.stopping and self.process.returncode is None:
            await asyncio.sleep(self.health.interval)
            if self.stopping or self.process.returncode is not None:
                return
            answers = await asyncio.gather(*(ping(port, self.health.timeout) for port in failed))
            for port, healthy in zip(list(failed), answers):
                failed[port] = 0 if healthy else failed[port] + 1
            if self.stopping:
                return
            worst = max(failed, key=failed.get)
            if failed[worst] >= self.health.failures:
                self._kill_unhealthy(
                    f"Instance {self.id} failed {failed[worst]} health checks in a row: GET /ping on worker port "
                    f"{worst} did not answer 200 within {self.health.timeout:g} s. Stopping it so that it is replaced.")
                return
            if self.memory_limit_bytes is not None:
                used = sum(proportional_set_bytes(pid) for pid in self.pids)
                if used > self.memory_limit_bytes:
                    self._kill_unhealthy(
                        f"Instance {self.id} ran out of memory: its processes hold {used // MIB} MiB, more than the "
                        f"{self.instance_type.memory_mib} MiB of {self.instance_type.name} (out of memory). "
                        "Stopping it so that it is replaced.")
                    return

    def _kill_unhealthy(self, reason: str) -> None:
        log.warning("%s/%s: %s", self.variant, self.id, reason)
        self.logs.write(self.log_stream, [reason])
        self._kill_group()

    # -- stopping -----------------------------------------------------------------------------------

    async def wait_exit(self) -> int:
        assert self.process
        code = await self.process.wait()
        if self._pump:
            await asyncio.gather(self._pump, return_exceptions=True)
        return code

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds, as SageMaker stops containers."""
        self.stopping = True
        self._cancel_health_check()
        process = self.process
        if process and process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                await asyncio.wait_for(asyncio.shield(process.wait()), grace)
            except (asyncio.TimeoutError, ProcessLookupError):
                self._kill_group()
        await self._reap()

    def _kill_group(self) -> None:
        """SIGKILL every process of the instance. Only while its first process is unreaped: until then
        its pid, which names the group, cannot have been reused."""
        process = self.process
        if process is not None and process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _cancel_health_check(self) -> None:
        if self._health_task is not None and self._health_task is not asyncio.current_task():
            self._health_task.cancel()

    async def _reap(self) -> None:
        """Wait for the process and its log pump, then remove the instance's files."""
        self._cancel_health_check()
        if self.process is not None:
            await self.process.wait()
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


class _ReportedFailure(WorkerStartError):
    """The worker said why it could not start (or died): it is exiting by itself."""


def _parse_status(line: bytes) -> dict:
    """One status line of the worker; end of file (the worker died) reads as a failure."""
    if not line:
        return {"status": "failed"}
    try:
        status = json.loads(line.decode())
    except ValueError:
        return {"status": "failed", "reason": f"worker wrote an unreadable status line: {line[:200]!r}"}
    return status if isinstance(status, dict) and "status" in status else {"status": "failed"}
