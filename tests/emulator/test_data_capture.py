"""Data capture: sampled invocations land in S3 as JSON Lines, in AWS's key layout and record format."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import BUCKET

# Echoes the request in the content type it came in: CSV and JSON as text, anything else as bytes.
ECHO_ANY_MODEL = """
import json

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body, content_type

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    body, content_type = prediction
    if content_type == "application/json":
        return json.dumps({"echo": json.loads(body)}), "application/json"
    if content_type == "text/csv":
        return body, "text/csv; charset=utf-8"
    return bytes(reversed(body)), "application/octet-stream"
"""

KEY_LAYOUT = re.compile(r"^(?P<prefix>.+)/(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/\d{4}/\d{2}/\d{2}/\d{2}/"
                        r"\d{2}-\d{2}-\d{3}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jsonl$")
BINARY = bytes(range(256))


def capture(destination: str, sampling: int = 100, modes: tuple[str, ...] = ("Input", "Output"),
            typed: bool = True, **extra) -> dict:
    config = {"InitialSamplingPercentage": sampling, "DestinationS3Uri": destination,
              "CaptureOptions": [{"CaptureMode": mode} for mode in modes], **extra}
    if typed:
        config["CaptureContentTypeHeader"] = {"CsvContentTypes": ["text/csv"],
                                              "JsonContentTypes": ["application/json"]}
    return config


def destination() -> str:
    return f"s3://{BUCKET}/capture-{uuid.uuid4().hex[:8]}"


def deploy(deployer, data_capture: dict) -> str:
    name = deployer.name("config")
    deployer.sm.create_endpoint_config(
        EndpointConfigName=name, DataCaptureConfig=data_capture,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": deployer.model(ECHO_ANY_MODEL),
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    return deployer.endpoint(name)


def invoke(deployer, endpoint: str, body: bytes | str, content_type: str, **kwargs) -> bytes:
    return deployer.runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type,
                                            **kwargs)["Body"].read()


def captured(deployer, uri: str, at_least: int = 0, timeout: float = 30) -> tuple[list[str], list[dict]]:
    """(keys, records) under a destination, polling until ``at_least`` records have arrived."""
    prefix = uri[len(f"s3://{BUCKET}/"):] + "/"
    deadline = time.monotonic() + timeout
    while True:
        listed = deployer.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        keys = sorted(item["Key"] for item in listed)
        records = [json.loads(line) for key in keys
                   for line in deployer.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()]
        if len(records) >= at_least or time.monotonic() > deadline:
            return keys, records
        time.sleep(0.2)


def delete_and_wait(deployer, endpoint: str) -> None:
    deployer.sm.delete_endpoint(EndpointName=endpoint)
    deployer.sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint,
                                                    WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})


def test_full_sampling_captures_every_invocation_once_in_aws_format(deployer):
    uri = destination()
    endpoint = deploy(deployer, capture(uri))
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)["DataCaptureConfig"]
    assert described == {"EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 100,
                         "DestinationS3Uri": uri}

    sent = []
    for i in range(4):
        invoke(deployer, endpoint, f"{i},1.5,2\n", "text/csv", InferenceId=f"csv-{i}")
        invoke(deployer, endpoint, json.dumps({"i": i}), "application/json")
        invoke(deployer, endpoint, BINARY, "application/x-npy", InferenceId=f"bin-{i}")
        sent += [("CSV", f"csv-{i}"), ("JSON", None), ("BASE64", f"bin-{i}")]

    keys, records = captured(deployer, uri, at_least=len(sent))
    assert len(records) == len(sent)  # exactly once each, across however many files
    for key in keys:
        match = KEY_LAYOUT.match(key)
        assert match and match["endpoint"] == endpoint and match["variant"] == "AllTraffic", key

    by_encoding: dict[str, list[dict]] = {}
    for record in records:
        assert record["eventVersion"] == "0"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", record["eventMetadata"]["inferenceTime"])
        uuid.UUID(record["eventMetadata"]["eventId"])
        request, response = record["captureData"]["endpointInput"], record["captureData"]["endpointOutput"]
        assert (request["mode"], response["mode"]) == ("INPUT", "OUTPUT")
        by_encoding.setdefault(request["encoding"], []).append(record)
    assert {k: len(v) for k, v in by_encoding.items()} == {"CSV": 4, "JSON": 4, "BASE64": 4}

    csv = next(r for r in by_encoding["CSV"] if r["eventMetadata"]["inferenceId"] == "csv-2")
    assert csv["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                   "data": "2,1.5,2\n", "encoding": "CSV"}
    # The response's content type carries a charset; it is still CSV.
    assert csv["captureData"]["endpointOutput"] == {"observedContentType": "text/csv; charset=utf-8",
                                                    "mode": "OUTPUT", "data": "2,1.5,2\n", "encoding": "CSV"}
    as_json = by_encoding["JSON"][0]["captureData"]
    assert as_json["endpointOutput"]["encoding"] == "JSON"
    assert json.loads(as_json["endpointOutput"]["data"])["echo"] == json.loads(as_json["endpointInput"]["data"])
    assert all("inferenceId" not in r["eventMetadata"] for r in by_encoding["JSON"])
    binary = by_encoding["BASE64"][0]["captureData"]
    assert base64.b64decode(binary["endpointInput"]["data"]) == BINARY
    assert binary["endpointOutput"] == {"observedContentType": "application/octet-stream", "mode": "OUTPUT",
                                        "data": base64.b64encode(bytes(reversed(BINARY))).decode(),
                                        "encoding": "BASE64"}


def test_input_only_without_content_type_header_is_base64(deployer):
    uri = destination()
    endpoint = deploy(deployer, capture(uri, modes=("Input",), typed=False))
    invoke(deployer, endpoint, "1,2,3", "text/csv", InferenceId="only-input")

    _, records = captured(deployer, uri, at_least=1)
    assert len(records) == 1
    assert list(records[0]["captureData"]) == ["endpointInput"]
    assert records[0]["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(records[0]["captureData"]["endpointInput"]["data"]) == b"1,2,3"
    assert records[0]["eventMetadata"]["inferenceId"] == "only-input"


def test_zero_sampling_captures_nothing(deployer):
    uri = destination()
    endpoint = deploy(deployer, capture(uri, sampling=0))
    for i in range(5):
        invoke(deployer, endpoint, f"{i}", "text/csv")
    delete_and_wait(deployer, endpoint)  # deleting flushes whatever was buffered
    assert captured(deployer, uri, timeout=0) == ([], [])


def test_delete_flushes_buffered_records(deployer):
    uri = destination()
    endpoint = deploy(deployer, capture(uri))
    for i in range(3):
        invoke(deployer, endpoint, f"{i}", "text/csv")
    delete_and_wait(deployer, endpoint)
    # No waiting for the flush interval: the endpoint is gone only once its capture is delivered.
    _, records = captured(deployer, uri, timeout=0)
    assert sorted(r["captureData"]["endpointInput"]["data"] for r in records) == ["0", "1", "2"]


def test_update_flushes_the_old_config_and_captures_with_the_new_one(deployer):
    old_uri, new_uri = destination(), destination()
    endpoint = deploy(deployer, capture(old_uri))
    for i in range(3):
        invoke(deployer, endpoint, f"old-{i}", "text/csv")
    new_config = deployer.name("config")
    deployer.sm.create_endpoint_config(
        EndpointConfigName=new_config, DataCaptureConfig=capture(new_uri, sampling=100, modes=("Output",)),
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": deployer.model(ECHO_ANY_MODEL),
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)
    deployer.wait(endpoint)
    invoke(deployer, endpoint, "new-0", "text/csv")

    _, old_records = captured(deployer, old_uri, at_least=3)
    assert sorted(r["captureData"]["endpointInput"]["data"] for r in old_records) == ["old-0", "old-1", "old-2"]
    delete_and_wait(deployer, endpoint)
    _, new_records = captured(deployer, new_uri, timeout=0)
    assert [list(r["captureData"]) for r in new_records] == [["endpointOutput"]]
    assert new_records[0]["captureData"]["endpointOutput"]["data"] == "new-0"


def test_capture_that_cannot_be_written_never_fails_an_invocation(emulator, deployer):
    endpoint = deploy(deployer, capture(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/capture"))
    assert [invoke(deployer, endpoint, f"{i}", "text/csv") for i in range(3)] == [b"0", b"1", b"2"]
    delete_and_wait(deployer, endpoint)
    assert f"data capture for endpoint {endpoint} could not write 3 record(s)" in emulator.log_text()


def test_disabled_capture_is_stopped_and_writes_nothing(deployer):
    uri = destination()
    endpoint = deploy(deployer, capture(uri, EnableCapture=False))
    summary = deployer.sm.describe_endpoint(EndpointName=endpoint)["DataCaptureConfig"]
    assert (summary["EnableCapture"], summary["CaptureStatus"]) == (False, "Stopped")
    invoke(deployer, endpoint, "1", "text/csv")
    delete_and_wait(deployer, endpoint)
    assert captured(deployer, uri, timeout=0) == ([], [])


def test_destination_must_be_an_s3_uri(deployer):
    with pytest.raises(ClientError) as raised:
        deployer.sm.create_endpoint_config(
            EndpointConfigName=deployer.name("config"),
            DataCaptureConfig=capture("https://example.com/capture"),
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": deployer.model(ECHO_ANY_MODEL),
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert raised.value.response["Error"]["Message"] == (
        "DataCaptureConfig.DestinationS3Uri 'https://example.com/capture' is not a valid S3 URI: "
        "it must look like s3://bucket/prefix.")


def test_asynchronous_invocations_are_captured_too(deployer):
    uri = destination()
    name = deployer.name("config")
    deployer.sm.create_endpoint_config(
        EndpointConfigName=name, DataCaptureConfig=capture(uri),
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/async-captured"}},
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": deployer.model(ECHO_ANY_MODEL),
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    endpoint = deployer.endpoint(name)
    deployer.runtime.invoke_endpoint_async(EndpointName=endpoint, Body="4,2", ContentType="text/csv",
                                           InferenceId="queued-1")

    _, records = captured(deployer, uri, at_least=1)
    assert len(records) == 1
    assert records[0]["eventMetadata"]["inferenceId"] == "queued-1"
    assert records[0]["captureData"]["endpointInput"]["data"] == "4,2"
    assert records[0]["captureData"]["endpointOutput"]["data"] == "4,2"
