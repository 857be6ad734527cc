"""Serverless variants through real boto3: cold starts, scale to zero, MaxConcurrency, the memory cap."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sagemaker_ops.packaging import build_model_archive
from tests.conftest import TIME_SCALE
from tests.emulator.conftest import wait_until, workers_of

IRIS_SOURCE = Path(__file__).resolve().parents[2] / "include" / "models" / "iris"
IRIS_ROW = json.dumps([[5.1, 3.5, 1.4, 0.2]])
IDLE_SECONDS = 300 / TIME_SCALE  # Settings.serverless_idle_seconds, scaled

# Allocates what the request asks for, in model_fn (ALLOCATE_MB) or per request.
ALLOCATING_MODEL = """
import json, os

def model_fn(model_dir):
    held = bytes(int(os.environ.get("ALLOCATE_MB", "0")) * 1024 * 1024)
    return {"held": len(held)}

def input_fn(body, content_type):
    return json.loads(body)

def predict_fn(data, model):
    # bytes(n) is calloc'd: the kernel maps zero pages lazily, so the allocation counts against
    # RLIMIT_DATA at once without spending seconds writing to it on a busy CI machine.
    block = bytes(data["allocate_mb"] * 1024 * 1024)
    return {"allocated_mb": len(block) // (1024 * 1024)}

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


def serverless_config(deployer, model: str, memory: int = 1024, concurrency: int = 5, **extra) -> str:
    name = deployer.name("config")
    deployer.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model,
        "ServerlessConfig": {"MemorySizeInMB": memory, "MaxConcurrency": concurrency, **extra}}])
    return name


def setup_time_samples(emulator, endpoint: str) -> list[dict]:
    points = emulator.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelSetupTime",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10),
        EndTime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1),
        Period=600, Statistics=["SampleCount", "Maximum"])["Datapoints"]
    return points


def metric_sum(emulator, endpoint: str, metric: str) -> float:
    points = emulator.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName=metric,
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10),
        EndTime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1), Period=600, Statistics=["Sum"])
    return sum(p["Sum"] for p in points["Datapoints"])


def sample_count(emulator, endpoint: str) -> int:
    return int(sum(p["SampleCount"] for p in setup_time_samples(emulator, endpoint)))


def invoke_iris(deployer, endpoint: str) -> tuple[list, float]:
    started = time.perf_counter()
    response = deployer.runtime.invoke_endpoint(EndpointName=endpoint, Body=IRIS_ROW, ContentType="application/json")
    return json.loads(response["Body"].read()), time.perf_counter() - started


@pytest.fixture(scope="module")
def iris_model_url(emulator, tmp_path_factory) -> str:
    from tests.emulator.conftest import BUCKET, Deployer

    archive = build_model_archive(IRIS_SOURCE, tmp_path_factory.mktemp("iris"))
    deployer = Deployer(emulator)
    key = f"models/iris/{archive.sha256}/model.tar.gz"
    deployer.s3.put_object(Bucket=BUCKET, Key=key, Body=archive.path.read_bytes())
    return f"s3://{BUCKET}/{key}"


def test_cold_start_warm_requests_and_scale_to_zero(deployer, emulator, iris_model_url):
    model = deployer.model(model_data_url=iris_model_url)
    endpoint = deployer.endpoint(serverless_config(deployer, model, memory=1024, concurrency=2))

    variant = deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == variant["DesiredServerlessConfig"] == {
        "MemorySizeInMB": 1024, "MaxConcurrency": 2}
    assert "CurrentInstanceCount" not in variant and "DesiredInstanceCount" not in variant
    assert workers_of(endpoint) == []  # InService with nothing running

    answer, cold = invoke_iris(deployer, endpoint)
    assert answer == ["setosa"]
    assert len(workers_of(endpoint)) == 1
    warm = [invoke_iris(deployer, endpoint)[1] for _ in range(5)]
    assert len(workers_of(endpoint)) == 1
    points = wait_until(lambda: setup_time_samples(emulator, endpoint), 10, "the ModelSetupTime metric")
    assert points[0]["Unit"] == "Microseconds" and points[0]["Maximum"] > 0
    time.sleep(2.5)  # two metric flushes: warm requests must not have added a setup
    assert sample_count(emulator, endpoint) == 1
    print(f"\niris serverless: cold {cold * 1000:.0f} ms (ModelSetupTime {points[0]['Maximum'] / 1000:.0f} ms), "
          f"warm median {sorted(warm)[len(warm) // 2] * 1000:.1f} ms")

    wait_until(lambda: not workers_of(endpoint), IDLE_SECONDS + 20, "the variant to scale to zero")
    assert invoke_iris(deployer, endpoint)[0] == ["setosa"]  # a new cold start
    wait_until(lambda: sample_count(emulator, endpoint) == 2, 10, "a second ModelSetupTime sample")


