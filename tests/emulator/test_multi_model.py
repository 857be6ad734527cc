"""Multi-model endpoints with real boto3: per-model code, load on first request, one load for concurrent
first requests, LRU eviction within a memory budget, AWS errors, and the MME metrics."""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import BUCKET, ROLE_ARN, model_archive

# Each archive carries its own code: inference.py imports a same-named helper module whose content differs
# per model, and model_fn can hold real memory, sleep, and note each load in a file.
INFERENCE = """
import json, os, time

import helpers


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        spec = json.load(f)
    if spec.get("load_log"):
        with open(spec["load_log"], "a") as log:
            log.write(f"{spec['name']} {os.getpid()}\\n")
    time.sleep(spec.get("load_seconds", 0))
    if spec.get("fail"):
        raise RuntimeError(spec["fail"])
    ballast = None
    if spec.get("mib"):
        import numpy as np

        ballast = np.full(spec["mib"] * 2**20 // 8, 1.0)  # filled, so really resident
    return {"name": spec["name"], "ballast": ballast}


def input_fn(body, content_type):
    return json.loads(body)


def predict_fn(data, model):
    return {"model": model["name"], "language": helpers.LANGUAGE, "greeting": helpers.greet(data.get("who", "")),
            "pid": os.getpid(), "module": __name__}


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""

HELPERS = {"en": 'LANGUAGE = "en"\n\ndef greet(who):\n    return f"Hello {who}"\n',
           "de": 'LANGUAGE = "de"\n\ndef greet(who):\n    return f"Hallo {who}"\n'}


class MultiModelSetup:
    """An S3 prefix of model archives and a multi-model endpoint over it."""

    def __init__(self, deployer, tmp_path: Path):
        self.deployer = deployer
        self.prefix_key = f"mme/{uuid.uuid4().hex}"
        self.load_log = tmp_path / "loads.txt"
        self.load_log.touch()

    def add(self, target: str, name: str, language: str = "en", **spec) -> None:
        files = {"code/inference.py": textwrap.dedent(INFERENCE), "code/helpers.py": HELPERS[language],
                 "model.json": json.dumps({"name": name, "load_log": str(self.load_log), **spec})}
        self.deployer.s3.put_object(Bucket=BUCKET, Key=f"{self.prefix_key}/{target}", Body=model_archive(files))

    def endpoint(self, count: int = 1, memory_mib: int | None = None, prefix_slash: str = "/") -> str:
        name = self.deployer.name("mme")
        environment = {"SAGEMAKER_EMULATOR_MME_MEMORY_MIB": str(memory_mib)} if memory_mib else {}
        self.deployer.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
            "Image": "local/sklearn:1.2-1", "Mode": "MultiModel", "Environment": environment,
            "ModelDataUrl": f"s3://{BUCKET}/{self.prefix_key}{prefix_slash}"})
        return self.deployer.endpoint(self.deployer.config(name, count=count))

    def invoke(self, endpoint: str, target: str, **payload) -> dict:
        response = self.deployer.runtime.invoke_endpoint(
            EndpointName=endpoint, TargetModel=target, Body=json.dumps(payload), ContentType="application/json")
        return json.loads(response["Body"].read())

    def loads(self) -> list[str]:
        return [line.split()[0] for line in self.load_log.read_text().splitlines()]


@pytest.fixture
def mme(deployer, tmp_path) -> MultiModelSetup:
    return MultiModelSetup(deployer, tmp_path)


def metric(emulator, endpoint: str, name: str, statistic: str, *, at_least: float = 1,
           namespace: str = "AWS/SageMaker") -> tuple[float, str | None]:
    """A metric's statistic over the last minutes, once its SampleCount reaches ``at_least`` (bounded wait)."""
    cloudwatch = emulator.client("cloudwatch")
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    deadline = time.monotonic() + 10
    while True:
        now = dt.datetime.now(dt.timezone.utc)
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=dimensions, StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=1), Period=600, Statistics=[statistic, "SampleCount"])["Datapoints"]
        if sum(p["SampleCount"] for p in points) >= at_least or time.monotonic() > deadline:
            values = [p[statistic] for p in points]
            if statistic == "Maximum":
                return max(values, default=0.0), points[0]["Unit"] if points else None
            return sum(values), points[0]["Unit"] if points else None
        time.sleep(0.3)


def test_each_target_model_answers_with_its_own_code(mme):
    mme.add("english.tar.gz", "english", language="en")
    mme.add("sub/german.tar.gz", "german", language="de")
    endpoint = mme.endpoint(prefix_slash="")  # a prefix without its trailing slash works the same

    english = mme.invoke(endpoint, "english.tar.gz", who="Ada")
    german = mme.invoke(endpoint, "sub/german.tar.gz", who="Ada")
    assert (english["model"], english["greeting"]) == ("english", "Hello Ada")
    assert (german["model"], german["greeting"]) == ("german", "Hallo Ada")
    assert english["module"] != german["module"], "each model's inference.py is a module of its own"
    assert mme.invoke(endpoint, "english.tar.gz")["language"] == "en"


