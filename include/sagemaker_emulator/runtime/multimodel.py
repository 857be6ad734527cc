"""Multi-model endpoints (MME): SageMaker's side of the contract, for the router.

A model container with ``Mode: MultiModel`` has an S3 *prefix* as its ModelDataUrl; each invocation
names an archive under it with ``TargetModel``. Per instance the host keeps a :class:`ModelCache`:

- a model is loaded on its first request (the worker's ``POST /models`` downloads the archive through
  a pre-signed GET and loads it); requests that arrive while it loads wait for that one load;
- requests for a model go to an instance that holds it (else to the least busy one, preferring the one
  with the most free memory), so a model is loaded once per instance that needs it;
- the instance's memory budget is its instance type's memory minus the worker's own resident memory
  (``SAGEMAKER_EMULATOR_MME_MEMORY_MIB`` overrides it, see config.py); a loaded model's footprint is
  what the worker measured. When the models would not fit, the least recently used idle ones are
  unloaded (``DELETE /models/{name}``), before a load when the footprint is known from an earlier
  load, and after it otherwise; a worker that answers 507 gets LRU models unloaded and the load
  retried. A model with requests in flight, or still loading, is never unloaded.

Metrics (AWS/SageMaker, µs): ModelCacheHit (1/0 per request), ModelLoadingWaitTime (per request that
waited), ModelDownloadingTime and ModelLoadingTime (per load), ModelUnloadingTime (per unload);
LoadedModelCount (/aws/sagemaker/Endpoints) after every load and unload of an instance.

Design choices where AWS is silent: eviction is LRU (AWS only says "unused" models go); the 60 s
after which a waiting request gets ModelNotReadyException and the 360 s a load may take are real
seconds, not scaled by the time scale (loads take real time, like worker start-up); a missing
archive is a ``ValidationError`` worded as SageMaker words a failed model download.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from sagemaker_emulator.config import MME_MEMORY_ENV
from sagemaker_emulator.runtime.fleet import TARGET_MODEL_HEADER, VariantFleet, instance_lost, refuse_routing_headers
from sagemaker_emulator.runtime.instance import Instance, WorkerStartError
from sagemaker_emulator.runtime.instance_client import Answer, ConnectionBroken, Invocation, model_error
from sagemaker_emulator.runtime.telemetry import INSTANCE_NAMESPACE, EndpointMetrics
from sagemaker_emulator.s3_uri import join_s3_uri, parse_s3_uri
from sagemaker_emulator.sagemaker.errors import AwsError, RuntimeValidationError
from sagemaker_emulator.sagemaker.typed_requests import ContainerDefinition

log = logging.getLogger(__name__)

MODEL_NOT_READY_SECONDS = 60  # a request waits this long for its model, then gets ModelNotReadyException
MAX_LOAD_SECONDS = 360  # a load keeps going this long after the first request gave up
UNLOAD_TIMEOUT_SECONDS = 60
MIB = 2**20


# --- Configuration ------------------------------------------------------------------------------


def container_environment(container: ContainerDefinition) -> dict[str, str]:
    """The container's Environment, plus the variable SageMaker injects into an MME container."""
    environment = {k: str(v) for k, v in (container.environment or {}).items()}
    if container.is_multi_model:
        environment["SAGEMAKER_MULTI_MODEL"] = "true"
    return environment


@dataclass(frozen=True)
class MemoryLimit:
    """What bounds an instance's model cache: its memory, or an explicit budget for the models."""

    instance_bytes: int | None
    override_bytes: int | None = None

    def budget(self, worker_baseline_bytes: int) -> int | None:
        if self.override_bytes is not None:
            return self.override_bytes
        if self.instance_bytes is None:
            return None
        return max(self.instance_bytes - worker_baseline_bytes, 0)


def instance_memory_bytes(instance_type: str | None) -> int | None:
    """The instance type's memory from the catalog; None (no bound) for a type it does not know."""
    from sagemaker_rules import instance_catalog as catalog

    if not instance_type:
        return None
    try:
        return catalog.instance_type(instance_type).memory_mib * MIB
    except catalog.UnknownInstanceType:
        log.warning("instance type %s is not in the catalog; its model cache is unbounded", instance_type)
        return None


def memory_limit(instance_type: str | None, environment: Mapping[str, str]) -> MemoryLimit:
    """The container's Environment may set the override (handy on one shared emulator), else the emulator's."""
    raw = environment.get(MME_MEMORY_ENV) or os.environ.get(MME_MEMORY_ENV)
    override = None
    if raw:
        try:
            override = int(raw) * MIB
        except ValueError:
            override = -1
        if override <= 0:
            raise WorkerStartError(f"{MME_MEMORY_ENV} must be a positive whole number of MiB, got {raw!r}.")
    return MemoryLimit(instance_memory_bytes(instance_type), override)


def multi_model_fleet(fleet: VariantFleet, container: ContainerDefinition, instance_type: str | None,
                      presign: Callable[[str], str], metrics: EndpointMetrics) -> "MultiModelFleet":
    """The fleet of a variant whose container is in MultiModel mode, around its instance fleet."""
    prefix = container.model_data_url
    if not prefix:
        raise WorkerStartError("A container in MultiModel mode needs a ModelDataUrl: the S3 prefix of its models.")
    limit = memory_limit(instance_type, container_environment(container))
    return MultiModelFleet(fleet, prefix, presign, limit, metrics, container.caches_models)


