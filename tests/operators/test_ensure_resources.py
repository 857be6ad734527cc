"""EnsureModelOperator and EnsureEndpointConfigOperator: create once, reuse, refuse a changed spec."""

from __future__ import annotations

import json

import pytest

from sagemaker_ops.operators.sagemaker_resources import (
    EnsureEndpointConfigOperator,
    EnsureModelOperator,
    ResourceSpecConflict,
)
from tests.operators.conftest import AwsTarget

ROLE = "arn:aws:iam::123456789012:role/sagemaker-ops-execution"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
MODEL_DATA = "s3://sagemaker-ops-artifacts/models/iris/abc123/model.tar.gz"
VARIANTS = [
    {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2, "InitialVariantWeight": 1.0}
]


def ensure_model(target: AwsTarget, **overrides) -> dict:
    kwargs = {
        "task_id": "ensure_model",
        "model_data_url": MODEL_DATA,
        "execution_role_arn": ROLE,
        "image_uri": IMAGE,
        "environment": {"SAGEMAKER_PROGRAM": "inference.py"},
        "tags": {"team": "ml"},
        "aws_conn_id": target.conn_id,
        **overrides,
    }
    if "model_name" not in kwargs:
        kwargs.setdefault("name_prefix", "iris")
    return EnsureModelOperator(**kwargs).execute({})


def ensure_config(target: AwsTarget, **overrides) -> dict:
    kwargs = {
        "task_id": "ensure_endpoint_config",
        "model_name": "iris-model",
        "production_variants": VARIANTS,
        "aws_conn_id": target.conn_id,
        **overrides,
    }
    if "endpoint_config_name" not in kwargs:
        kwargs.setdefault("name_prefix", "iris-config")
    return EnsureEndpointConfigOperator(**kwargs).execute({})


class TestEnsureModel:
    def test_creates_then_reuses(self, moto: AwsTarget):
        first = ensure_model(moto)
        second = ensure_model(moto)

        assert first["created"] is True and second["created"] is False
        assert first["model_name"] == second["model_name"]
        assert first["model_name"].startswith("iris-")
        assert len(moto.client("sagemaker").list_models()["Models"]) == 1
        assert json.loads(json.dumps(second)) == second

    def test_a_new_artifact_derives_a_new_name(self, moto: AwsTarget):
        first = ensure_model(moto)
        second = ensure_model(moto, model_data_url=MODEL_DATA.replace("abc123", "def456"))
        assert first["model_name"] != second["model_name"]
        assert second["created"] is True

    def test_same_name_different_spec_is_a_clear_error(self, moto: AwsTarget):
        ensure_model(moto, model_name="iris-fixed")
        with pytest.raises(ResourceSpecConflict) as raised:
            ensure_model(moto, model_name="iris-fixed", image_uri=IMAGE.replace("1.2-1", "1.0-1"))
        message = str(raised.value)
        assert "SageMaker model iris-fixed already exists with a different spec" in message
        assert "PrimaryContainer.Image: requested" in message
        assert "choose a new name" in message

    def test_framework_is_resolved_to_an_image_at_run_time(self, moto: AwsTarget):
        result = ensure_model(moto, image_uri=None, framework="sklearn", framework_version="1.2-1")
        assert result["image_uri"] == IMAGE

    def test_an_unknown_framework_version_names_the_fields(self, moto: AwsTarget):
        with pytest.raises(ValueError, match="framework='sklearn', framework_version='0.0-0'.*pass image_uri"):
            ensure_model(moto, image_uri=None, framework="sklearn", framework_version="0.0-0")

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"model_data_url": "/tmp/model.tar.gz"}, "model_data_url must be an s3:// URI"),
            ({"execution_role_arn": "my-role"}, "execution_role_arn must be an IAM role ARN"),
            ({"framework": "sklearn"}, "either image_uri or framework"),
            ({"image_uri": None}, "either image_uri or framework"),
            ({"image_uri": None, "framework": "sklearn"}, "needs framework_version"),
            ({"environment": {"WORKERS": 2}}, "environment must map strings to strings"),
            ({"model_name": "iris", "name_prefix": "iris"}, "exactly one of model_name or name_prefix"),
            ({"model_name": "bad_name!"}, "model_name must be 1-63 letters"),
        ],
    )
    def test_templated_arguments_are_validated_in_execute(self, moto: AwsTarget, overrides: dict, message: str):
        with pytest.raises((ValueError, TypeError), match=message):
            ensure_model(moto, **overrides)


class TestEnsureEndpointConfig:
    @pytest.fixture(autouse=True)
    def models(self, moto: AwsTarget) -> None:
        # SageMaker refuses a config whose variants name a model that does not exist.
        for name in ("iris-model", "iris-model-2"):
            moto.client("sagemaker").create_model(
                ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": MODEL_DATA}
            )

    def test_creates_then_reuses(self, moto: AwsTarget):
        first = ensure_config(moto)
        second = ensure_config(moto)

        assert first["created"] is True and second["created"] is False
        assert first["endpoint_config_name"] == second["endpoint_config_name"]
        assert second["model_names"] == ["iris-model"]
        described = moto.client("sagemaker").describe_endpoint_config(EndpointConfigName=first["endpoint_config_name"])
        assert described["ProductionVariants"][0]["ModelName"] == "iris-model"

    def test_a_new_model_derives_a_new_config_name(self, moto: AwsTarget):
        first = ensure_config(moto)["endpoint_config_name"]
        assert first != ensure_config(moto, model_name="iris-model-2")["endpoint_config_name"]

    def test_same_name_different_spec_is_a_clear_error(self, moto: AwsTarget):
        ensure_config(moto, endpoint_config_name="iris-config-fixed")
        bigger = [{**VARIANTS[0], "InitialInstanceCount": 3}]
        with pytest.raises(ResourceSpecConflict, match=(
            "endpoint config iris-config-fixed already exists with a different spec: "
            "ProductionVariants\\[0\\].InitialInstanceCount: requested 3, existing 2"
        )):
            ensure_config(moto, endpoint_config_name="iris-config-fixed", production_variants=bigger)

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"production_variants": []}, "production_variants must be a non-empty list"),
            ({"production_variants": [{**VARIANTS[0], "InitialInstanceCount": "2"}]}, "InitialInstanceCount must be"),
            ({"production_variants": [{**VARIANTS[0], "InitialVariantWeight": -1}]}, "InitialVariantWeight must be"),
            ({"production_variants": VARIANTS * 2}, "VariantName values must be unique"),
            ({"model_name": None}, "ModelName \\(or model_name\\)"),
            ({"production_variants": [{"VariantName": "A", "InitialInstanceCount": 1}]}, "needs InstanceType"),
        ],
    )
    def test_templated_arguments_are_validated_in_execute(self, moto: AwsTarget, overrides: dict, message: str):
        with pytest.raises((ValueError, TypeError), match=message):
            ensure_config(moto, **overrides)


def test_template_fields_include_connection_fields():
    for operator_class in (EnsureModelOperator, EnsureEndpointConfigOperator):
        assert {"aws_conn_id", "region_name", "verify"} <= set(operator_class.template_fields)
