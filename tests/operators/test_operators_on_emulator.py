"""The release operators against the real emulator: real archives, real model workers, real waits."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from airflow.sdk.exceptions import TaskDeferred
from sagemaker_ops.operators.s3 import PackageModelOperator
from sagemaker_ops.operators.sagemaker_endpoint import DeployEndpointOperator, EndpointDeploymentError
from sagemaker_ops.operators.sagemaker_resources import EnsureEndpointConfigOperator, EnsureModelOperator
from sagemaker_ops.operators.sagemaker_runtime import SmokeTestEndpointOperator, SmokeTestFailed
from sagemaker_ops.triggers.sagemaker import EndpointSettledTrigger
from tests.operators.conftest import AwsTarget

REPO = Path(__file__).resolve().parents[2]
IRIS_SOURCE = REPO / "include" / "models" / "iris"
SAMPLE = (REPO / "include" / "data" / "iris_sample.csv").read_text()
ROLE = "arn:aws:iam::123456789012:role/sagemaker-ops-execution"
BUCKET = "sagemaker-ops-artifacts"
EXPECTED = ["setosa", "versicolor", "virginica"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def broken_model(root: Path) -> Path:
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text(
        "def model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n\n"
        "def predict_fn(data, model):\n    return data\n"
    )
    return root


def endpoint_config_for(target: AwsTarget, source: Path, prefix: str, instance_count: int = 1) -> str:
    """Package, ensure the model and a config for ``source``; return the config's name."""
    conn = {"aws_conn_id": target.conn_id}
    package = PackageModelOperator(
        task_id="package", source_dir=str(source), bucket=BUCKET, key_prefix=f"models/{prefix}", **conn
    ).execute({})
    model = EnsureModelOperator(
        task_id="model", name_prefix=prefix, model_data_url=package["s3_uri"], execution_role_arn=ROLE,
        image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3", **conn,
    ).execute({})
    variants = [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large",
                 "InitialInstanceCount": instance_count, "InitialVariantWeight": 1.0}]
    config = EnsureEndpointConfigOperator(
        task_id="config", name_prefix=f"{prefix}-config", model_name=model["model_name"],
        production_variants=variants, **conn,
    ).execute({})
    return config["endpoint_config_name"]


def deploy(target: AwsTarget, endpoint: str, config: str, **overrides) -> dict:
    kwargs = {"task_id": "deploy", "endpoint_name": endpoint, "endpoint_config_name": config,
              "aws_conn_id": target.conn_id, "waiter_delay": 1, "waiter_max_attempts": 120, **overrides}
    return DeployEndpointOperator(**kwargs).execute({})


def smoke_test(target: AwsTarget, endpoint: str, **overrides) -> dict:
    kwargs = {"task_id": "smoke", "endpoint_name": endpoint, "payload": SAMPLE, "expected_json": EXPECTED,
              "aws_conn_id": target.conn_id, **overrides}
    return SmokeTestEndpointOperator(**kwargs).execute({})


@pytest.fixture(scope="module")
def iris_config(emulator, tmp_path_factory) -> str:
    """One iris endpoint config, shared by the tests of this module."""
    return endpoint_config_for(AwsTarget("aws_default", emulator.url), IRIS_SOURCE, "iris-ops")


def test_deploy_creates_then_a_rerun_converges_and_the_model_answers(emulator_aws: AwsTarget, iris_config: str):
    endpoint = unique("iris")
    first = deploy(emulator_aws, endpoint, iris_config)
    second = deploy(emulator_aws, endpoint, iris_config)

    assert (first["endpoint_status"], first["endpoint_config_name"]) == ("InService", iris_config)
    assert first["actions_taken"] == ["create"]
    assert (second["actions_taken"], second["changed"]) == ([], False)
    result = smoke_test(emulator_aws, endpoint)
    assert result["prediction"] == EXPECTED and result["invoked_variant"] == "AllTraffic"


def test_a_new_config_updates_the_endpoint(emulator_aws: AwsTarget, iris_config: str):
    endpoint = unique("iris")
    deploy(emulator_aws, endpoint, iris_config)
    bigger = endpoint_config_for(emulator_aws, IRIS_SOURCE, "iris-ops", instance_count=2)

    result = deploy(emulator_aws, endpoint, bigger)

    assert (result["actions_taken"], result["endpoint_config_name"]) == (["update"], bigger)
    assert smoke_test(emulator_aws, endpoint)["prediction"] == EXPECTED


def test_a_broken_model_fails_with_the_endpoint_failure_reason(emulator_aws: AwsTarget, tmp_path: Path):
    config = endpoint_config_for(emulator_aws, broken_model(tmp_path / "broken"), "broken")
    endpoint = unique("broken")
    expected = f"Endpoint {endpoint} ended Failed while deploying {config}: .*weights are corrupt"
    with pytest.raises(EndpointDeploymentError, match=expected):
        deploy(emulator_aws, endpoint, config)
    described = emulator_aws.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "Failed" and described["FailureReason"]


def test_a_failed_endpoint_is_replaced_by_the_next_release(emulator_aws: AwsTarget, iris_config: str, tmp_path: Path):
    endpoint = unique("replaced")
    broken = endpoint_config_for(emulator_aws, broken_model(tmp_path / "broken"), "broken")
    with pytest.raises(EndpointDeploymentError):
        deploy(emulator_aws, endpoint, broken)

    result = deploy(emulator_aws, endpoint, iris_config)

    assert result["actions_taken"] == ["delete", "create"]
    assert smoke_test(emulator_aws, endpoint)["prediction"] == EXPECTED


def test_deferred_deploy_waits_in_the_trigger_and_resumes(emulator_aws: AwsTarget, iris_config: str):
    endpoint = unique("deferred")
    with pytest.raises(TaskDeferred) as deferred:
        deploy(emulator_aws, endpoint, iris_config, deferrable=True)
    _, kwargs = deferred.value.trigger.serialize()

    async def first_event():
        async for event in EndpointSettledTrigger(**kwargs).run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success"
    operator = DeployEndpointOperator(task_id="deploy", endpoint_name=endpoint, endpoint_config_name=iris_config,
                                      aws_conn_id=emulator_aws.conn_id, deferrable=True, waiter_delay=1)
    assert operator.execute_complete({}, event)["actions_taken"] == ["create"]


def test_smoke_test_reports_a_wrong_answer(emulator_aws: AwsTarget, iris_config: str):
    endpoint = unique("iris")
    deploy(emulator_aws, endpoint, iris_config)
    with pytest.raises(SmokeTestFailed, match=r"\[0\]: expected 'virginica', got 'setosa'"):
        smoke_test(emulator_aws, endpoint, expected_json=["virginica", "versicolor", "virginica"])
    assert smoke_test(emulator_aws, endpoint, accept="text/csv", expected_json=None,
                      expected_body="setosa\nversicolor\nvirginica")["prediction"] == "setosa\nversicolor\nvirginica"