def archive_uri(prefix: str, target: str) -> str:
    """Prefix + relative path with exactly one slash between them."""
    return join_s3_uri(prefix, target)


# --- The cache of one instance (pure: no I/O) ---------------------------------------------------


@dataclass(eq=False)
class CachedModel:
    target: str  # the TargetModel, relative to the prefix
    name: str  # the opaque name the container knows this load by
    size: int  # bytes: measured once loaded, the last known footprint while loading
    ready: bool = False
    inflight: int = 0  # requests waiting for or using it: it must not be unloaded
    load: Any = None  # the asyncio task that loads it


class ModelCache:
    """The models one instance holds, least recently used first, within a memory budget (bytes, or None)."""

    def __init__(self, budget: int | None):
        self.budget = budget
        self._models: OrderedDict[str, CachedModel] = OrderedDict()

    def __contains__(self, target: str) -> bool:
        return target in self._models

    def __len__(self) -> int:
        return len(self._models)

    def get(self, target: str) -> CachedModel | None:
        return self._models.get(target)

    def add(self, target: str, name: str, size: int = 0) -> CachedModel:
        model = self._models[target] = CachedModel(target, name, size)
        return model

    def touch(self, target: str) -> None:
        """Mark as most recently used."""
        if target in self._models:
            self._models.move_to_end(target)

    def remove(self, model: CachedModel) -> None:
        if self._models.get(model.target) is model:
            del self._models[model.target]

    @property
    def used(self) -> int:
        return sum(model.size for model in self._models.values())

    @property
    def loaded_count(self) -> int:
        return sum(1 for model in self._models.values() if model.ready)

    def idle(self, keep: str | None = None) -> Iterator[CachedModel]:
        """Loaded models without requests in flight, least recently used first."""
        return (m for m in self._models.values() if m.ready and m.inflight == 0 and m.target != keep)

    def victims(self, keep: str | None = None) -> list[CachedModel]:
        """The least recently used idle models to unload so that the cache fits its budget again."""
        if self.budget is None:
            return []
        excess = self.used - self.budget
        chosen = []
        for model in self.idle(keep):
            if excess <= 0:
                break
            chosen.append(model)
            excess -= model.size
        return chosen


# --- The host of one variant --------------------------------------------------------------------


