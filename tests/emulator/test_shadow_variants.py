"""Shadow variants (ShadowProductionVariants): a copy of a share of the requests goes to a real shadow fleet;
the caller only ever sees the production answer; the shadow's traffic is measured and captured under its name."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from scipy.stats import binomtest

from tests.emulator.conftest import BUCKET, ECHO_MODEL, recent_datapoints, wait_until, workers_of

SIGNIFICANCE = 1e-4  # a correct router fails the share check with probability below this
BROKEN = ECHO_MODEL.replace('def predict_fn(data, model):\n',
                            'def predict_fn(data, model):\n    raise RuntimeError("the shadow is broken")\n')
SLOW = ECHO_MODEL.replace('def predict_fn(data, model):\n', 'def predict_fn(data, model):\n    time.sleep(30)\n')


def variant(name: str, model: str, weight: float = 1.0, **extra) -> dict:
    return {"VariantName": name, "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
            "InitialVariantWeight": weight, **extra}


def shadow_config(deployer, production: str, shadow: str | None, shadow_weight: float = 1.0,
                  capture_uri: str | None = None) -> str:
    name = deployer.name("shadow-config")
    extra = {}
    if shadow is not None:
        extra["ShadowProductionVariants"] = [variant("Shadow", shadow, shadow_weight)]
    if capture_uri is not None:
        extra["DataCaptureConfig"] = {"InitialSamplingPercentage": 100, "DestinationS3Uri": capture_uri,
                                      "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                                      "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}
    deployer.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant("Live", production)],
                                       **extra)
    return name


def captured_by_variant(deployer, uri: str) -> dict[str, list[dict]]:
    """Capture records under a destination, by the variant folder they were written to."""
    prefix = uri[len(f"s3://{BUCKET}/"):] + "/"
    found: dict[str, list[dict]] = {}
    for item in deployer.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        variant_name = item["Key"][len(prefix):].split("/")[1]
        body = deployer.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode()
        found.setdefault(variant_name, []).extend(json.loads(line) for line in body.splitlines())
    return found


def delete_and_wait(deployer, endpoint: str) -> None:
    """Deleting an endpoint waits for the shadow copies in flight and flushes its capture."""
    deployer.sm.delete_endpoint(EndpointName=endpoint)
    deployer.sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint,
                                                    WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})


def metric_sum(emulator, endpoint: str, variant_name: str, metric: str, at_least: float) -> float:
    """The metric's sum over the last minutes, polled until it reaches ``at_least`` (or 15 s pass)."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant_name}]
    points = recent_datapoints(emulator.client("cloudwatch"), metric, dimensions, "Sum",
                               lambda found: sum(p["Sum"] for p in found) >= at_least, 15)
    return sum(p["Sum"] for p in points)


def test_caller_sees_production_answers_and_shadow_gets_its_share_captured_under_its_name(deployer):
    uri = f"s3://{BUCKET}/shadow-capture-{uuid.uuid4().hex[:8]}"
    production, shadow = deployer.model(factor=1), deployer.model(factor=3)
    config = shadow_config(deployer, production, shadow, shadow_weight=0.3, capture_uri=uri)
    described_config = deployer.sm.describe_endpoint_config(EndpointConfigName=config)
    assert [v["VariantName"] for v in described_config["ShadowProductionVariants"]] == ["Shadow"]
    endpoint = deployer.endpoint(config)
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["Live"]
    (summary,) = described["ShadowProductionVariants"]
    assert (summary["VariantName"], summary["CurrentWeight"], summary["CurrentInstanceCount"]) == ("Shadow", 0.3, 1)

    calls = 200
    answers = [deployer.invoke(endpoint, {"values": [i]}) for i in range(calls)]
    assert all(a["variant"] == "Live" and a["result"] == [i] for i, a in enumerate(answers))
    delete_and_wait(deployer, endpoint)

    records = captured_by_variant(deployer, uri)
    assert len(records["Live"]) == calls
    copies = records.get("Shadow", [])
    result = binomtest(len(copies), calls, 0.3)  # weight 0.3 over the production variant's 1.0
    assert result.pvalue > SIGNIFICANCE, f"the shadow got {len(copies)}/{calls} copies, expected a share of 0.3"
    for record in copies:  # the shadow's own answers: three times the input
        sent = json.loads(record["captureData"]["endpointInput"]["data"])["values"][0]
        assert json.loads(record["captureData"]["endpointOutput"]["data"])["result"] == [sent * 3]


def test_a_failing_shadow_never_fails_the_caller_and_publishes_its_5xx(emulator, deployer):
    config = shadow_config(deployer, deployer.model(factor=1), deployer.model(BROKEN))  # every request copied
    endpoint = deployer.endpoint(config)
    answers = [deployer.invoke(endpoint, {"values": [2]}) for _ in range(6)]
    assert {(a["variant"], tuple(a["result"])) for a in answers} == {("Live", (2,))}
    assert metric_sum(emulator, endpoint, "Shadow", "Invocation5XXErrors", 6) == 6
    assert metric_sum(emulator, endpoint, "Shadow", "Invocations", 6) == 6
    assert metric_sum(emulator, endpoint, "Live", "Invocations", 6) == 6
    assert metric_sum(emulator, endpoint, "Live", "Invocation5XXErrors", 0) == 0


