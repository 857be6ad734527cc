"""Tags are kept and returned: Tags on every Create*, AddTags, ListTags, DeleteTags, by ARN."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import ROLE_ARN

ARN_PREFIX = "arn:aws:sagemaker:us-east-1:123456789012"


def tags_of(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def test_tags_given_at_creation_round_trip_through_add_list_and_delete(deployer):
    sm = deployer.sm
    model = deployer.name("model")
    arn = sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, Tags=[{"Key": "team", "Value": "ml"}],
                          PrimaryContainer={"Image": "local/sklearn:1.2-1",
                                            "ModelDataUrl": "s3://emulator-tests/x/model.tar.gz"})["ModelArn"]
    assert tags_of(sm, arn) == {"team": "ml"}
    added = sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "dev"}, {"Key": "team", "Value": "ops"}])
    assert {t["Key"]: t["Value"] for t in added["Tags"]} == {"team": "ops", "stage": "dev"}
    assert tags_of(sm, arn) == {"team": "ops", "stage": "dev"}
    sm.delete_tags(ResourceArn=arn, TagKeys=["team", "not-there"])
    assert tags_of(sm, arn) == {"stage": "dev"}
    assert "Tags" not in sm.describe_model(ModelName=model)

    sm.delete_model(ModelName=model)  # tags go with their resource
    error = _error(sm.list_tags, ResourceArn=arn)
    assert error == {"Code": "ValidationException", "Message": f'Could not find model "{arn}".'}


def test_every_create_keeps_its_tags(deployer):
    sm = deployer.sm
    tags = [{"Key": "pipeline", "Value": "iris"}]
    model = deployer.model()
    config = deployer.name("config")
    config_arn = sm.create_endpoint_config(EndpointConfigName=config, Tags=tags, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])["EndpointConfigArn"]
    endpoint = deployer.name("endpoint")
    endpoint_arn = sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config, Tags=tags)["EndpointArn"]
    deployer.endpoints.append(endpoint)
    job_arn = sm.create_processing_job(
        ProcessingJobName=deployer.name("job"), RoleArn=ROLE_ARN, Tags=tags,
        AppSpecification={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-etl:latest"},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 20}})["ProcessingJobArn"]
    for arn in (config_arn, endpoint_arn, job_arn):
        assert tags_of(sm, arn) == {"pipeline": "iris"}, arn
    deployer.wait(endpoint)


def test_list_tags_pages(deployer):
    sm = deployer.sm
    model = deployer.model()
    arn = sm.describe_model(ModelName=model)["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i:02d}", "Value": str(i)} for i in range(50)])
    first = sm.list_tags(ResourceArn=arn, MaxResults=50)
    assert len(first["Tags"]) == 50 and "NextToken" not in first
    error = _error(sm.add_tags, ResourceArn=arn, Tags=[{"Key": "one-too-many", "Value": "x"}])
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("A resource can have at most 50 tags")


@pytest.mark.parametrize("arn, message", [
    (f"{ARN_PREFIX}:endpoint/no-such-endpoint", f'Could not find endpoint "{ARN_PREFIX}:endpoint/no-such-endpoint".'),
    (f"{ARN_PREFIX}:endpoint-config/nope", f'Could not find endpoint configuration "{ARN_PREFIX}:endpoint-config/nope".'),
    (f"{ARN_PREFIX}:training-job/t", f'Could not find resource "{ARN_PREFIX}:training-job/t": '
                                     "the emulator has no training-job resources."),
])
def test_unknown_arns_are_validation_exceptions(deployer, arn, message):
    assert _error(deployer.sm.add_tags, ResourceArn=arn, Tags=[{"Key": "a", "Value": "b"}]) == {
        "Code": "ValidationException", "Message": message}


def _error(call, **params) -> dict:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]
