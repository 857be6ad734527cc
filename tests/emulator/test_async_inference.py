"""Asynchronous inference: InvokeEndpointAsync, the queue behind it, S3 results, SNS notices, metrics."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.launcher import EmulatorProcess, free_port
from tests.conftest import TIME_SCALE, RunningEmulator
from tests.emulator.conftest import BUCKET, ECHO_MODEL, Deployer, recent_datapoints

# Writes its pid to a marker file when it starts predicting, so a test can kill it mid-request.
SLOW_MODEL = """
import json, os, time

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return json.loads(body)

def predict_fn(data, model):
    if data.get("marker"):
        with open(data["marker"], "a") as marker:
            marker.write(f"{os.getpid()}\\n")
    time.sleep(data.get("sleep", 0))
    return {"doubled": [2 * x for x in data.get("values", [])], "pid": os.getpid()}

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


def async_config(deployer, model: str, *, failure: bool = True, concurrency: int | None = None,
                 notifications: dict | None = None) -> tuple[str, str]:
    """(config name, output prefix)."""
    name = deployer.name("config")
    prefix = f"async-{uuid.uuid4().hex[:8]}"
    output = {"S3OutputPath": f"s3://{BUCKET}/{prefix}/output"}
    if failure:
        output["S3FailurePath"] = f"s3://{BUCKET}/{prefix}/failure"
    if notifications:
        output["NotificationConfig"] = notifications
    config = {"OutputConfig": output}
    if concurrency:
        config["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": concurrency}
    deployer.sm.create_endpoint_config(
        EndpointConfigName=name, AsyncInferenceConfig=config,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
                             "InitialInstanceCount": 1}])
    return name, prefix


def upload_input(deployer, payload: dict) -> str:
    key = f"async-inputs/{uuid.uuid4().hex}.json"
    deployer.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(payload))
    return f"s3://{BUCKET}/{key}"


def read_s3(deployer, uri: str, timeout: float = 60) -> bytes | None:
    """The object's body once it exists; None if it did not appear in time."""
    key = uri[len(f"s3://{BUCKET}/"):]
    deadline = time.monotonic() + timeout
    while True:
        try:
            return deployer.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except deployer.s3.exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)


def invoke_async(deployer, endpoint: str, payload: dict, **kwargs) -> dict:
    return deployer.runtime.invoke_endpoint_async(
        EndpointName=endpoint, InputLocation=upload_input(deployer, payload), ContentType="application/json",
        **kwargs)


