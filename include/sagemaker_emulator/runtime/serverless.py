"""Serverless production variants: workers on demand, scale to zero, MaxConcurrency, a memory cap.

A ``ServerlessFleet`` is what the router serves a serverless variant from. It has no instance count:

* **Provisioning** (CreateEndpoint) starts one worker to prove the model loads (AWS fails a
  serverless endpoint whose container does not pass the ping check), then stops it again unless
  ``ProvisionedConcurrency`` asks for warm workers. So the endpoint is InService with nothing
  running, and the first request pays a cold start, as on AWS.
* **Cold start**: a request that finds no idle worker waits for one. One worker starts at a time
  per variant; requests that arrive meanwhile wait for it, and another starts only if requests
  are still waiting once it is up (each worker serves one request at a time). The time from
  process start to model loaded is published as ``ModelSetupTime`` (µs). A wait longer than
  the invocation timeout answers ``ModelNotReadyException``; the worker keeps starting.
* **Concurrency**: at most ``MaxConcurrency`` requests are admitted (served or waiting); the
  next one gets ``ThrottlingException`` (HTTP 400), as AWS throttles invocations beyond the
  maximum. Throttled requests never reach a model and are not counted as invocations.
* **Scale to zero**: a worker idle for ``Settings.serverless_idle_seconds`` (scaled) is stopped,
  keeping ``ProvisionedConcurrency`` workers.
* **Memory**: each worker runs under ``RLIMIT_DATA = MemorySizeInMB``. RLIMIT_DATA counts the
  process's private writable memory (heap, anonymous mmaps, thread stacks) and not its shared
  libraries, so it tracks what the model uses: the iris worker (numpy + scikit-learn loaded,
  169 MB resident) holds 197 MB of it, against 418 MB of address space that RLIMIT_AS would
  charge. Each extra OpenBLAS thread adds ~80 MB, so BLAS and OpenMP pools get one thread
  (unless the model's Environment sets them): the budget must not depend on the host's core
  count. An allocation beyond the cap raises MemoryError in the model: in model_fn the endpoint
  (or the cold start) fails with that reason, in a prediction the invocation fails with
  ModelError and the worker keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from sagemaker_emulator.config import INVOCATION_TIMEOUT_SECONDS
from sagemaker_emulator.runtime.fleet import FleetSettings, refuse_routing_headers
from sagemaker_emulator.runtime.instance import ContainerSpec, Instance, WorkerStartError
from sagemaker_emulator.runtime.instance_health import HealthCheck
from sagemaker_emulator.runtime.instance_client import Answer, ConnectionBroken, Invocation, log_group_arn
from sagemaker_emulator.runtime.telemetry import EndpointMetrics, LogSink
from sagemaker_emulator.sagemaker.errors import AwsError, ModelError, ServiceUnavailable, ThrottlingException
from sagemaker_emulator.sagemaker.typed_requests import ServerlessConfig, ServerlessUpdateConfig

log = logging.getLogger(__name__)

THREAD_POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MEGABYTE = 1024 * 1024
MAX_FAILURE_REASON_CHARS = 1024  # DescribeEndpoint's FailureReason


class ModelNotReadyException(AwsError):
    def __init__(self, message: str):
        super().__init__("ModelNotReadyException", message, status=429)


@dataclass(frozen=True)
class ServerlessLimits:
    memory_mb: int
    max_concurrency: int
    provisioned_concurrency: int = 0

    @classmethod
    def of(cls, serverless_config: ServerlessConfig) -> "ServerlessLimits":
        return cls(memory_mb=int(serverless_config.memory_size_in_mb),
                   max_concurrency=int(serverless_config.max_concurrency),
                   provisioned_concurrency=int(serverless_config.provisioned_concurrency or 0))


class ServerlessInstance(Instance):
    """A worker process whose private memory may not exceed ``memory_mb``."""

    def __init__(self, variant: str, spec: ContainerSpec, workdir: Path, logs: LogSink, memory_mb: int,
                 health: HealthCheck = HealthCheck()):
        super().__init__(variant, spec, workdir, logs, health=health)  # one serving process (no instance type)
        self.memory_mb = memory_mb
        self.idle_since = time.monotonic()

    def _before_exec(self) -> None:
        super()._before_exec()
        limit = self.memory_mb * MEGABYTE
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        for name in THREAD_POOL_VARIABLES:
            env.setdefault(name, "1")
        return env


class ServerlessFleet:
    """The on-demand workers of one serverless production variant (a ``Fleet``)."""

    def __init__(self, settings: FleetSettings, spec: ContainerSpec, limits: ServerlessLimits, *,
                 metrics: EndpointMetrics, idle_seconds: float):
        self.settings = settings
        self.endpoint = settings.endpoint
        self.variant = settings.variant
        self.spec = spec
        self.logs = settings.logs
        self.limits = limits
        self.metrics = metrics
        self.region = settings.logs.region
        self.startup_timeout = settings.startup_timeout
        self.stop_grace = settings.stop_grace
        self.idle_seconds = idle_seconds
        self.closed = False
        self._idle: list[ServerlessInstance] = []  # the last one is the most recently used
        self._busy: set[ServerlessInstance] = set()
        self._waiters: deque[asyncio.Future] = deque()
        self._admitted = 0  # requests being served or waiting for a worker
        self._starting: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def ready(self) -> list[Instance]:
        return [*self._busy, *self._idle]

    # -- provisioning -----------------------------------------------------------------------------

    async def scale_to(self, count: int) -> None:
        """Provision the variant (the deployment controller's call; serverless has no instance count).

        Start one worker to prove the model loads, raising ``WorkerStartError`` if not; keep
        ``ProvisionedConcurrency`` workers warm and stop the rest.
        """
        self._make_idle(await self._start_worker(record_setup_time=False))
        await self.reconfigure(ServerlessUpdateConfig())  # starts the rest of the ProvisionedConcurrency workers
        if not self.limits.provisioned_concurrency:
            proof = self._idle.pop()
            proof.stopping = True
            await proof.stop(self.stop_grace)
        self._spawn(self._scale_in_forever())

    async def reconfigure(self, update: ServerlessUpdateConfig) -> None:
        """ServerlessUpdateConfig (UpdateEndpointWeightsAndCapacities): new concurrency limits, in place.

        A higher ProvisionedConcurrency starts the missing warm workers before it returns; a lower
        MaxConcurrency throttles from the next request on, and surplus workers go at their idle time.
        """
        self.limits = replace(
            self.limits, max_concurrency=int(_first(update.max_concurrency, self.limits.max_concurrency)),
            provisioned_concurrency=int(_first(update.provisioned_concurrency, self.limits.provisioned_concurrency)))
        missing = self.limits.provisioned_concurrency - len(self.ready)
        if missing > 0:
            results = await asyncio.gather(*(self._start_worker(record_setup_time=False) for _ in range(missing)),
                                           return_exceptions=True)
            for instance in results:
                if isinstance(instance, ServerlessInstance):
                    self._hand_over(instance)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
        self._scale_out()  # a higher MaxConcurrency may let waiting requests start a worker

    async def _start_worker(self, record_setup_time: bool) -> ServerlessInstance:
        instance = ServerlessInstance(self.variant, self.spec, self.settings.workdir, self.logs,
                                      self.limits.memory_mb, self.settings.health)
        started = time.perf_counter()
        try:
            await instance.start(self.startup_timeout)
        except WorkerStartError as error:
            raise WorkerStartError(self._explain(error.reason)) from None
        except asyncio.CancelledError:  # the fleet is closing: leave no process behind
            await instance.stop(grace=0)
            raise
        if record_setup_time:
            self.metrics.record(self.region, self.endpoint, self.variant, "ModelSetupTime",
                                (time.perf_counter() - started) * 1e6)
        self._spawn(self._watch(instance))
        return instance

    def _explain(self, reason: str) -> str:
        """A start-up failure's reason, with the memory limit named when it was the cause."""
        if "MemoryError" not in reason:
            return reason
        hint = (f" (production variant {self.variant} is serverless with MemorySizeInMB {self.limits.memory_mb}: "
                "the model needs more memory; choose a larger MemorySizeInMB, up to 6144.)")
        room = MAX_FAILURE_REASON_CHARS - len(hint)
        return (reason if len(reason) <= room else reason[:room - 3] + "...") + hint

    # -- serving ----------------------------------------------------------------------------------

    def admit(self) -> None:
        """Throttle a request that would exceed MaxConcurrency (checked before it is counted)."""
        if self._admitted >= self.limits.max_concurrency:
            log.info("throttled a request to %s/%s: %d requests in flight (MaxConcurrency %d)",
                     self.endpoint, self.variant, self._admitted, self.limits.max_concurrency)
            raise ThrottlingException()

    async def serve(self, invocation: Invocation) -> Answer:
        refuse_routing_headers(self.endpoint, invocation.headers)
        self.admit()  # a throttled request never reaches the model and is not an invocation
        self._admitted += 1
        if self.limits.provisioned_concurrency:
            # concurrent executions / provisioned concurrency, sampled as each request starts: what target
            # tracking on SageMakerVariantProvisionedConcurrencyUtilization follows (Average per period)
            self.metrics.record(self.region, self.endpoint, self.variant,
                                "ServerlessProvisionedConcurrencyUtilization",
                                self._admitted / self.limits.provisioned_concurrency)
        try:
            instance = await self._acquire()
            try:
                return await self.settings.client.invoke(instance, invocation)
            except ConnectionBroken as error:
                raise await self._worker_died(instance, error) from None
            finally:
                self._release(instance)
        finally:
            self._admitted -= 1

    async def _acquire(self) -> ServerlessInstance:
        if self.closed:
            raise ServiceUnavailable(f"Endpoint {self.endpoint} is being deleted or updated.")
        if self._idle:
            instance = self._idle.pop()
            self._busy.add(instance)
            return instance
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._scale_out()
        try:
            # Process start is real time, so the wait is bounded by the unscaled invocation timeout.
            return await asyncio.wait_for(asyncio.shield(waiter), INVOCATION_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            self._abandon(waiter)
            raise ModelNotReadyException(
                f"The serverless variant {self.variant} of endpoint {self.endpoint} is still provisioning a "
                "worker (cold start). Wait and try your request again.") from None
        except BaseException:  # the caller went away, or the worker could not start
            self._abandon(waiter)
            raise

    def _abandon(self, waiter: asyncio.Future) -> None:
        """Forget a waiter that gave up; a worker handed to it at the last moment goes back to the pool."""
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        if not waiter.done():
            waiter.cancel()
        elif not waiter.cancelled() and waiter.exception() is None:
            self._release(waiter.result())

    def _release(self, instance: ServerlessInstance) -> None:
        self._busy.discard(instance)
        if instance.stopping or instance.process is None or instance.process.returncode is not None:
            self._scale_out()  # a worker died: someone else must serve the waiting requests
            return
        self._hand_over(instance)

    def _hand_over(self, instance: ServerlessInstance) -> None:
        """Give a free worker to the longest-waiting request, or keep it warm."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._busy.add(instance)
                waiter.set_result(instance)
                return
        self._make_idle(instance)

    def _make_idle(self, instance: ServerlessInstance) -> None:
        instance.idle_since = time.monotonic()
        self._idle.append(instance)

    def _scale_out(self) -> None:
        """Start one more worker if requests wait, none is starting and MaxConcurrency allows."""
        if self.closed or self._starting is not None or not self._waiters:
            return
        if len(self._busy) + len(self._idle) >= self.limits.max_concurrency:
            return
        self._starting = self._spawn(self._cold_start())

    async def _cold_start(self) -> None:
        try:
            instance = await self._start_worker(record_setup_time=True)
        except WorkerStartError as error:
            self._starting = None
            reason = error.reason  # the factory below may outlive the except block's name
            log.error("cold start of %s/%s failed: %s", self.endpoint, self.variant, reason)
            if not self.ready:  # nothing else will ever serve the waiting requests
                self._fail_waiters(lambda: ModelError(
                    f"The serverless variant {self.variant} of endpoint {self.endpoint} could not start a "
                    f"worker: {reason}", log_stream_arn=log_group_arn(self.region, self.endpoint)))
            return
        self._starting = None
        if self.closed:
            await instance.stop(self.stop_grace)
            return
        self._hand_over(instance)
        self._scale_out()

    def _fail_waiters(self, error: Callable[[], AwsError]) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error())

    async def _worker_died(self, instance: ServerlessInstance, error: Exception) -> ModelError:
        try:
            code = await asyncio.wait_for(instance.wait_exit(), 5)
        except asyncio.TimeoutError:
            code = None
        message = (f"The worker serving the request exited (code {code}) before it answered: {error}. "
                   f"The variant's workers are limited to MemorySizeInMB {self.limits.memory_mb}.")
        self.logs.write(instance.log_stream, [message])
        return ModelError(f'Received server error (500) from primary with message "{message}".',
                          original_status=500, original_message=message,
                          log_stream_arn=log_group_arn(self.region, self.endpoint))

    # -- supervision and scale-in -----------------------------------------------------------------

    async def _watch(self, instance: ServerlessInstance) -> None:
        code = await instance.wait_exit()
        if instance.stopping or self.closed:
            return
        instance.stopping = True
        log.warning("serverless worker %s of %s/%s exited with code %s",
                    instance.id, self.endpoint, self.variant, code)
        self.logs.write(instance.log_stream, [f"Worker {instance.id} exited unexpectedly (code {code})."])
        if instance in self._idle:
            self._idle.remove(instance)

    async def _scale_in_forever(self) -> None:
        while not self.closed:
            await asyncio.sleep(min(max(self.idle_seconds / 4, 0.05), 1.0))
            await self._scale_in()

    async def _scale_in(self) -> None:
        """Stop workers idle for longer than the idle period, keeping ProvisionedConcurrency warm."""
        now = time.monotonic()
        keep = max(self.limits.provisioned_concurrency - len(self._busy), 0)
        candidates = self._idle[:max(len(self._idle) - keep, 0)]  # the least recently used first
        expired = [i for i in candidates if now - i.idle_since >= self.idle_seconds]
        for instance in expired:
            self._idle.remove(instance)
            instance.stopping = True
        for instance in expired:
            log.info("scaling %s/%s in: worker %s idle for %.1f s",
                     self.endpoint, self.variant, instance.id, now - instance.idle_since)
            await instance.stop(self.stop_grace)

    def _spawn(self, work) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Stop every worker, letting requests already being served finish first."""
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _ in range(int(self.stop_grace * 10)):
            if not self._busy:
                break
            await asyncio.sleep(0.1)
        self._fail_waiters(lambda: ServiceUnavailable(f"Endpoint {self.endpoint} is being deleted or updated."))
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        await asyncio.gather(*(worker.stop(self.stop_grace) for worker in workers), return_exceptions=True)


def _first(value, default):
    return default if value is None else value
