"""The Amazon provider's own SageMaker operators and sensor work against the emulator, unchanged."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointConfigOperator,
    SageMakerEndpointOperator,
    SageMakerModelOperator,
)
from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerEndpointSensor
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from sagemaker_ops.operators.s3 import PackageModelOperator
from tests.operators.conftest import AwsTarget

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/sagemaker-ops-execution"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def iris_model_data(emulator) -> str:
    operator = PackageModelOperator(
        task_id="package", source_dir=str(REPO / "include" / "models" / "iris"),
        bucket="sagemaker-ops-artifacts", key_prefix="models/provider-test",
    )
    return operator.execute({})["s3_uri"]


def create_model_and_config(target: AwsTarget, model_data: str, instance_count: int = 1) -> tuple[str, str]:
    model_name, config_name = unique("prov-model"), unique("prov-config")
    model = SageMakerModelOperator(
        task_id="model", aws_conn_id=target.conn_id,
        config={"ModelName": model_name, "ExecutionRoleArn": ROLE,
                "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": model_data}},
    ).execute({})
    assert model["Model"]["ModelName"] == model_name
    config = SageMakerEndpointConfigOperator(
        task_id="config", aws_conn_id=target.conn_id,
        config={"EndpointConfigName": config_name, "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": model_name, "InstanceType": "ml.m5.large",
             "InitialInstanceCount": str(instance_count), "InitialVariantWeight": 1.0}]},
    ).execute({})
    assert config["EndpointConfig"]["ProductionVariants"][0]["InitialInstanceCount"] == instance_count
    return model_name, config_name


def endpoint_operator(target: AwsTarget, endpoint: str, config: str, **kwargs) -> SageMakerEndpointOperator:
    return SageMakerEndpointOperator(
        task_id="endpoint", aws_conn_id=target.conn_id, check_interval=1, max_ingestion_time=120,
        config={"EndpointName": endpoint, "EndpointConfigName": config}, **kwargs,
    )


def poke_until_done(sensor: SageMakerEndpointSensor, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not sensor.poke({}):
        assert time.monotonic() < deadline, "endpoint did not reach a terminal state"
        time.sleep(0.5)


def test_create_wait_and_sense(emulator_aws: AwsTarget, iris_model_data: str):
    _, config = create_model_and_config(emulator_aws, iris_model_data)
    endpoint = unique("prov-ep")

    result = endpoint_operator(emulator_aws, endpoint, config).execute({})

    assert result["Endpoint"]["EndpointStatus"] == "InService"
    poke_until_done(SageMakerEndpointSensor(task_id="sense", endpoint_name=endpoint, aws_conn_id=emulator_aws.conn_id))


def test_create_on_an_existing_endpoint_falls_back_to_update(emulator_aws: AwsTarget, iris_model_data: str):
    _, first = create_model_and_config(emulator_aws, iris_model_data)
    _, second = create_model_and_config(emulator_aws, iris_model_data, instance_count=2)
    endpoint = unique("prov-ep")
    endpoint_operator(emulator_aws, endpoint, first).execute({})

    # The provider matches AWS's "Cannot create already existing endpoint" message to switch to UpdateEndpoint.
    result = endpoint_operator(emulator_aws, endpoint, second).execute({})

    assert result["Endpoint"]["EndpointConfigName"] == second
    assert result["Endpoint"]["EndpointStatus"] == "InService"


def test_explicit_update_operation(emulator_aws: AwsTarget, iris_model_data: str):
    _, first = create_model_and_config(emulator_aws, iris_model_data)
    _, second = create_model_and_config(emulator_aws, iris_model_data, instance_count=2)
    endpoint = unique("prov-ep")
    endpoint_operator(emulator_aws, endpoint, first).execute({})

    result = endpoint_operator(emulator_aws, endpoint, second, operation="update").execute({})

    assert result["Endpoint"]["EndpointConfigName"] == second


def test_deferrable_endpoint_operator_and_its_trigger(emulator_aws: AwsTarget, iris_model_data: str):
    _, config = create_model_and_config(emulator_aws, iris_model_data)
    endpoint = unique("prov-ep")
    with pytest.raises(TaskDeferred) as deferred:
        endpoint_operator(emulator_aws, endpoint, config, deferrable=True).execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerTrigger)
    classpath, kwargs = trigger.serialize()
    kwargs.update(waiter_delay=1, waiter_max_attempts=60)

    async def first_event():
        async for event in SageMakerTrigger(**kwargs).run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success"
    result = endpoint_operator(emulator_aws, endpoint, config, deferrable=True).execute_complete({}, event)
    assert result["Endpoint"]["EndpointStatus"] == "InService"


def test_sensor_reports_a_failed_endpoint_with_its_reason(emulator_aws: AwsTarget, tmp_path: Path):
    broken = tmp_path / "broken"
    (broken / "code").mkdir(parents=True)
    (broken / "code" / "inference.py").write_text(
        "def model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n\ndef predict_fn(x, m):\n    return x\n"
    )
    model_data = PackageModelOperator(
        task_id="package", source_dir=str(broken), bucket="sagemaker-ops-artifacts", key_prefix="models/broken",
        aws_conn_id=emulator_aws.conn_id,
    ).execute({})["s3_uri"]
    _, config = create_model_and_config(emulator_aws, model_data)
    endpoint = unique("prov-broken")
    emulator_aws.client("sagemaker").create_endpoint(EndpointName=endpoint, EndpointConfigName=config)

    sensor = SageMakerEndpointSensor(task_id="sense", endpoint_name=endpoint, aws_conn_id=emulator_aws.conn_id)
    expected = "failed for the following reason: .*model_fn raised RuntimeError: weights are corrupt"
    with pytest.raises(AirflowException, match=expected):
        poke_until_done(sensor)
