"""An Instance as its fleet drives it: real worker processes, readiness by /ping, liveness, timeouts,
cancellation, serving processes per vCPU and the memory bound.

Model archives come from a local http.server standing in for the emulator's S3; CloudWatch Logs is a
recording sink. Every wait is bounded; no assertion is about how long something took.
"""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sagemaker_emulator.runtime.instance import ContainerSpec, Instance, WorkerStartError
from sagemaker_emulator.runtime.instance_health import HealthCheck
from sagemaker_rules.instance_catalog import instance_type
from tests.emulator.conftest import processes_in_group, wait_until
from tests.unit.test_worker_process import build_archive, s3, trickling_url  # noqa: F401 - fixtures

FAST_HEALTH = HealthCheck(interval=0.2, timeout=1.0, failures=3)
STARTUP_TIMEOUT = 30.0
EXIT_TIMEOUT = 15.0

MODEL = '''
import json, os, time

HELD = []

def model_fn(model_dir):
    marker = os.environ.get("MODEL_FN_MARKER")
    if marker:
        open(marker, "w").write(str(os.getpid()))
    if os.environ.get("MODEL_FN_HANGS"):
        while True:
            time.sleep(1)
    return {}

def transform_fn(model, body, content_type, accept):
    request = json.loads(body or b"{}")
    if request.get("hold_mib"):
        HELD.append(b"\\1" * (request["hold_mib"] * 1024 * 1024))  # touched, so it is resident
    return json.dumps({"pid": os.getpid()}), "application/json"
'''


class RecordingLogs:
    """Stands in for the endpoint's CloudWatch log group."""

    region = "us-east-1"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def stream_for(self, variant: str, instance_id: str) -> str:
        return f"{variant}/{instance_id}"

    def write(self, stream: str, lines: list[str]) -> None:
        self.lines.extend(lines)


@pytest.fixture
def model_spec(s3):  # noqa: F811 - the fixture imported above
    bucket, base_url = s3
    build_archive(bucket / "model.tar.gz", {"code/inference.py": textwrap.dedent(MODEL)})

    def spec(**environment: str) -> ContainerSpec:
        return ContainerSpec(image="local/test", environment=environment, model_data_s3_uri="s3://bucket/model.tar.gz",
                             model_data_presigned_url=f"{base_url}/model.tar.gz")

    return spec


def new_instance(spec: ContainerSpec, tmp_path: Path, **kwargs) -> tuple[Instance, RecordingLogs]:
    logs = RecordingLogs()
    return Instance("AllTraffic", spec, tmp_path / "work", logs, **kwargs), logs


async def invoke_port(port: int, body: bytes = b"{}") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return response


# --- Readiness and instance types ------------------------------------------------------------


@pytest.mark.parametrize(("type_name", "processes"), [("ml.c5.xlarge", 4), ("ml.c5.large", 2)])
def test_an_instance_runs_one_serving_process_per_vcpu(model_spec, tmp_path, type_name, processes) -> None:
    instance, _ = new_instance(model_spec(), tmp_path, instance_type=instance_type(type_name))

    async def scenario() -> tuple[list[int], list[bytes]]:
        await instance.start(STARTUP_TIMEOUT)
        try:
            group = processes_in_group(instance.process.pid)
            # Each serving process answers on its own port too; all of them serve the model.
            answers = await asyncio.gather(*(invoke_port(port) for port in instance.health_ports))
            return group, answers
        finally:
            await instance.stop(grace=5)

    group, answers = asyncio.run(scenario())

    assert sorted(group) == sorted(instance.pids) and len(group) == processes
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    assert len(set(instance.health_ports)) == processes
    assert processes_in_group(instance.pids[0]) == []


def test_model_server_workers_caps_the_serving_processes(model_spec, tmp_path) -> None:
    spec = model_spec(SAGEMAKER_MODEL_SERVER_WORKERS="1")
    instance, _ = new_instance(spec, tmp_path, instance_type=instance_type("ml.c5.xlarge"))

    async def scenario() -> list[int]:
        await instance.start(STARTUP_TIMEOUT)
        try:
            return processes_in_group(instance.process.pid)
        finally:
            await instance.stop(grace=5)

    assert asyncio.run(scenario()) == [instance.pids[0]]


def test_no_instance_type_means_one_serving_process(model_spec, tmp_path) -> None:
    instance, _ = new_instance(model_spec(), tmp_path)

    async def scenario() -> None:
        await instance.start(STARTUP_TIMEOUT)
        await instance.stop(grace=5)

    asyncio.run(scenario())
    assert len(instance.pids) == 1 and instance.health_ports == [instance.port]


# --- Start-up bounds: nothing is left behind -------------------------------------------------


