"""Smoke tests beyond one plain request: asynchronous (S3 in, S3 out, bounded wait) and targeted, on the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagemaker_ops.operators.sagemaker_runtime import AsyncSmokeTestEndpointOperator, SmokeTestFailed
from tests.emulator.conftest import BUCKET, Deployer
from tests.operators.conftest import AwsTarget


@pytest.fixture(scope="module")
def async_endpoint(emulator) -> str:
    deployer = Deployer(emulator)
    config = deployer.name("async-config")
    deployer.sm.create_endpoint_config(
        EndpointConfigName=config,
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/async-ops/output",
                                               "S3FailurePath": f"s3://{BUCKET}/async-ops/failure"}},
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": deployer.model(factor=2),
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    yield deployer.endpoint(config)
    deployer.cleanup()


def smoke(target: AwsTarget, endpoint: str, payload: dict, **kwargs: Any) -> dict:
    kwargs = {"task_id": "smoke_test", "endpoint_name": endpoint, "payload": json.dumps(payload),
              "content_type": "application/json", "input_s3_uri": f"s3://{BUCKET}/async-ops/inputs",
              "waiter_delay": 1, "waiter_max_attempts": 30, "aws_conn_id": target.conn_id, **kwargs}
    return AsyncSmokeTestEndpointOperator(**kwargs).execute({})


def test_the_answer_is_read_from_the_output_location(emulator_aws, async_endpoint):
    result = smoke(emulator_aws, async_endpoint, {"values": [1, 2]}, expected_json={"result": [2, 4]})
    again = smoke(emulator_aws, async_endpoint, {"values": [1, 2]}, expected_json={"result": [2, 4]})

    assert result["prediction"]["result"] == [2, 4]
    assert result["output_location"].startswith(f"s3://{BUCKET}/async-ops/output/")
    assert again["input_location"] == result["input_location"]  # the payload is stored content-addressed
    assert again["output_location"] != result["output_location"]
    assert result["input_location"].startswith(f"s3://{BUCKET}/async-ops/inputs/")
    assert json.loads(json.dumps(result)) == result


def test_a_wrong_answer_fails_the_smoke_test(emulator_aws, async_endpoint):
    with pytest.raises(SmokeTestFailed, match=r"result\[0\]: expected 5, got 2"):
        smoke(emulator_aws, async_endpoint, {"values": [1]}, expected_json={"result": [5]})


def test_a_model_error_fails_with_what_sagemaker_wrote_to_the_failure_location(emulator_aws, async_endpoint):
    with pytest.raises(SmokeTestFailed) as raised:
        smoke(emulator_aws, async_endpoint, {"raise": "the model cannot do this"})
    message = str(raised.value)
    assert f"Asynchronous inference on endpoint {async_endpoint} failed (s3://{BUCKET}/async-ops/failure/" in message
    assert "the model cannot do this" in message


def test_the_wait_is_bounded(emulator_aws, async_endpoint):
    with pytest.raises(SmokeTestFailed, match=r"wrote no answer to s3://.* within 1 looks 1 s apart"):
        smoke(emulator_aws, async_endpoint, {"values": [1], "sleep": 1}, waiter_max_attempts=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_variant": "AllTraffic"}, "InvokeEndpointAsync has no targeted routing"),
        ({"input_s3_uri": "bucket/inputs"}, "input_s3_uri must be an S3 URI like s3://bucket/prefix"),
        ({"waiter_max_attempts": 0}, "waiter_max_attempts must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_are_refused_before_any_aws_call(kwargs, message):
    with pytest.raises(ValueError) as raised:
        smoke(AwsTarget("no-such-connection", "http://127.0.0.1:9"), "iris-async", {"values": [1]}, **kwargs)
    assert message in str(raised.value)


# -- targeted real-time smoke tests: the targets reach SageMaker as their headers --------------------


@pytest.fixture(scope="module")
def real_time_endpoint(emulator) -> str:
    deployer = Deployer(emulator)
    yield deployer.endpoint(deployer.config(deployer.model(factor=2)))
    deployer.cleanup()


def targeted(target: AwsTarget, endpoint: str, **kwargs: Any) -> dict:
    from sagemaker_ops.operators.sagemaker_runtime import SmokeTestEndpointOperator

    return SmokeTestEndpointOperator(task_id="smoke_test", endpoint_name=endpoint, payload=json.dumps({"values": [1]}),
                                     content_type="application/json", aws_conn_id=target.conn_id, **kwargs).execute({})


def test_target_model_and_container_hostname_are_sent(emulator_aws, real_time_endpoint):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="is not a multi-model endpoint and does not support target model header"):
        targeted(emulator_aws, real_time_endpoint, target_model="sentiment_en.tar.gz")
    with pytest.raises(ClientError, match="does not support the target container hostname header"):
        targeted(emulator_aws, real_time_endpoint, target_container_hostname="iris")
    result = targeted(emulator_aws, real_time_endpoint, target_variant="AllTraffic", expected_json={"result": [2]})
    assert (result["invoked_variant"], result["prediction"]["result"]) == ("AllTraffic", [2])
