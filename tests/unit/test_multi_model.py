"""Multi-model endpoints without an emulator: the LRU cache and its budget, target and memory settings,
per-model module isolation in the worker, and the host's load/evict/retry logic against a fake container."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sagemaker_emulator.config import MME_MEMORY_ENV
from sagemaker_emulator.runtime import multimodel
from sagemaker_emulator.runtime.instance import WorkerStartError
from sagemaker_emulator.runtime.fleet import refuse_routing_headers
from sagemaker_emulator.runtime.instance_client import InstanceClient, Invocation
from sagemaker_emulator.runtime.multimodel import MemoryLimit, ModelCache, MultiModelFleet
from sagemaker_emulator.runtime.multimodel_server import import_script, model_code_on_path
from sagemaker_emulator.sagemaker.errors import AwsError, RuntimeValidationError
from sagemaker_emulator.sagemaker.typed_requests import ContainerDefinition

MIB = 2**20


# --- ModelCache ----------------------------------------------------------------------------------


def cache_with(budget: int | None, *sizes: tuple[str, int]) -> ModelCache:
    cache = ModelCache(budget)
    for target, size in sizes:
        cache.add(target, f"name-{target}", size).ready = True
    return cache


def test_victims_are_the_least_recently_used_until_the_cache_fits():
    cache = cache_with(250, ("a", 100), ("b", 100), ("c", 100))
    cache.touch("a")  # order now b, c, a
    assert [m.target for m in cache.victims()] == ["b"]
    cache.add("d", "name-d", 120)  # loading: counted, but not a victim
    assert [m.target for m in cache.victims(keep="d")] == ["b", "c"]


def test_models_in_use_or_loading_or_kept_are_never_victims():
    cache = cache_with(100, ("a", 100), ("b", 100), ("c", 100))
    cache.get("a").inflight = 1
    cache.add("d", "name-d", 100)  # still loading
    assert [m.target for m in cache.victims(keep="b")] == ["c"]  # even though the cache still does not fit
    assert [m.target for m in cache.victims(keep="c")] == ["b"]


def test_an_unbounded_cache_evicts_nothing():
    assert cache_with(None, ("a", 10**12)).victims() == []


def test_used_and_loaded_count():
    cache = cache_with(1000, ("a", 100), ("b", 50))
    cache.add("c", "name-c", 30)
    assert (cache.used, cache.loaded_count, len(cache)) == (180, 2, 3)
    cache.remove(cache.get("a"))
    assert ("a" in cache, cache.used) == (False, 80)


# --- settings and headers ------------------------------------------------------------------------


@pytest.mark.parametrize("prefix, target, uri", [
    ("s3://b/mme/", "en.tar.gz", "s3://b/mme/en.tar.gz"),
    ("s3://b/mme", "en.tar.gz", "s3://b/mme/en.tar.gz"),
    ("s3://b/mme//", "/sub/en.tar.gz", "s3://b/mme/sub/en.tar.gz"),
    ("s3://b", "en.tar.gz", "s3://b/en.tar.gz"),
])
def test_archive_uri_has_exactly_one_slash_between_prefix_and_target(prefix, target, uri):
    assert multimodel.archive_uri(prefix, target) == uri


def test_memory_budget_is_instance_memory_minus_the_worker_unless_overridden(monkeypatch):
    monkeypatch.delenv(MME_MEMORY_ENV, raising=False)
    limit = multimodel.memory_limit("ml.m5.large", {})
    assert limit == MemoryLimit(8192 * MIB)
    assert limit.budget(worker_baseline_bytes=100 * MIB) == 8092 * MIB
    assert multimodel.memory_limit("ml.m5.large", {MME_MEMORY_ENV: "180"}).budget(100 * MIB) == 180 * MIB
    monkeypatch.setenv(MME_MEMORY_ENV, "300")
    assert multimodel.memory_limit("ml.t2.medium", {}).budget(0) == 300 * MIB
    assert multimodel.memory_limit("ml.t2.medium", {MME_MEMORY_ENV: "50"}).budget(0) == 50 * MIB


@pytest.mark.parametrize("raw", ["0", "-5", "lots"])
def test_a_bad_memory_override_fails_the_deployment(raw):
    with pytest.raises(WorkerStartError, match=MME_MEMORY_ENV):
        multimodel.memory_limit("ml.m5.large", {MME_MEMORY_ENV: raw})


def test_multi_model_fleet_only_for_multi_model_containers():
    assert not ContainerDefinition.from_aws({"ModelDataUrl": "s3://b/model.tar.gz"}).is_multi_model
    container = ContainerDefinition.from_aws({"Mode": "MultiModel", "ModelDataUrl": "s3://b/mme/",
                                              "MultiModelConfig": {"ModelCacheSetting": "Disabled"}})
    fleet = multimodel.multi_model_fleet(FakeFleet(), container, "ml.m5.large", str, RecordedMetrics())
    assert (fleet.prefix, fleet.caching) == ("s3://b/mme/", False)
    assert multimodel.container_environment(ContainerDefinition.from_aws(
        {"Mode": "MultiModel", "Environment": {"A": "1"}})) == {"A": "1", "SAGEMAKER_MULTI_MODEL": "true"}
    with pytest.raises(WorkerStartError, match="ModelDataUrl"):
        multimodel.multi_model_fleet(FakeFleet(), ContainerDefinition(mode="MultiModel"), "ml.m5.large", str,
                                     RecordedMetrics())


def test_target_model_header_rules():
    refuse_routing_headers("ep", {})
    with pytest.raises(RuntimeValidationError, match="^Endpoint ep is not a multi-model endpoint"):
        refuse_routing_headers("ep", {"X-Amzn-SageMaker-Target-Model": "en.tar.gz"})
    mme = MultiModelFleet(FakeFleet(), "s3://b/mme/", str, MemoryLimit(None), RecordedMetrics())
    with pytest.raises(RuntimeValidationError, match=r"^Request [0-9a-f-]{36} is missing a target model header$"):
        asyncio.run(mme.serve(Invocation({}, b"{}", timeout=1)))


# --- the worker's module isolation ---------------------------------------------------------------


def test_each_models_code_is_imported_in_isolation(tmp_path):
    modules = []
    for number, language in enumerate(("en", "de")):
        code = tmp_path / language / "code"
        code.mkdir(parents=True)
        (code / "helpers.py").write_text(f"LANGUAGE = {language!r}\n")
        (code / "inference.py").write_text(
            "import helpers\n\ndef model_fn(model_dir):\n    import late\n    return late.VALUE\n\n"
            "def language():\n    return helpers.LANGUAGE\n")
        (code / "late.py").write_text(f"VALUE = {language.upper()!r}\n")
        with model_code_on_path(code, f"test_isolated_model_{number}"):
            module = import_script(code, "inference.py", f"test_isolated_model_{number}")
            assert module.model_fn(str(code.parent)) == language.upper(), "model_fn may import its helpers"
        modules.append(module)
    assert [module.language() for module in modules] == ["en", "de"]
    assert "helpers" not in sys.modules, "a model's helper module must not be shared through sys.modules"


# --- the host against a fake multi-model container -----------------------------------------------


@dataclass
class FakeFleet:
    """What a multi-model fleet uses of the instance fleet it wraps."""

    endpoint: str = "ep"
    variant: str = "AllTraffic"
    instances: list = field(default_factory=list)
    settings: object = None

    def __post_init__(self):
        self.settings = FakeSettings(client=InstanceClient())

    @property
    def ready(self) -> list:
        return list(self.instances)

    def unavailable(self) -> Exception:
        return RuntimeError("no instance")


@dataclass
class FakeLogs:
    region: str = "us-east-1"
    endpoint: str = "ep"


@dataclass
class FakeSettings:
    client: InstanceClient
    logs: FakeLogs = field(default_factory=FakeLogs)


@dataclass
class FakeInstance:
    port: int
    id: str = "i-1"
    inflight: int = 0
    process: object = None
    logs: FakeLogs = field(default_factory=FakeLogs)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class RecordedMetrics:
    def __init__(self):
        self.data: list[tuple[str, float, str]] = []

    def record(self, region, endpoint, variant, metric, value, namespace="AWS/SageMaker"):
        self.data.append((metric, value, namespace))

    def values(self, metric: str) -> list[float]:
        return [value for name, value, _ in self.data if name == metric]


class FakeContainer:
    """The /models API with scripted load answers; sizes in MiB per model name prefix."""

    def __init__(self, sizes: dict[str, int], out_of_memory_once: bool = False, load_seconds: float = 0):
        self.sizes = sizes
        self.out_of_memory_once = out_of_memory_once
        self.load_seconds = load_seconds
        self.loaded: dict[str, str] = {}  # name -> target
        self.events: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/models", self.load)
        app.router.add_delete("/models/{name}", self.unload)
        app.router.add_post("/models/{name}/invoke", self.invoke)
        return app

    async def load(self, request):
        fields = await request.json()
        target = fields["url"].rsplit("/", 1)[-1]
        await asyncio.sleep(self.load_seconds)
        if self.out_of_memory_once and self.loaded:
            self.out_of_memory_once = False
            self.events.append(f"507 {target}")
            return web.json_response({"code": 507, "type": "InsufficientMemoryException", "message": "full"},
                                     status=507)
        self.loaded[fields["model_name"]] = target
        self.events.append(f"load {target}")
        return web.json_response({"memoryBytes": self.sizes[target] * MIB, "downloadMicros": 10, "loadMicros": 20})

    async def unload(self, request):
        self.events.append(f"unload {self.loaded.pop(request.match_info['name'])}")
        return web.json_response({})

    async def invoke(self, request):
        return web.json_response({"target": self.loaded[request.match_info["name"]]})


async def serve(container: FakeContainer, budget_mib: int, calls, caching: bool = True):
    """Run ``calls(invoke)`` against a host over one fake instance; return (container events, metrics)."""
    server = TestServer(container.app())
    await server.start_server()
    metrics = RecordedMetrics()
    fleet = FakeFleet(instances=[FakeInstance(server.port)])
    host = MultiModelFleet(fleet, "s3://bucket/mme/", lambda uri: f"http://s3.local/{uri}",
                           MemoryLimit(None, budget_mib * MIB), metrics, caching)

    async def invoke(target: str) -> str:
        answer = await host.serve(Invocation({"X-Amzn-SageMaker-Target-Model": target}, b"{}", timeout=5))
        assert answer.status == 200
        return json.loads(answer.body)["target"]

    try:
        await calls(invoke)
        await asyncio.sleep(0.05)  # background unloads
    finally:
        await fleet.settings.client.close()
        await server.close()
    return container.events, metrics


def test_host_evicts_the_least_recently_used_and_reloads_on_demand():
    async def calls(invoke):
        for target in ("a", "b", "a", "c", "b"):
            assert await invoke(target) == target

    events, metrics = asyncio.run(serve(FakeContainer({"a": 60, "b": 60, "c": 60}), 150, calls))
    # c does not fit next to a and b: b (least recently used) goes. b's size is known when it comes back,
    # so room is made before it loads: a goes, used longer ago than c.
    assert events == ["load a", "load b", "load c", "unload b", "unload a", "load b"]
    assert metrics.values("ModelCacheHit") == [0, 0, 1, 0, 0]
    assert len(metrics.values("ModelUnloadingTime")) == 2
    assert max(metrics.values("LoadedModelCount")) == 2
    assert metrics.values("ModelDownloadingTime") == [10] * 4 and metrics.values("ModelLoadingTime") == [20] * 4


def test_a_full_container_gets_a_model_unloaded_and_the_load_retried():
    async def calls(invoke):
        assert await invoke("a") == "a"
        assert await invoke("b") == "b"

    events, _ = asyncio.run(serve(FakeContainer({"a": 10, "b": 10}, out_of_memory_once=True), 1000, calls))
    assert events == ["load a", "507 b", "unload a", "load b"]


def test_concurrent_first_requests_share_one_load():
    async def calls(invoke):
        assert await asyncio.gather(*(invoke("a") for _ in range(5))) == ["a"] * 5

    events, metrics = asyncio.run(serve(FakeContainer({"a": 10}, load_seconds=0.1), 1000, calls))
    assert events == ["load a"]
    assert metrics.values("ModelCacheHit") == [0] * 5
    assert len(metrics.values("ModelLoadingWaitTime")) == 5


def test_a_request_that_waits_too_long_gets_model_not_ready(monkeypatch):
    monkeypatch.setattr(multimodel, "MODEL_NOT_READY_SECONDS", 0.05)

    async def calls(invoke):
        with pytest.raises(AwsError) as caught:
            await invoke("a")
        assert (caught.value.code, caught.value.status) == ("ModelNotReadyException", 429)
        await asyncio.sleep(0.3)  # the load goes on; the retry finds it loaded
        assert await invoke("a") == "a"

    events, metrics = asyncio.run(serve(FakeContainer({"a": 10}, load_seconds=0.2), 1000, calls))
    assert events == ["load a"]
    assert metrics.values("ModelCacheHit") == [0, 1]


def test_with_caching_disabled_a_model_is_unloaded_after_each_request():
    async def calls(invoke):
        assert await invoke("a") == "a"
        await asyncio.sleep(0.05)
        assert await invoke("a") == "a"

    events, _ = asyncio.run(serve(FakeContainer({"a": 10}), 1000, calls, caching=False))
    assert events == ["load a", "unload a", "load a", "unload a"]
