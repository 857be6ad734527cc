"""EnsureModelOperator and EnsureEndpointConfigOperator for every hosting option, against the emulator.

Multi-model and multi-container models, serverless variants, data capture and async configs are
created once and reused on a re-run (DescribeModel / DescribeEndpointConfig round-trip exactly);
impossible arguments are refused before any AWS call.
"""

from __future__ import annotations

import uuid

import pytest

from sagemaker_ops.operators.sagemaker_resources import EnsureEndpointConfigOperator, EnsureModelOperator
from tests.operators.conftest import AwsTarget

ROLE = "arn:aws:iam::123456789012:role/sagemaker-ops-execution"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
DATA = "s3://sagemaker-ops-artifacts/models/x/abc/model.tar.gz"


def ensure_model(target: AwsTarget, **kwargs) -> dict:
    kwargs = {"task_id": "ensure_model", "execution_role_arn": ROLE, "aws_conn_id": target.conn_id,
              "name_prefix": f"kinds-{uuid.uuid4().hex[:6]}", **kwargs}
    return EnsureModelOperator(**kwargs).execute({})


def ensure_config(target: AwsTarget, model_name: str, variants: list[dict], **kwargs) -> dict:
    return EnsureEndpointConfigOperator(
        task_id="ensure_endpoint_config", name_prefix="kinds-config", model_name=model_name,
        production_variants=variants, aws_conn_id=target.conn_id, **kwargs,
    ).execute({})


def containers(*hostnames: str | None) -> list[dict]:
    return [{"hostname": hostname, "model_data_url": DATA.replace("abc", str(index)), "image_uri": IMAGE,
             "environment": {"SAGEMAKER_PROGRAM": "inference.py"}} for index, hostname in enumerate(hostnames)]


def test_a_multi_model_container_serves_a_prefix(emulator_aws):
    prefix = "s3://sagemaker-ops-artifacts/models/sentiment/d1/"
    first = ensure_model(emulator_aws, name_prefix="mme", multi_model=True, model_data_url=prefix, image_uri=IMAGE)
    again = ensure_model(emulator_aws, name_prefix="mme", multi_model=True, model_data_url=prefix, image_uri=IMAGE)

    assert (first["created"], again["created"], again["model_name"]) == (True, False, first["model_name"])
    described = emulator_aws.client("sagemaker").describe_model(ModelName=first["model_name"])
    assert described["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": prefix, "Environment": {},
                                             "Mode": "MultiModel"}
    assert first["model_data_url"] == prefix


def test_a_direct_multi_container_model_is_created_once(emulator_aws):
    first = ensure_model(emulator_aws, name_prefix="mce", containers=containers("iris", "sentiment"),
                         inference_execution_mode="Direct")
    again = ensure_model(emulator_aws, name_prefix="mce", containers=containers("iris", "sentiment"),
                         inference_execution_mode="Direct")

    assert (first["created"], again["created"], again["model_name"]) == (True, False, first["model_name"])
    assert [c["hostname"] for c in first["containers"]] == ["iris", "sentiment"]
    assert (first["image_uri"], first["model_data_url"]) == (None, None)
    described = emulator_aws.client("sagemaker").describe_model(ModelName=first["model_name"])
    assert described["InferenceExecutionConfig"] == {"Mode": "Direct"}
    assert [c["ContainerHostname"] for c in described["Containers"]] == ["iris", "sentiment"]


def test_a_serial_pipeline_and_its_direct_twin_are_different_models(emulator_aws):
    serial = ensure_model(emulator_aws, name_prefix="mce", containers=containers("a", "b"))
    direct = ensure_model(emulator_aws, name_prefix="mce", containers=containers("a", "b"),
                          inference_execution_mode="Direct")
    assert serial["model_name"] != direct["model_name"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"containers": containers("a", None), "inference_execution_mode": "Direct"},
         "containers[1] needs a hostname: with inference_execution_mode Direct"),
        ({"containers": containers("a", "a")}, "containers: hostnames must be unique, got ['a', 'a']"),
        ({"containers": containers("a", "b"), "model_data_url": DATA},
         "Pass containers, or model_data_url for a single container, not both"),
        ({"containers": containers(*[f"c{i}" for i in range(16)])}, "containers must be a list of 1 to 15"),
        ({"containers": containers("a", "b"), "inference_execution_mode": "Parallel"},
         "inference_execution_mode must be Serial or Direct, got 'Parallel'"),
        ({"containers": [{"hostname": "a", "model_data_url": DATA}]},
         "Pass either containers[0].image_uri or containers[0].framework"),
        ({"containers": [{"host": "a"}]}, "containers[0] must be a dict with keys among"),
        ({"multi_model": True, "model_data_url": DATA, "image_uri": IMAGE},
         "model_data_url must be the s3:// prefix (ending in /) of the multi-model archives"),
    ],
)
def test_impossible_models_are_refused_before_any_aws_call(kwargs, message):
    with pytest.raises(ValueError) as raised:
        ensure_model(AwsTarget("no-such-connection", "http://127.0.0.1:9"), **kwargs)
    assert message in str(raised.value)


@pytest.fixture(scope="module")
def model_name(emulator) -> str:
    return ensure_model(AwsTarget("aws_default", emulator.url), name_prefix="kinds-model", model_data_url=DATA,
                        image_uri=IMAGE)["model_name"]


SERVERLESS = [{"VariantName": "AllTraffic", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
               "InitialVariantWeight": 1.0}]
INSTANCES = [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
              "InitialVariantWeight": 1.0}]
CAPTURE = {"EnableCapture": True, "InitialSamplingPercentage": 50, "DestinationS3Uri": "s3://sagemaker-ops-artifacts/dc",
           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
           "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}
ASYNC = {"OutputConfig": {"S3OutputPath": "s3://sagemaker-ops-artifacts/async/out",
                          "S3FailurePath": "s3://sagemaker-ops-artifacts/async/fail"},
         "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4}}


@pytest.mark.parametrize(
    ("variants", "extra", "described_key"),
    [
        (SERVERLESS, {}, None),
        (INSTANCES, {"data_capture_config": CAPTURE}, "DataCaptureConfig"),
        (INSTANCES, {"async_inference_config": ASYNC}, "AsyncInferenceConfig"),
    ],
    ids=["serverless", "data-capture", "async"],
)
def test_endpoint_configs_for_each_option_are_created_once(emulator_aws, model_name, variants, extra, described_key):
    first = ensure_config(emulator_aws, model_name, variants, **extra)
    again = ensure_config(emulator_aws, model_name, variants, **extra)

    assert (first["created"], again["created"]) == (True, False)
    assert again["endpoint_config_name"] == first["endpoint_config_name"]
    described = emulator_aws.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=first["endpoint_config_name"])
    assert [{**v, "ModelName": None} for v in described["ProductionVariants"]] == [
        {**v, "ModelName": None} for v in variants]
    if described_key:
        assert described[described_key] == next(iter(extra.values()))


def test_a_variant_needs_instances_or_serverless_not_both(model_name):
    both = [{**INSTANCES[0], "ServerlessConfig": SERVERLESS[0]["ServerlessConfig"]}]
    with pytest.raises(ValueError, match=r"production_variants\[0\] needs InstanceType .* or ServerlessConfig "
                                         r"\(exactly one\)"):
        ensure_config(AwsTarget("no-such-connection", "http://127.0.0.1:9"), model_name, both)
