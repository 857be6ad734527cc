"""Helpers for tests that drive the emulator with real boto3 clients."""

from __future__ import annotations

import datetime as dt
import io
import os
import tarfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from sagemaker_ops.load_test.background import BackgroundCalls

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
BUCKET = "emulator-tests"

# A tiny model whose answers reveal which worker process served them.
ECHO_MODEL = """
import json, os, time

def model_fn(model_dir):
    with open(os.path.join(model_dir, "factor.txt")) as f:
        return {"factor": float(f.read())}

def input_fn(body, content_type):
    if content_type != "application/json":
        from sagemaker_emulator.runtime.handler import UnsupportedFormatError
        raise UnsupportedFormatError(content_type)
    return json.loads(body)

def predict_fn(data, model):
    if data.get("raise"):
        raise RuntimeError(data["raise"])
    if data.get("sleep"):
        time.sleep(data["sleep"])
    # "pid" names the instance: its first process, whose process group its serving processes (one per
    # vCPU) share. Killing it kills the instance.
    return {"result": [x * model["factor"] for x in data.get("values", [])], "pid": os.getpgid(0),
            "serving_pid": os.getpid()}

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


def model_archive(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Deployer:
    """Creates models, configs and endpoints with unique names and cleans them up afterwards."""

    def __init__(self, emulator):
        self.sm = emulator.client("sagemaker")
        self.s3 = emulator.client("s3")
        self.runtime = emulator.client("sagemaker-runtime")
        self.endpoints: list[str] = []
        if BUCKET not in [b["Name"] for b in self.s3.list_buckets()["Buckets"]]:
            self.s3.create_bucket(Bucket=BUCKET)

    @staticmethod
    def name(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def upload(self, files: dict[str, str | bytes] | None = None, *, raw: bytes | None = None) -> str:
        key = f"models/{uuid.uuid4().hex}/model.tar.gz"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=raw if raw is not None else model_archive(files))
        return f"s3://{BUCKET}/{key}"

    def model(self, code: str = ECHO_MODEL, factor: float = 2, *, model_data_url: str | None = None) -> str:
        name = self.name("model")
        url = model_data_url or self.upload({"code/inference.py": textwrap.dedent(code), "factor.txt": str(factor)})
        self.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN,
                             PrimaryContainer={"Image": "local/sklearn:1.2-1", "ModelDataUrl": url})
        return name

    def config(self, model: str, count: int = 1, variant: str = "AllTraffic") -> str:
        name = self.name("config")
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": variant, "ModelName": model, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": count}])
        return name

    def endpoint(self, config: str, wait: bool = True) -> str:
        name = self.name("endpoint")
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        self.endpoints.append(name)
        if wait:
            self.wait(name)
        return name

    def wait(self, endpoint: str) -> dict:
        self.sm.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
        return self.sm.describe_endpoint(EndpointName=endpoint)

    def wait_settled(self, endpoint: str, in_progress: tuple[str, ...] = ("Creating", "Updating")) -> dict:
        """Poll until the endpoint leaves the in-progress statuses (whatever it becomes)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            described = self.sm.describe_endpoint(EndpointName=endpoint)
            if described["EndpointStatus"] not in in_progress:
                return described
            time.sleep(0.2)
        raise AssertionError(f"{endpoint} did not settle")

    def invoke(self, endpoint: str, payload: dict, **kwargs) -> dict:
        import json

        response = self.runtime.invoke_endpoint(EndpointName=endpoint, Body=json.dumps(payload),
                                                ContentType="application/json", **kwargs)
        return {**json.loads(response["Body"].read()), "variant": response["InvokedProductionVariant"],
                "content_type": response["ContentType"]}

    def cleanup(self) -> None:
        for name in self.endpoints:
            try:
                self.sm.delete_endpoint(EndpointName=name)
            except self.sm.exceptions.ClientError:
                pass


class Traffic(BackgroundCalls):
    """A client invoking the endpoint back to back throughout: every answer and every failure is kept."""

    def __init__(self, deployer: Deployer, endpoint: str):
        super().__init__()
        self.deployer, self.endpoint = deployer, endpoint
        self.answers: list[float] = []

    def call(self) -> None:
        self.answers.append(self.deployer.invoke(self.endpoint, {"values": [1]})["result"][0])

    def failed(self, error: Exception) -> None:
        self.errors.append(str(error))


@pytest.fixture
def deployer(emulator):
    helper = Deployer(emulator)
    yield helper
    helper.cleanup()


def workers_of(endpoint: str) -> list[int]:
    """PIDs of the worker processes serving ``endpoint`` (their model dir lies under its name)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"sagemaker_emulator.runtime.worker" in command and any(f"/{endpoint}/".encode() in a for a in command):
            pids.append(int(entry.name))
    return pids


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def processes_in_group(pgid: int) -> list[int]:
    """Live processes of one instance: its worker runs in a process group of its own, named by the pid of
    its first process (the ECHO_MODEL's "pid"), with its forked serving processes."""
    import psutil

    found = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return found


def recent_datapoints(cloudwatch, metric: str, dimensions: list[dict], statistic: str, done, seconds: float) -> list:
    """The metric's AWS/SageMaker datapoints of the last minutes (one 10-minute period), polled until
    ``done(points)`` holds or ``seconds`` pass: the emulator publishes metrics about once a second."""
    deadline = time.monotonic() + seconds
    while True:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dimensions,
            StartTime=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5),
            EndTime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1),
            Period=600, Statistics=[statistic])["Datapoints"]
        if done(points) or time.monotonic() > deadline:
            return points
        time.sleep(0.3)
