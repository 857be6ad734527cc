"""Fleets: what the router serves a production variant from, and what keeps its instances running.

Every kind of variant is a ``Fleet``: an instance fleet (``VariantFleet`` here), a serverless fleet,
a multi-container fleet and a multi-model fleet. The router and the deployment controller only use
the protocol, so blue/green, shadow and autoscaled fleets plug in the same way.

A ``VariantFleet`` keeps its instances (``runtime/instance.py``) alive: an instance that dies is taken
out of rotation at once and replaced, and the fleet keeps serving on the others.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence

from sagemaker_emulator.runtime.instance import ContainerSpec, Instance, WorkerStartError
from sagemaker_emulator.runtime.instance_health import HealthCheck
from sagemaker_emulator.runtime.instance_client import (Answer, ConnectionBroken, InstanceClient, Invocation,
                                                        log_group_arn)
from sagemaker_emulator.runtime.telemetry import LogSink
from sagemaker_rules.instance_catalog import InstanceType
from sagemaker_emulator.sagemaker.errors import InstanceLost, RuntimeValidationError, ServiceUnavailable

log = logging.getLogger(__name__)

TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
TARGET_CONTAINER_HEADER = "X-Amzn-SageMaker-Target-Container-Hostname"


class Fleet(Protocol):
    """What serves one production variant."""

    endpoint: str
    variant: str

    @property
    def ready(self) -> Sequence[Instance]:
        """The instances (or serverless workers) serving now."""

    async def serve(self, invocation: Invocation) -> Answer:
        """Serve one request. Raises an ``AwsError`` for a request the variant refuses before any
        container sees it (``RuntimeValidationError``, ``ThrottlingException``) or cannot serve."""

    async def scale_to(self, count: int) -> None:
        """Run ``count`` instances; raise ``WorkerStartError`` if they cannot start (nothing is left half-started)."""

    async def close(self) -> None:
        """Drain and stop everything; requests already being served finish first."""


@dataclass(frozen=True)
class FleetSettings:
    """Where and how a variant's instances run."""

    endpoint: str
    variant: str
    workdir: Path
    logs: LogSink
    client: InstanceClient
    startup_timeout: float  # ContainerStartupHealthCheckTimeoutInSeconds, or the emulator's default
    stop_grace: float
    instance_type: InstanceType | None = None  # one serving process per vCPU, within its memory
    download_timeout: float | None = None  # ModelDataDownloadTimeoutInSeconds
    health: HealthCheck = HealthCheck()  # liveness pings once started (instance_health.py)


def refuse_routing_headers(endpoint: str, headers: Mapping[str, str], *, target_model: bool = True,
                           target_container: bool = True) -> None:
    """A fleet that does not route by TargetModel or TargetContainerHostname refuses requests that ask for it."""
    if target_model and headers.get(TARGET_MODEL_HEADER):
        raise RuntimeValidationError(
            f"Endpoint {endpoint} is not a multi-model endpoint and does not support target model header.")
    if target_container and TARGET_CONTAINER_HEADER in headers:
        raise RuntimeValidationError(
            f"Endpoint {endpoint} is not configured for direct invocation and does not support "
            f"the target container hostname header.")


class VariantFleet:
    """The instances of one production variant (or of one container of it), kept at the desired count."""

    def __init__(self, settings: FleetSettings, spec: ContainerSpec):
        self.settings = settings
        self.endpoint = settings.endpoint
        self.variant = settings.variant
        self.spec = spec
        self.logs = settings.logs
        self.instances: list[Instance] = []
        self.desired = 0
        self.closed = False
        self._round_robin = itertools.count()
        self._supervisors: set[asyncio.Task] = set()

    @property
    def ready(self) -> list[Instance]:
        return [i for i in self.instances if not i.stopping]

    async def serve(self, invocation: Invocation) -> Answer:
        refuse_routing_headers(self.endpoint, invocation.headers)
        return await self.call(invocation)

    async def call(self, invocation: Invocation, path: str = "/invocations") -> Answer:
        """Call one instance; if its connection breaks (it died), retry once on another one."""
        tried: set[str] = set()
        while True:
            instance = self.pick(exclude=tried)
            if instance is None:
                raise self.unavailable()
            tried.add(instance.id)
            try:
                return await self.settings.client.invoke(instance, invocation, path)
            except ConnectionBroken as error:
                if len(tried) >= 2 or not self.ready:
                    raise instance_lost(instance, str(error)) from None

    def unavailable(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"No healthy instance is serving variant {self.variant} of endpoint {self.endpoint}.")

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

    async def _start(self, how_many: int) -> None:
        started = [Instance(self.variant, self.spec, self.settings.workdir, self.logs,
                            instance_type=self.settings.instance_type, health=self.settings.health)
                   for _ in range(how_many)]
        results = await asyncio.gather(*(i.start(self.settings.startup_timeout, self.settings.download_timeout)
                                         for i in started), return_exceptions=True)
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
        await self._replace()

    async def _replace(self) -> None:
        delay = 1.0
        while not self.closed and len(self.ready) < self.desired:
            try:
                await self._start(1)
            except WorkerStartError as error:
                log.error("replacement for %s/%s failed: %s; retrying in %.0f s",
                          self.endpoint, self.variant, error.reason, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _retire(self, instance: Instance) -> None:
        instance.stopping = True
        # Let requests already on this instance finish before it is stopped.
        for _ in range(int(self.settings.stop_grace * 10)):
            if instance.inflight == 0:
                break
            await asyncio.sleep(0.1)
        await instance.stop(self.settings.stop_grace)
        if instance in self.instances:
            self.instances.remove(instance)

    async def close(self) -> None:
        self.closed = True
        for task in list(self._supervisors):
            task.cancel()
        await asyncio.gather(*(self._retire(i) for i in list(self.instances)))
        self.instances.clear()


def instance_lost(instance: Instance, reason: str) -> InstanceLost:
    """The worker died under the request: a ModelError to the caller, a retry to the async queue."""
    return InstanceLost(f'Received server error (500) from primary with message "{reason}".',
                        original_status=500, original_message=reason,
                        log_stream_arn=log_group_arn(instance.logs.region, instance.logs.endpoint))