class MultiModelFleet:
    """A multi-model variant (a ``Fleet``): loads, routes to and unloads its models over the instances of
    the instance fleet it wraps, talking to them through the fleet's instance client."""

    def __init__(self, fleet: VariantFleet, prefix: str, presign: Callable[[str], str], memory: MemoryLimit,
                 metrics: EndpointMetrics, caching: bool = True):
        self.fleet = fleet
        self.endpoint, self.variant = fleet.endpoint, fleet.variant
        self.client = fleet.settings.client
        self.region = fleet.settings.logs.region
        self.metrics = metrics
        self.prefix = prefix
        self.presign = presign
        self.memory = memory
        self.caching = caching
        self.caches: dict[str, ModelCache] = {}  # instance id -> its cache
        self.footprints: dict[str, int] = {}  # target -> bytes measured at its last load
        self._loads = itertools.count(1)
        self._background: set[asyncio.Task] = set()

    @property
    def ready(self) -> list[Instance]:
        return self.fleet.ready

    async def scale_to(self, count: int) -> None:
        await self.fleet.scale_to(count)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.fleet.close()

    async def serve(self, invocation: Invocation) -> Answer:
        """Route one request to an instance holding (or now loading) its TargetModel."""
        refuse_routing_headers(self.endpoint, invocation.headers, target_model=False)
        target = invocation.headers.get(TARGET_MODEL_HEADER)
        if not target:
            raise RuntimeValidationError(f"Request {uuid.uuid4()} is missing a target model header")
        arrived = time.perf_counter()
        instance, cache = self._choose(target)
        model = cache.get(target)
        hit = model is not None and model.ready
        if model is None:
            model = self._start_load(instance, cache, target)
        self._record("ModelCacheHit", 1 if hit else 0)
        model.inflight += 1
        try:
            if not model.ready:
                await self._wait_loaded(model)
                self._record("ModelLoadingWaitTime", (time.perf_counter() - arrived) * 1e6)
            cache.touch(target)
            try:
                return await self.client.invoke(instance, invocation, path=f"/models/{model.name}/invoke")
            except ConnectionBroken as error:
                raise instance_lost(instance, str(error)) from None
        finally:
            model.inflight -= 1
            if not self.caching and model.ready and model.inflight == 0:
                # ModelCacheSetting Disabled: unload right after the invocation, in the background.
                self._spawn(self._unload(instance, cache, model))

    # -- routing ----------------------------------------------------------------------------------

    def _choose(self, target: str) -> tuple[Instance, ModelCache]:
        live = {instance.id for instance in self.fleet.instances}
        for gone in set(self.caches) - live:  # a replaced instance took its models with it
            del self.caches[gone]
        ready = self.fleet.ready
        if not ready:
            raise self.fleet.unavailable()
        holding = [instance for instance in ready if target in self._cache_of(instance)]
        candidates = holding or ready
        instance = min(candidates, key=lambda i: (i.inflight, self.caches[i.id].used))
        return instance, self.caches[instance.id]

    def _cache_of(self, instance: Instance) -> ModelCache:
        cache = self.caches.get(instance.id)
        if cache is None:
            baseline = process_resident_bytes(instance.process.pid) if instance.process else 0
            cache = self.caches[instance.id] = ModelCache(self.memory.budget(baseline))
        return cache

    # -- loading ----------------------------------------------------------------------------------

    def _start_load(self, instance: Instance, cache: ModelCache, target: str) -> CachedModel:
        digest = hashlib.sha256(target.encode()).hexdigest()[:16]
        model = cache.add(target, f"{digest}-{next(self._loads)}", self.footprints.get(target, 0))
        model.load = self._spawn(self._load(instance, cache, model))
        return model

    async def _wait_loaded(self, model: CachedModel) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(model.load), MODEL_NOT_READY_SECONDS)
        except asyncio.TimeoutError:
            raise AwsError("ModelNotReadyException",
                           f"Model {model.target} is still being loaded on endpoint {self.endpoint}. "
                           "Retry the request.", status=429) from None

    async def _load(self, instance: Instance, cache: ModelCache, model: CachedModel) -> None:
        try:
            await self._make_room(instance, cache, keep=model.target)
            status, payload = await self._post_load(instance, model)
            while status == 507:  # the container is out of memory: unload the least recently used, retry
                victim = next(cache.idle(keep=model.target), None)
                if victim is None:
                    break
                await self._unload(instance, cache, victim)
                status, payload = await self._post_load(instance, model)
            reply = _json_object(payload)
            if status not in (200, 409):  # 409: the container already holds it
                raise self._load_error(model, status, payload, reply)
        except BaseException:
            cache.remove(model)
            raise
        model.size = int(reply.get("memoryBytes", model.size))
        model.ready = True
        self.footprints[model.target] = model.size
        if status == 200:
            self._record("ModelDownloadingTime", float(reply.get("downloadMicros", 0)))
            self._record("ModelLoadingTime", float(reply.get("loadMicros", 0)))
        await self._make_room(instance, cache, keep=model.target)
        self._record_loaded_count(cache)

    async def _post_load(self, instance: Instance, model: CachedModel) -> tuple[int, bytes]:
        url = self.presign(archive_uri(self.prefix, model.target))
        try:
            return await self.client.post_json(instance, "/models", {"model_name": model.name, "url": url},
                                               timeout=MAX_LOAD_SECONDS)
        except ConnectionBroken as error:
            raise instance_lost(instance, str(error)) from None

    def _load_error(self, model: CachedModel, status: int, payload: bytes, reply: dict) -> AwsError:
        if reply.get("type") == "DownloadModelException":
            bucket, key = parse_s3_uri(archive_uri(self.prefix, model.target))
            return RuntimeValidationError(
                f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that there is an "
                "object located at the URL and that the role passed to CreateModel has permissions to download "
                "the model.")
        message = reply.get("message")
        return model_error(self.region, self.endpoint, status, message.encode() if message else payload)

    async def _make_room(self, instance: Instance, cache: ModelCache, keep: str) -> None:
        victims = cache.victims(keep=keep)
        await asyncio.gather(*(self._unload(instance, cache, v) for v in victims))

    async def _unload(self, instance: Instance, cache: ModelCache, model: CachedModel) -> None:
        if cache.get(model.target) is not model or model.inflight:
            return  # already gone, or in use again
        cache.remove(model)  # from now on a request for it loads it afresh
        started = time.perf_counter()
        try:
            await self.client.delete(instance, f"/models/{model.name}", timeout=UNLOAD_TIMEOUT_SECONDS)
        except (ConnectionBroken, asyncio.TimeoutError) as error:
            log.warning("unloading %s from %s failed: %s", model.target, instance.id, error)
            return
        self._record("ModelUnloadingTime", (time.perf_counter() - started) * 1e6)
        self._record_loaded_count(cache)

    # -- helpers ----------------------------------------------------------------------------------

    def _spawn(self, work) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(_forget(self._background))
        return task

    def _record(self, metric: str, value: float) -> None:
        self.metrics.record(self.region, self.endpoint, self.variant, metric, value)

    def _record_loaded_count(self, cache: ModelCache) -> None:
        self.metrics.record(self.region, self.endpoint, self.variant, "LoadedModelCount", cache.loaded_count,
                            namespace=INSTANCE_NAMESPACE)


def _forget(tasks: set[asyncio.Task]) -> Callable[[asyncio.Task], None]:
    def done(task: asyncio.Task) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the requests waiting on a load report its failure
    return done


def _json_object(payload: bytes) -> dict:
    try:
        value = json.loads(payload or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def process_resident_bytes(pid: int) -> int:
    """Another process's resident set size (Linux /proc; 0 where that is not available)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