def test_invoke_async_answers_at_once_and_writes_the_result(deployer):
    config, prefix = async_config(deployer, deployer.model(ECHO_MODEL, factor=3))
    endpoint = deployer.endpoint(config)
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert described["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == f"s3://{BUCKET}/{prefix}/output"

    response = invoke_async(deployer, endpoint, {"values": [1, 2]}, InferenceId="my-request-1")

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "my-request-1"
    output, failure = response["OutputLocation"], response["FailureLocation"]
    request_id = output.rsplit("/", 1)[1].removesuffix(".out")
    assert output == f"s3://{BUCKET}/{prefix}/output/{request_id}.out"
    assert failure == f"s3://{BUCKET}/{prefix}/failure/{request_id}-error.out"
    uuid.UUID(request_id)
    assert json.loads(read_s3(deployer, output))["result"] == [3.0, 6.0]
    assert read_s3(deployer, failure, timeout=0) is None


def test_inline_body_and_generated_inference_id(deployer):
    config, _ = async_config(deployer, deployer.model(ECHO_MODEL, factor=2), failure=False)
    endpoint = deployer.endpoint(config)
    response = deployer.runtime.invoke_endpoint_async(EndpointName=endpoint, Body=json.dumps({"values": [5]}),
                                                      ContentType="application/json")
    uuid.UUID(response["InferenceId"])
    assert "FailureLocation" not in response  # no S3FailurePath configured
    assert json.loads(read_s3(deployer, response["OutputLocation"]))["result"] == [10.0]


def test_model_error_goes_to_the_failure_location_only(deployer):
    config, _ = async_config(deployer, deployer.model(ECHO_MODEL))
    endpoint = deployer.endpoint(config)
    response = invoke_async(deployer, endpoint, {"raise": "boom"})

    failure = read_s3(deployer, response["FailureLocation"])
    assert failure is not None and b"boom" in failure
    assert read_s3(deployer, response["OutputLocation"], timeout=0) is None


def test_missing_input_object_fails_the_request(deployer):
    config, _ = async_config(deployer, deployer.model(ECHO_MODEL))
    endpoint = deployer.endpoint(config)
    missing = f"s3://{BUCKET}/async-inputs/{uuid.uuid4().hex}.json"
    response = deployer.runtime.invoke_endpoint_async(EndpointName=endpoint, InputLocation=missing)
    failure = read_s3(deployer, response["FailureLocation"]).decode()
    assert failure.startswith(f"ClientError: Failed to download the request payload from {missing}")


def test_sns_notifications_for_success_and_error(emulator, deployer):
    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    success_topic = sns.create_topic(Name=deployer.name("success"))["TopicArn"]
    error_topic = sns.create_topic(Name=deployer.name("error"))["TopicArn"]
    queue_url = sqs.create_queue(QueueName=deployer.name("notices"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic in (success_topic, error_topic):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    config, _ = async_config(deployer, deployer.model(ECHO_MODEL), notifications={
        "SuccessTopic": success_topic, "ErrorTopic": error_topic,
        "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"]})
    endpoint = deployer.endpoint(config)

    good = invoke_async(deployer, endpoint, {"values": [4]}, InferenceId="good", Accept="application/json")
    bad = invoke_async(deployer, endpoint, {"raise": "kaput"}, InferenceId="bad")

    notices = {}
    deadline = time.monotonic() + 60
    while len(notices) < 2 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            envelope = json.loads(message["Body"])
            notice = json.loads(envelope["Message"])
            notices[notice["inferenceId"]] = (envelope["TopicArn"], notice)
    topic, success = notices["good"]
    assert topic == success_topic
    assert success["invocationStatus"] == "Completed"
    assert (success["eventSource"], success["eventName"], success["eventVersion"]) == (
        "aws:sagemaker", "InferenceResult", "1.0")
    assert success["requestParameters"] == {"accept": "application/json", "contentType": "application/json",
                                            "endpointName": endpoint, "inputLocation": success["requestParameters"]
                                            ["inputLocation"]}
    assert success["responseParameters"] == {"contentType": "application/json",
                                             "outputLocation": good["OutputLocation"]}
    assert json.loads(base64.b64decode(success["responseBody"]["content"]))["result"] == [8.0]
    for moment in ("eventTime", "receivedTime"):
        dt.datetime.strptime(success[moment], "%Y-%m-%dT%H:%M:%S.%fZ")

    topic, error = notices["bad"]
    assert topic == error_topic
    assert error["invocationStatus"] == "Failed"
    assert error["failureReason"].startswith("ClientError: Received server error (500) from primary")
    assert "kaput" in error["failureReason"]
    assert "responseParameters" not in error and "responseBody" not in error
    assert read_s3(deployer, bad["FailureLocation"]) is not None


def test_backlog_metrics_while_requests_wait(emulator, deployer):
    config, _ = async_config(deployer, deployer.model(SLOW_MODEL), concurrency=1)
    endpoint = deployer.endpoint(config)
    responses = [invoke_async(deployer, endpoint, {"sleep": 0.5, "values": [i]}) for i in range(5)]
    outputs = [read_s3(deployer, r["OutputLocation"]) for r in responses]
    assert [json.loads(o)["doubled"] for o in outputs] == [[0], [2], [4], [6], [8]]

    cloudwatch = emulator.client("cloudwatch")

    def maximum(metric: str, dimensions: list[dict]) -> float | None:
        points = recent_datapoints(cloudwatch, metric, dimensions, "Maximum", bool, 10)
        return max((p["Maximum"] for p in points), default=None)

    by_endpoint = [{"Name": "EndpointName", "Value": endpoint}]
    # Five half-second requests, one at a time: the published backlog saw several waiting.
    assert maximum("ApproximateBacklogSize", by_endpoint) >= 2
    assert maximum("ApproximateBacklogSizePerInstance", by_endpoint) >= 2
    assert maximum("HasBacklogWithoutCapacity", by_endpoint) == 0
    by_variant = [*by_endpoint, {"Name": "VariantName", "Value": "AllTraffic"}]
    assert maximum("ModelLatency", by_variant) > 0
    # Async endpoints do not publish the real-time invocation metrics.
    for metric in ("Invocations", "InvocationsPerInstance", "OverheadLatency"):
        assert cloudwatch.list_metrics(Namespace="AWS/SageMaker", MetricName=metric,
                                       Dimensions=by_variant)["Metrics"] == []


def test_scaled_to_zero_requests_wait_for_capacity(emulator, deployer):
    config, _ = async_config(deployer, deployer.model(ECHO_MODEL, factor=2))
    endpoint = deployer.endpoint(config)

    def scale_to(count: int) -> None:
        deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": count}])
        assert deployer.wait(endpoint)["ProductionVariants"][0]["CurrentInstanceCount"] == count

    scale_to(0)
    response = invoke_async(deployer, endpoint, {"values": [7]})
    cloudwatch = emulator.client("cloudwatch")
    deadline, flagged = time.monotonic() + 15, False
    while not flagged and time.monotonic() < deadline:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="HasBacklogWithoutCapacity",
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
            StartTime=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5),
            EndTime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1),
            Period=600, Statistics=["Maximum"])["Datapoints"]
        flagged = any(p["Maximum"] == 1 for p in points)
        time.sleep(0.2)
    assert flagged
    assert read_s3(deployer, response["OutputLocation"], timeout=0) is None  # nothing could serve it

    scale_to(1)
    assert json.loads(read_s3(deployer, response["OutputLocation"]))["result"] == [14.0]


