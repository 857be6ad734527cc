"""CreateEndpointConfig accepts only instance types the emulator's catalog knows."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sagemaker_rules.instance_catalog import CATALOG_FILE


def create_config(deployer, instance_type: str) -> dict:
    model = deployer.model()
    with pytest.raises(ClientError) as caught:
        deployer.sm.create_endpoint_config(EndpointConfigName=deployer.name("config"), ProductionVariants=[{
            "VariantName": "Primary", "ModelName": model, "InstanceType": instance_type,
            "InitialInstanceCount": 1}])
    return caught.value.response["Error"]


def test_a_real_type_missing_from_the_catalog_is_rejected_with_the_fix(deployer):
    error = create_config(deployer, "ml.m5d.large")
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "The instance type ml.m5d.large of production variant Primary is a valid SageMaker instance type but is "
        f"not in the emulator's instance catalog. Add it to {CATALOG_FILE} with its vCPUs, memory, GPUs and "
        "hourly price.")


def test_a_string_that_is_no_instance_type_fails_aws_enum_validation(deployer):
    error = create_config(deployer, "ml.m5.gigantic")
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(
        "1 validation error detected: Value 'ml.m5.gigantic' at 'productionVariants.1.member.instanceType' "
        "failed to satisfy constraint: Member must satisfy enum value set: [")


def test_a_cataloged_type_is_accepted(deployer):
    model = deployer.model()
    name = deployer.name("config")
    deployer.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "Primary", "ModelName": model, "InstanceType": "ml.g4dn.xlarge", "InitialInstanceCount": 1}])
    described = deployer.sm.describe_endpoint_config(EndpointConfigName=name)
    assert described["ProductionVariants"][0]["InstanceType"] == "ml.g4dn.xlarge"