def test_first_request_is_a_cache_miss_and_the_next_a_hit(emulator, mme):
    mme.add("english.tar.gz", "english")
    endpoint = mme.endpoint()
    for _ in range(3):
        mme.invoke(endpoint, "english.tar.gz")

    assert mme.loads() == ["english"]
    assert metric(emulator, endpoint, "ModelCacheHit", "Sum", at_least=3) == (2, "None")
    assert metric(emulator, endpoint, "ModelCacheHit", "SampleCount", at_least=3)[0] == 3
    assert metric(emulator, endpoint, "ModelLoadingWaitTime", "SampleCount")[0] == 1
    for name in ("ModelLoadingWaitTime", "ModelLoadingTime", "ModelDownloadingTime"):
        value, unit = metric(emulator, endpoint, name, "Maximum")
        assert value > 0 and unit == "Microseconds", name
    assert metric(emulator, endpoint, "LoadedModelCount", "Maximum", namespace="/aws/sagemaker/Endpoints")[0] == 1
    assert metric(emulator, endpoint, "Invocations", "Sum", at_least=3)[0] == 3


def test_concurrent_first_requests_load_the_model_once(emulator, mme):
    mme.add("slow.tar.gz", "slow", load_seconds=1)
    endpoint = mme.endpoint(count=2)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: mme.invoke(endpoint, "slow.tar.gz"), range(6)))

    assert mme.loads() == ["slow"]
    assert len({answer["pid"] for answer in answers}) == 1, "all went to the instance that loaded it"
    assert metric(emulator, endpoint, "ModelLoadingTime", "SampleCount")[0] == 1
    assert metric(emulator, endpoint, "ModelCacheHit", "Sum", at_least=6)[0] == 0
    assert metric(emulator, endpoint, "ModelLoadingWaitTime", "SampleCount", at_least=6)[0] == 6


def test_least_recently_used_models_are_unloaded_when_memory_runs_out(emulator, mme):
    # 64 MiB each (the first also pays for importing numpy) in a 180 MiB budget: two fit, three do not.
    for name in ("a", "b", "c"):
        mme.add(f"{name}.tar.gz", name, mib=64)
    endpoint = mme.endpoint(memory_mib=180)

    for name in ("a", "b", "a", "c"):  # b is the least recently used when c arrives
        assert mme.invoke(endpoint, f"{name}.tar.gz")["model"] == name
    assert mme.loads() == ["a", "b", "c"]
    mme.invoke(endpoint, "a.tar.gz")  # still loaded
    assert mme.loads() == ["a", "b", "c"]
    assert mme.invoke(endpoint, "b.tar.gz")["model"] == "b"  # evicted, so loaded again (and c goes)
    assert mme.loads() == ["a", "b", "c", "b"]

    assert metric(emulator, endpoint, "ModelUnloadingTime", "SampleCount", at_least=2)[0] == 2
    assert metric(emulator, endpoint, "ModelUnloadingTime", "Maximum")[1] == "Microseconds"
    assert metric(emulator, endpoint, "LoadedModelCount", "Maximum", namespace="/aws/sagemaker/Endpoints")[0] == 2
    assert metric(emulator, endpoint, "ModelCacheHit", "Sum", at_least=6)[0] == 2


def test_a_missing_target_model_is_a_validation_error(mme):
    mme.add("english.tar.gz", "english")
    endpoint = mme.endpoint()
    with pytest.raises(ClientError) as caught:
        mme.invoke(endpoint, "missing.tar.gz")
    assert caught.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": f"Failed to download model data(bucket: {BUCKET}, key: {mme.prefix_key}/missing.tar.gz). "
                   "Please ensure that there is an object located at the URL and that the role passed to "
                   "CreateModel has permissions to download the model."}
    assert mme.invoke(endpoint, "english.tar.gz")["model"] == "english"


def test_a_request_without_target_model_is_refused(mme):
    mme.add("english.tar.gz", "english")
    endpoint = mme.endpoint()
    with pytest.raises(ClientError) as caught:
        mme.deployer.runtime.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json")
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert re.fullmatch(r"Request [0-9a-f-]{36} is missing a target model header", error["Message"])


def test_a_model_that_fails_to_load_is_a_model_error_and_others_keep_serving(mme):
    mme.add("broken.tar.gz", "broken", fail="weights are corrupt")
    mme.add("english.tar.gz", "english")
    endpoint = mme.endpoint()
    with pytest.raises(ClientError) as caught:
        mme.invoke(endpoint, "broken.tar.gz")
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 500
    assert "weights are corrupt" in response["OriginalMessage"]
    assert mme.invoke(endpoint, "english.tar.gz")["model"] == "english"
