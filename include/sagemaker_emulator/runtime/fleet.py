"""Variant fleets: the instances of one production variant, kept at the desired count.

A ``VariantFleet`` keeps its instances (``runtime/instance.py``) alive: an instance that dies is taken
out of rotation at once and replaced, and the fleet keeps serving on the others.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path
from typing import Callable

from sagemaker_emulator.runtime.instance import ContainerSpec, Instance, WorkerStartError
from sagemaker_emulator.runtime.telemetry import LogSink

log = logging.getLogger(__name__)


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