def test_requests_beyond_max_concurrency_are_throttled(deployer, emulator):
    endpoint = deployer.endpoint(serverless_config(deployer, deployer.model(), concurrency=2))
    # boto3 retries ThrottlingException by itself; this client shows what the endpoint answered.
    runtime = boto3.client("sagemaker-runtime", endpoint_url=emulator.url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing",
                           config=Config(retries={"total_max_attempts": 1}))
    results: list = [None] * 5
    start = threading.Barrier(len(results))

    def call(index: int) -> None:
        start.wait()
        try:
            response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json",
                                               Body=json.dumps({"values": [1], "sleep": 1.5}))
            results[index] = json.loads(response["Body"].read())
        except ClientError as error:
            results[index] = error.response

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    served = [r for r in results if "result" in r]
    throttled = [r for r in results if "Error" in r]
    assert len(served) == 2 and len(throttled) == 3, results
    for response in throttled:
        assert response["Error"] == {"Code": "ThrottlingException",
                                     "Message": "The request was denied due to request throttling."}
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Two requests at once need two workers: the second started while the first was busy.
    assert len(workers_of(endpoint)) == 2
    # Throttled requests never reached the model: only the two served ones are invocations.
    assert wait_until(lambda: metric_sum(emulator, endpoint, "Invocations") >= 2, 10, "the Invocations metric")
    time.sleep(1.5)  # one more metric flush
    assert metric_sum(emulator, endpoint, "Invocations") == 2


def test_a_worker_that_dies_mid_request_is_a_model_error_and_is_replaced(deployer):
    dying = ALLOCATING_MODEL.replace("def predict_fn(data, model):\n",
                                     "def predict_fn(data, model):\n    if data.get('exit'):\n        os._exit(3)\n")
    endpoint = deployer.endpoint(serverless_config(deployer, deployer.model(dying)))
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {"exit": True})
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalMessage"].startswith("The worker serving the request exited (code 3) before it answered")
    assert deployer.invoke(endpoint, {"allocate_mb": 1})["allocated_mb"] == 1  # a new worker cold-started


def test_memory_size_bounds_the_worker(deployer):
    endpoint = deployer.endpoint(serverless_config(deployer, deployer.model(ALLOCATING_MODEL), memory=1024))
    assert deployer.invoke(endpoint, {"allocate_mb": 200})["allocated_mb"] == 200
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {"allocate_mb": 1500})
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 500
    assert "MemoryError" in response["OriginalMessage"]
    assert deployer.invoke(endpoint, {"allocate_mb": 200})["allocated_mb"] == 200  # the worker survived

    # Just over the small variant's limit, within the larger one's.
    roomy = deployer.endpoint(serverless_config(deployer, deployer.model(ALLOCATING_MODEL), memory=2048))
    assert deployer.invoke(roomy, {"allocate_mb": 1100})["allocated_mb"] == 1100


def test_a_model_that_needs_more_memory_fails_the_endpoint(deployer):
    code_with_env = ALLOCATING_MODEL.replace('os.environ.get("ALLOCATE_MB", "0")', '"1500"')
    endpoint = deployer.endpoint(serverless_config(deployer, deployer.model(code_with_env), memory=1024), wait=False)
    described = deployer.wait_settled(endpoint)
    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith('Failed to load the model for container "container_1": model_fn raised MemoryError')
    assert "MemorySizeInMB 1024" in reason and "choose a larger MemorySizeInMB" in reason
    assert workers_of(endpoint) == []