def test_a_shadow_that_times_out_never_fails_the_caller(emulator, deployer):
    """The shadow never answers within the invocation timeout (3 s at the tests' time scale); the caller
    has its production answer and the shadow's timeout is its own 5XX."""
    endpoint = deployer.endpoint(shadow_config(deployer, deployer.model(factor=1), deployer.model(SLOW)))
    assert deployer.invoke(endpoint, {"values": [4]})["result"] == [4]
    assert metric_sum(emulator, endpoint, "Live", "Invocations", 1) == 1
    assert metric_sum(emulator, endpoint, "Shadow", "Invocation5XXErrors", 1) == 1


def test_shadow_latency_is_published_under_its_name(emulator, deployer):
    endpoint = deployer.endpoint(shadow_config(deployer, deployer.model(factor=1), deployer.model(factor=2)))
    for _ in range(3):
        deployer.invoke(endpoint, {"values": [1]})
    assert metric_sum(emulator, endpoint, "Shadow", "Invocations", 3) == 3
    assert metric_sum(emulator, endpoint, "Shadow", "ModelLatency", 1) > 0


def test_update_adds_then_removes_the_shadow(deployer):
    production = deployer.model(factor=1)
    endpoint = deployer.endpoint(shadow_config(deployer, production, None))
    assert "ShadowProductionVariants" not in deployer.sm.describe_endpoint(EndpointName=endpoint)

    deployer.sm.update_endpoint(EndpointName=endpoint,
                                EndpointConfigName=shadow_config(deployer, production, deployer.model(factor=5)))
    described = deployer.wait(endpoint)
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["Shadow"]
    assert any("/Shadow/" in arguments for arguments in _worker_arguments(endpoint))
    assert deployer.invoke(endpoint, {"values": [1]})["result"] == [1]

    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=shadow_config(deployer, production, None))
    described = deployer.wait(endpoint)
    assert "ShadowProductionVariants" not in described
    # The old fleets drain and stop after the endpoint is InService on the new config.
    wait_until(lambda: not any("/Shadow/" in arguments for arguments in _worker_arguments(endpoint)), 30,
               "the shadow's worker processes to stop")
    assert deployer.invoke(endpoint, {"values": [1]})["result"] == [1]


def _worker_arguments(endpoint: str) -> list[str]:
    arguments = []
    for pid in workers_of(endpoint):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                arguments.append(cmdline.read().replace(b"\0", b" ").decode())
        except OSError:
            pass
    return arguments


def test_the_shadow_cannot_be_targeted_directly(deployer):
    endpoint = deployer.endpoint(shadow_config(deployer, deployer.model(factor=1), deployer.model(factor=3)))
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {"values": [1]}, TargetVariant="Shadow")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "The variant Shadow does not exist" in caught.value.response["Error"]["Message"]


def _refusal(deployer, **request) -> str:
    with pytest.raises(ClientError) as caught:
        deployer.sm.create_endpoint_config(EndpointConfigName=deployer.name("bad-shadow"), **request)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return caught.value.response["Error"]["Message"]


def test_validation_errors(deployer):
    model = deployer.model()
    live = [variant("Live", model)]
    message = _refusal(deployer, ProductionVariants=live,
                       ShadowProductionVariants=[variant("S1", model), variant("S2", model)])
    assert "at most one shadow variant" in message
    message = _refusal(deployer, ProductionVariants=[variant("A", model), variant("B", model)],
                       ShadowProductionVariants=[variant("S1", model)])
    assert "exactly one production variant; it has 2" in message
    message = _refusal(deployer, ProductionVariants=live, ShadowProductionVariants=[variant("Live", model)])
    assert "['Live'] is both a production variant and a shadow variant" in message
    serverless = {"VariantName": "S1", "ModelName": model,
                  "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}
    message = _refusal(deployer, ProductionVariants=live, ShadowProductionVariants=[serverless])
    assert "not supported with serverless inference (ServerlessConfig), which variant S1 uses" in message
    message = _refusal(deployer, ProductionVariants=live, ShadowProductionVariants=[variant("S1", "no-such-model")])
    assert "no-such-model" in message
    asynchronous = {"OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/async"}}
    message = _refusal(deployer, ProductionVariants=live, ShadowProductionVariants=[variant("S1", model)],
                       AsyncInferenceConfig=asynchronous)
    assert "asynchronous inference (AsyncInferenceConfig)" in message


def test_a_guarded_update_with_a_shadow_is_refused(deployer):
    production = deployer.model(factor=1)
    endpoint = deployer.endpoint(shadow_config(deployer, production, None))
    with pytest.raises(ClientError) as caught:
        deployer.sm.update_endpoint(
            EndpointName=endpoint, EndpointConfigName=shadow_config(deployer, production, deployer.model()),
            DeploymentConfig={"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "does not support DeploymentConfig for endpoints with shadow variants" in \
        caught.value.response["Error"]["Message"]
    assert deployer.sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"


def test_inference_experiments_are_refused_clearly(emulator):
    with pytest.raises(ClientError) as caught:
        emulator.client("sagemaker").list_inference_experiments()
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
    assert caught.value.response["Error"]["Message"] == (
        "The operation ListInferenceExperiments is not supported by this emulator. To shadow-test a model, give it "
        "as ShadowProductionVariants in CreateEndpointConfig.")