def test_request_survives_its_worker_being_killed(deployer, tmp_path: Path):
    config, _ = async_config(deployer, deployer.model(SLOW_MODEL))
    endpoint = deployer.endpoint(config)
    marker = tmp_path / "started"
    response = invoke_async(deployer, endpoint, {"marker": str(marker), "sleep": 1.5, "values": [21]})

    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = int(marker.read_text().split()[0])
    os.kill(victim, signal.SIGKILL)

    output = read_s3(deployer, response["OutputLocation"], timeout=90)
    assert output is not None, "the request was lost with its worker"
    answer = json.loads(output)
    assert answer["doubled"] == [42] and answer["pid"] != victim
    assert [int(pid) for pid in marker.read_text().split()] == [victim, answer["pid"]]  # delivered twice
    assert read_s3(deployer, response["FailureLocation"], timeout=0) is None


def test_waiting_request_survives_an_emulator_crash(tmp_path: Path):
    """The queue is journaled in the workdir: a restart on it delivers what the crash interrupted."""
    workdir, marker = tmp_path / "workdir", tmp_path / "started"
    payload = {"marker": str(marker), "sleep": 1, "values": [4]}

    def emulator(name: str) -> EmulatorProcess:
        return EmulatorProcess(free_port(), time_scale=TIME_SCALE, workdir=workdir, log=tmp_path / f"{name}.log")

    def deploy(process: EmulatorProcess, endpoint: str | None = None) -> tuple[Deployer, str]:
        deployer = Deployer(RunningEmulator(process.url, process.port, process, tmp_path / "unused.log"))
        config = deployer.name("config")
        deployer.sm.create_endpoint_config(
            EndpointConfigName=config, AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/out"}},
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": deployer.model(SLOW_MODEL),
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        endpoint = endpoint or deployer.name("endpoint")
        deployer.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        deployer.wait(endpoint)
        return deployer, endpoint

    with emulator("first") as first:
        deployer, endpoint = deploy(first)
        response = deployer.runtime.invoke_endpoint_async(EndpointName=endpoint, Body=json.dumps(payload),
                                                          ContentType="application/json")
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        first.process.kill()  # the emulator dies mid-request, leaving its workdir behind
        first.process.wait()

    # S3 and the endpoint lived in the dead process's memory: bring them back on the same workdir.
    with emulator("second") as second:
        deployer, _ = deploy(second, endpoint)
        answer = json.loads(read_s3(deployer, response["OutputLocation"]))
    assert answer["doubled"] == [8]
    assert len(marker.read_text().split()) == 2  # delivered at least once more after the crash


def test_unknown_endpoint(deployer):
    with pytest.raises(ClientError) as raised:
        deployer.runtime.invoke_endpoint_async(EndpointName="no-such-endpoint",
                                               InputLocation=f"s3://{BUCKET}/x.json")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"] == "Endpoint no-such-endpoint of account 123456789012 not found."


def test_async_and_real_time_endpoints_refuse_each_others_invocation(deployer):
    real_time = deployer.endpoint(deployer.config(deployer.model()))
    with pytest.raises(ClientError) as raised:
        deployer.runtime.invoke_endpoint_async(EndpointName=real_time, InputLocation=f"s3://{BUCKET}/x.json")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"] == (
        f"Endpoint {real_time} of account 123456789012 is not an asynchronous inference endpoint: "
        "invoke it with InvokeEndpoint.")

    asynchronous = deployer.endpoint(async_config(deployer, deployer.model())[0])
    with pytest.raises(ClientError) as raised:
        deployer.invoke(asynchronous, {"values": [1]})
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"] == (
        f"Endpoint {asynchronous} of account 123456789012 is an asynchronous inference endpoint: "
        "invoke it with InvokeEndpointAsync.")


INVALID_REQUESTS = [
    ({"InputLocation": f"s3://{BUCKET}/x.json", "Body": b"{}"},
     "Body and InputLocation are mutually exclusive. Provide exactly one of them."),
    ({"Body": b"x" * 128_001},
     "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length "
     "less than or equal to 128000"),
    ({"InputLocation": "ftp://bucket/x.json"},
     "1 validation error detected: Value 'ftp://bucket/x.json' at 'inputLocation' failed to satisfy "
     "constraint: Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$"),
    ({"InputLocation": f"s3://{BUCKET}/x.json", "RequestTTLSeconds": 30000},
     "1 validation error detected: Value '30000' at 'requestTTLSeconds' failed to satisfy constraint: "
     "Member must have value less than or equal to 21600"),
]


def test_request_validation(deployer):
    endpoint = deployer.endpoint(async_config(deployer, deployer.model())[0])
    for arguments, message in INVALID_REQUESTS:
        with pytest.raises(ClientError) as raised:
            deployer.runtime.invoke_endpoint_async(EndpointName=endpoint, **arguments)
        assert raised.value.response["Error"] == {"Code": "ValidationError", "Message": message}
