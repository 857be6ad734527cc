"""SageMaker control plane through real boto3 clients: lifecycle, waiters and AWS's exact errors."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.emulator.conftest import ROLE_ARN

ARN_PREFIX = "arn:aws:sagemaker:us-east-1:123456789012"


def error_of(call, *args, **kwargs) -> dict:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return caught.value.response["Error"]


def test_model_config_endpoint_lifecycle(deployer):
    sm = deployer.sm
    model = deployer.model()
    described = sm.describe_model(ModelName=model)
    assert described["ModelArn"] == f"{ARN_PREFIX}:model/{model.lower()}"
    assert described["PrimaryContainer"]["Image"] == "local/sklearn:1.2-1"
    assert model in [m["ModelName"] for m in sm.list_models(NameContains=model)["Models"]]

    config = deployer.config(model, count=2)
    assert sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["InitialInstanceCount"] == 2

    endpoint = deployer.endpoint(config, wait=False)
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Creating"
    described = deployer.wait(endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == config
    variant = described["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 2)
    assert (variant["CurrentWeight"], variant["DesiredWeight"]) == (1.0, 1.0)
    assert variant["DeployedImages"][0]["SpecifiedImage"] == "local/sklearn:1.2-1"
    listed = sm.list_endpoints(NameContains=endpoint, StatusEquals="InService")["Endpoints"]
    assert [e["EndpointName"] for e in listed] == [endpoint]

    sm.delete_endpoint(EndpointName=endpoint)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    sm.delete_endpoint_config(EndpointConfigName=config)
    sm.delete_model(ModelName=model)
    assert error_of(sm.describe_model, ModelName=model)["Message"] == (
        f'Could not find model "{ARN_PREFIX}:model/{model.lower()}".')


def test_missing_resources_are_validation_exceptions(deployer):
    sm = deployer.sm
    assert error_of(sm.describe_endpoint, EndpointName="No-Such-Endpoint") == {
        "Code": "ValidationException",
        "Message": f'Could not find endpoint "{ARN_PREFIX}:endpoint/no-such-endpoint".'}
    assert error_of(sm.describe_endpoint_config, EndpointConfigName="nope") == {
        "Code": "ValidationException",
        "Message": f'Could not find endpoint configuration "{ARN_PREFIX}:endpoint-config/nope".'}
    error = error_of(sm.create_endpoint_config, EndpointConfigName=deployer.name("config"), ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "ghost-model", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    assert error == {"Code": "ValidationException", "Message": f'Could not find model "{ARN_PREFIX}:model/ghost-model".'}


def test_duplicates_are_refused_with_aws_wording(deployer):
    sm = deployer.sm
    model = deployer.model()
    config = deployer.config(model)
    endpoint = deployer.endpoint(config)
    assert error_of(sm.create_model, ModelName=model, ExecutionRoleArn=ROLE_ARN,
                    PrimaryContainer={"Image": "x"})["Message"] == (
        f'Cannot create already existing model "{ARN_PREFIX}:model/{model.lower()}".')
    assert error_of(sm.create_endpoint_config, EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "v", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]
    )["Message"] == f'Cannot create already existing endpoint configuration "{ARN_PREFIX}:endpoint-config/{config.lower()}".'
    error = error_of(sm.create_endpoint, EndpointName=endpoint, EndpointConfigName=config)
    assert error == {"Code": "ValidationException",
                     "Message": f'Cannot create already existing endpoint "{ARN_PREFIX}:endpoint/{endpoint.lower()}".'}


def test_requests_are_validated_against_the_botocore_shape(deployer):
    sm = deployer.sm
    error = error_of(sm.create_endpoint, EndpointName="bad name!", EndpointConfigName="whatever")
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "1 validation error detected: Value 'bad name!' at 'endpointName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
    model = deployer.model()
    error = error_of(sm.create_endpoint_config, EndpointConfigName=deployer.name("config"), ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.gigantic", "InitialInstanceCount": 1}])
    assert error["Message"].startswith(
        "1 validation error detected: Value 'ml.m5.gigantic' at 'productionVariants.1.member.instanceType' "
        "failed to satisfy constraint: Member must satisfy enum value set: [")


def test_missing_required_member_over_the_raw_wire(emulator):
    # botocore validates required members client-side, so speak the wire protocol directly.
    request = urllib.request.Request(
        emulator.url, data=json.dumps({"EndpointName": "x"}).encode(), method="POST",
        headers={"X-Amz-Target": "SageMaker.CreateEndpoint", "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 400
    assert json.loads(caught.value.read()) == {
        "__type": "ValidationException",
        "message": "1 validation error detected: Value null at 'endpointConfigName' failed to satisfy "
                   "constraint: Member must not be null"}


def test_update_while_creating_is_refused(deployer):
    model = deployer.model()
    config = deployer.config(model)
    endpoint = deployer.endpoint(config, wait=False)
    error = error_of(deployer.sm.update_endpoint, EndpointName=endpoint, EndpointConfigName=config)
    assert error == {"Code": "ValidationException",
                     "Message": f'Cannot update in-progress endpoint "{ARN_PREFIX}:endpoint/{endpoint.lower()}".'}
    deployer.wait(endpoint)


@pytest.mark.parametrize("case", ["missing artifact", "not a tar.gz", "unsafe archive", "model_fn raises"])
def test_broken_models_fail_the_endpoint_with_a_reason(deployer, case):
    if case == "missing artifact":
        url = "s3://emulator-tests/nowhere/model.tar.gz"
        expected = 'Failed to download model data for container "container_1" from URL: "s3://emulator-tests/nowhere/model.tar.gz"'
    elif case == "not a tar.gz":
        url = deployer.upload(raw=b"this is not an archive")
        expected = "tar.gz"
    elif case == "unsafe archive":
        url = deployer.upload({"code/inference.py": "def model_fn(d):\n    return 1\n", "../evil.py": "x"})
        expected = "../evil.py"
    else:
        url = deployer.upload({"code/inference.py": "def model_fn(d):\n    raise RuntimeError('weights corrupt')\n"})
        expected = "weights corrupt"
    model = deployer.model(model_data_url=url)
    endpoint = deployer.endpoint(deployer.config(model), wait=False)
    with pytest.raises(WaiterError):
        deployer.wait(endpoint)
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "Failed"
    assert expected in described["FailureReason"]
    # Only DeleteEndpoint is possible on a Failed endpoint.
    deployer.sm.delete_endpoint(EndpointName=endpoint)
    deployer.sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig={"Delay": 0.2})
