"""Multi-container endpoints: Direct invocation by hostname, and Serial inference pipelines."""

from __future__ import annotations

import json
import textwrap

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import ROLE_ARN

# Stage 1 of a pipeline: scale the values; stage 2: add them up. Each says who it is.
SCALER = """
import json

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    data = json.loads(body)
    return json.dumps({**data, "values": [v * 10 for v in data["values"]], "by": "scaler"}), "application/json"
"""
SUMMER = """
import json

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    data = json.loads(body)
    if data.get("explode"):
        raise ValueError("summer cannot add this")
    return json.dumps({"sum": sum(data["values"]), "by": "summer", "seen": data.get("by")}), "application/json"
"""


def multi_container_endpoint(deployer, mode: str) -> str:
    containers = [
        {"ContainerHostname": hostname, "Image": "local/python:3.11",
         "ModelDataUrl": deployer.upload({"code/inference.py": textwrap.dedent(code)})}
        for hostname, code in (("scaler", SCALER), ("summer", SUMMER))]
    model = deployer.name("mce-model")
    deployer.sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, Containers=containers,
                             InferenceExecutionConfig={"Mode": mode})
    return deployer.endpoint(deployer.config(model))


def invoke(deployer, endpoint: str, payload: dict, **kwargs) -> dict:
    response = deployer.runtime.invoke_endpoint(EndpointName=endpoint, Body=json.dumps(payload),
                                                ContentType="application/json", **kwargs)
    return json.loads(response["Body"].read())


def test_direct_invocation_reaches_only_the_target_container(deployer):
    endpoint = multi_container_endpoint(deployer, "Direct")
    assert invoke(deployer, endpoint, {"values": [1, 2]}, TargetContainerHostname="scaler") == {
        "values": [10, 20], "by": "scaler"}
    assert invoke(deployer, endpoint, {"values": [1, 2]}, TargetContainerHostname="summer") == {
        "sum": 3, "by": "summer", "seen": None}
    for kwargs, fragment in (({}, "specify a TargetContainerHostname"),
                             ({"TargetContainerHostname": "nope"}, "Target container hostname nope does not exist")):
        with pytest.raises(ClientError) as caught:
            invoke(deployer, endpoint, {"values": [1]}, **kwargs)
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        assert fragment in caught.value.response["Error"]["Message"]


def test_serial_pipeline_feeds_each_output_to_the_next_container(deployer):
    endpoint = multi_container_endpoint(deployer, "Serial")
    assert invoke(deployer, endpoint, {"values": [1, 2, 3]}) == {"sum": 60, "by": "summer", "seen": "scaler"}
    with pytest.raises(ClientError) as caught:
        invoke(deployer, endpoint, {"values": [1]}, TargetContainerHostname="summer")
    assert "not configured for direct invocation" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        invoke(deployer, endpoint, {"values": [1], "explode": True})
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "summer cannot add this" in caught.value.response["OriginalMessage"]


def test_each_container_runs_its_own_processes(deployer, emulator):
    endpoint = multi_container_endpoint(deployer, "Direct")
    streams = emulator.client("logs").describe_log_streams(
        logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}")["logStreams"]
    assert len(streams) == 2  # one worker per container on the single instance
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1


def test_direct_mode_needs_every_hostname(deployer):
    url = deployer.upload({"code/inference.py": textwrap.dedent(SCALER)})
    with pytest.raises(ClientError) as caught:
        deployer.sm.create_model(
            ModelName=deployer.name("mce"), ExecutionRoleArn=ROLE_ARN, InferenceExecutionConfig={"Mode": "Direct"},
            Containers=[{"ContainerHostname": "a", "Image": "x", "ModelDataUrl": url},
                        {"Image": "x", "ModelDataUrl": url}])
    assert caught.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "ContainerHostname must be specified for every container when InferenceExecutionConfig Mode is Direct."}


def test_target_container_on_a_single_container_endpoint(deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {}, TargetContainerHostname="anything")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "not configured for direct invocation" in caught.value.response["Error"]["Message"]