def test_a_model_fn_that_never_returns_fails_at_the_startup_timeout(model_spec, tmp_path) -> None:
    marker = tmp_path / "model_fn-started"
    spec = model_spec(MODEL_FN_HANGS="1", MODEL_FN_MARKER=str(marker))
    instance, _ = new_instance(spec, tmp_path, instance_type=instance_type("ml.c5.large"))

    with pytest.raises(WorkerStartError) as caught:
        asyncio.run(instance.start(startup_timeout=2))

    assert caught.value.reason == (
        "The primary container for production variant AllTraffic did not pass the ping health check within "
        "2 seconds (ContainerStartupHealthCheckTimeoutInSeconds).")
    assert marker.exists(), "model_fn was running"
    assert processes_in_group(instance.process.pid) == []
    assert not (tmp_path / "work" / instance.id).exists()


@pytest.fixture
def trickling_spec(trickling_url):  # noqa: F811 - the fixture imported above
    """Model data that arrives one byte every 0.2 s: only a bound on the whole download stops it."""
    return ContainerSpec(image="local/test", model_data_s3_uri="s3://bucket/slow/model.tar.gz",
                         model_data_presigned_url=trickling_url)


def test_the_download_timeout_bounds_the_whole_download(trickling_spec, tmp_path) -> None:
    instance, _ = new_instance(trickling_spec, tmp_path)

    with pytest.raises(WorkerStartError) as caught:
        asyncio.run(instance.start(startup_timeout=STARTUP_TIMEOUT, download_timeout=1))

    assert caught.value.reason.startswith(
        'Failed to download model data for container "container_1" from URL: "s3://bucket/slow/model.tar.gz" '
        "within the ModelDataDownloadTimeoutInSeconds of 1 seconds.")
    assert processes_in_group(instance.process.pid) == []


def test_cancelling_a_start_stops_its_process(model_spec, tmp_path) -> None:
    """What DeleteEndpoint does to an endpoint whose worker is still in model_fn."""
    marker = tmp_path / "model_fn-started"
    spec = model_spec(MODEL_FN_HANGS="1", MODEL_FN_MARKER=str(marker))
    instance, _ = new_instance(spec, tmp_path, instance_type=instance_type("ml.c5.large"))

    async def scenario() -> None:
        start = asyncio.create_task(instance.start(STARTUP_TIMEOUT))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not marker.exists():
            assert time.monotonic() < deadline, "model_fn never started"
            await asyncio.sleep(0.05)
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start

    asyncio.run(scenario())
    assert processes_in_group(instance.process.pid) == []


# --- Liveness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["first", "forked"])
def test_a_hung_serving_process_gets_the_instance_killed(model_spec, tmp_path, which) -> None:
    instance, logs = new_instance(model_spec(), tmp_path, instance_type=instance_type("ml.c5.large"),
                                  health=FAST_HEALTH)

    async def scenario() -> int:
        await instance.start(STARTUP_TIMEOUT)
        victim = instance.pids[0] if which == "first" else instance.pids[1]
        os.kill(victim, signal.SIGSTOP)  # hung: it holds its sockets but answers nothing
        return await asyncio.wait_for(instance.wait_exit(), EXIT_TIMEOUT)

    assert asyncio.run(scenario()) == -signal.SIGKILL
    victim_port = instance.health_ports[0 if which == "first" else 1]
    assert any(line.startswith(f"Instance {instance.id} failed 3 health checks in a row: GET /ping on worker "
                               f"port {victim_port} did not answer 200 within 1 s.") for line in logs.lines), logs.lines
    wait_until(lambda: processes_in_group(instance.pids[0]) == [], EXIT_TIMEOUT, "every process of it gone")


def test_an_instance_over_its_types_memory_is_killed_as_out_of_memory(model_spec, tmp_path) -> None:
    # A made-up small type, so that two processes holding 200 MiB each exceed it while each one stays
    # under its own RLIMIT_DATA of the type's memory.
    small = replace(instance_type("ml.c5.large"), name="ml.test.small", memory_mib=350)
    instance, logs = new_instance(model_spec(), tmp_path, instance_type=small, health=FAST_HEALTH)

    async def scenario() -> int:
        await instance.start(STARTUP_TIMEOUT)
        for port in instance.health_ports:  # each serving process holds 200 MiB
            answer = await invoke_port(port, b'{"hold_mib": 200}')
            assert answer.startswith(b"HTTP/1.1 200"), answer
        return await asyncio.wait_for(instance.wait_exit(), EXIT_TIMEOUT)

    assert asyncio.run(scenario()) == -signal.SIGKILL
    assert any(f"Instance {instance.id} ran out of memory" in line and "(out of memory)" in line
               and "ml.test.small" in line for line in logs.lines), logs.lines