def create_error(deployer, variants: list[dict], **extra) -> dict:
    # botocore checks ranges itself; without that check the request reaches the service, as from other SDKs.
    sm = boto3.client("sagemaker", endpoint_url=deployer.sm.meta.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing",
                      config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as caught:
        sm.create_endpoint_config(EndpointConfigName=deployer.name("config"), ProductionVariants=variants, **extra)
    return caught.value.response["Error"]


def serverless_variant(model: str, name: str = "AllTraffic", **config) -> dict:
    return {"VariantName": name, "ModelName": model,
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5, **config}}


def test_invalid_serverless_configs_are_rejected_with_aws_wording(deployer):
    model = deployer.model()
    path = "productionVariants.1.member.serverlessConfig"
    assert create_error(deployer, [serverless_variant(model, MemorySizeInMB=512)]) == {
        "Code": "ValidationException",
        "Message": f"1 validation error detected: Value '512' at '{path}.memorySizeInMB' failed to satisfy "
                   "constraint: Member must have value greater than or equal to 1024"}
    assert create_error(deployer, [serverless_variant(model, MemorySizeInMB=8192)])["Message"] == (
        f"1 validation error detected: Value '8192' at '{path}.memorySizeInMB' failed to satisfy constraint: "
        "Member must have value less than or equal to 6144")
    assert create_error(deployer, [serverless_variant(model, MaxConcurrency=201)])["Message"] == (
        f"1 validation error detected: Value '201' at '{path}.maxConcurrency' failed to satisfy constraint: "
        "Member must have value less than or equal to 200")
    assert create_error(deployer, [serverless_variant(model, MemorySizeInMB=1500)])["Message"] == (
        "MemorySizeInMB 1500 of production variant AllTraffic is not valid. Valid values are in 1 GB increments: "
        "1024 MB, 2048 MB, 3072 MB, 4096 MB, 5120 MB, or 6144 MB.")
    assert create_error(deployer, [serverless_variant(model, ProvisionedConcurrency=6)])["Message"] == (
        "ProvisionedConcurrency 6 of production variant AllTraffic must be less than or equal to MaxConcurrency 5.")


def test_serverless_feature_exclusions(deployer):
    model = deployer.model()
    assert create_error(deployer, [serverless_variant(model, "A"), serverless_variant(model, "B")])["Message"] == (
        "Production variant A is serverless, and Serverless Inference does not support multiple production variants.")
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://bucket/capture",
               "CaptureOptions": [{"CaptureMode": "Input"}]}
    assert create_error(deployer, [serverless_variant(model)], DataCaptureConfig=capture)["Message"] == (
        "Production variant AllTraffic is serverless, and Serverless Inference does not support data capture "
        "(DataCaptureConfig).")
    both = {**serverless_variant(model), "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    assert "a variant is either serverless or instance-based" in create_error(deployer, [both])["Message"]


def test_provisioned_concurrency_keeps_workers_warm_and_can_be_raised(deployer, emulator):
    endpoint = deployer.endpoint(serverless_config(deployer, deployer.model(), concurrency=3,
                                                   ProvisionedConcurrency=1))
    assert len(workers_of(endpoint)) == 1
    assert deployer.invoke(endpoint, {"values": [2]})["result"] == [4]

    with pytest.raises(ClientError) as caught:
        deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    assert caught.value.response["Error"]["Message"] == (
        "Variant AllTraffic is serverless and has no instance count: change its concurrency with "
        "ServerlessUpdateConfig instead of DesiredInstanceCount.")
    deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "ServerlessUpdateConfig": {"ProvisionedConcurrency": 2}}])
    variant = deployer.wait(endpoint)["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == variant["DesiredServerlessConfig"] == {
        "MemorySizeInMB": 1024, "MaxConcurrency": 3, "ProvisionedConcurrency": 2}
    assert len(workers_of(endpoint)) == 2

    time.sleep(IDLE_SECONDS + 3)
    assert len(workers_of(endpoint)) == 2  # provisioned workers outlive the idle period
    assert sample_count(emulator, endpoint) == 0  # and no request paid a cold start
