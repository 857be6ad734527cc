"""Accepted means honoured, or said: a request member that would change behaviour the emulator has not built
is refused with a ValidationException naming it, never silently ignored."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import ROLE_ARN
from tests.emulator.test_model_monitor_api import ANALYZER, job_definition

NOT_YET = "The emulator does not support {} yet: "


def refused(call, **params) -> dict:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]


def assert_refused(error: dict, location: str) -> None:
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(NOT_YET.format(location)), error["Message"]


def variant(model: str, **extra) -> dict:
    return {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1, **extra}


@pytest.mark.parametrize("extra, location", [
    ({"RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}, "ProductionVariants.1.RoutingConfig"),
    ({"ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 3}},
     "ProductionVariants.1.ManagedInstanceScaling"),
    ({"CoreDumpConfig": {"DestinationS3Uri": "s3://emulator-tests/core"}}, "ProductionVariants.1.CoreDumpConfig"),
    ({"InstancePools": [{"InstanceType": "ml.m5.large", "Priority": 1}]}, "ProductionVariants.1.InstancePools"),
])
def test_variant_settings_that_are_not_built_are_refused(deployer, extra, location):
    model = deployer.model()
    assert_refused(refused(deployer.sm.create_endpoint_config, EndpointConfigName=deployer.name("config"),
                           ProductionVariants=[variant(model, **extra)]), location)


def test_shadow_variant_pools_explainer_and_enhanced_metrics_are_refused(deployer):
    model = deployer.model()
    pools = [{"InstanceType": "ml.m5.large", "Priority": 1}]
    cases = {  # shadow variants are honoured (test_shadow_variants.py), with the production variants' refusals
        "ShadowProductionVariants.1.InstancePools": {"ShadowProductionVariants": [
            variant(model, VariantName="Shadow", InstancePools=pools)]},
        "ExplainerConfig": {"ExplainerConfig": {"ClarifyExplainerConfig": {
            "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": "1,2"}}}}},
        "MetricsConfig": {"MetricsConfig": {"EnableEnhancedMetrics": True}},
    }
    for location, extra in cases.items():
        assert_refused(refused(deployer.sm.create_endpoint_config, EndpointConfigName=deployer.name("config"),
                               ProductionVariants=[variant(model)], **extra), location)


def test_default_routing_and_disabled_managed_scaling_are_accepted(deployer):
    model = deployer.model()
    name = deployer.name("config")
    deployer.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant(
        model, RoutingConfig={"RoutingStrategy": "RANDOM"}, ManagedInstanceScaling={"Status": "DISABLED"})],
        MetricsConfig={"EnableEnhancedMetrics": False, "MetricPublishFrequencyInSeconds": 60})
    described = deployer.sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert described["RoutingConfig"] == {"RoutingStrategy": "RANDOM"}


def test_model_data_from_elsewhere_than_model_data_url_is_refused(deployer):
    error = refused(deployer.sm.create_model, ModelName=deployer.name("model"), ExecutionRoleArn=ROLE_ARN,
                    PrimaryContainer={"Image": "local/sklearn:1.2-1", "ModelDataSource": {"S3DataSource": {
                        "S3Uri": "s3://emulator-tests/model/", "S3DataType": "S3Prefix",
                        "CompressionType": "None"}}})
    assert_refused(error, "PrimaryContainer.ModelDataSource")
    assert "give the model archive as ModelDataUrl" in error["Message"]
    error = refused(deployer.sm.create_model, ModelName=deployer.name("model"), ExecutionRoleArn=ROLE_ARN,
                    Containers=[{"Image": "a", "ModelDataUrl": "s3://emulator-tests/a.tar.gz"},
                                {"ModelPackageName": "arn:aws:sagemaker:us-east-1:123456789012:model-package/p/1"}])
    assert_refused(error, "Containers.2.ModelPackageName")


def test_a_processing_job_entrypoint_is_refused(deployer):
    error = refused(deployer.sm.create_processing_job, ProcessingJobName=deployer.name("job"), RoleArn=ROLE_ARN,
                    AppSpecification={"ImageUri": ANALYZER, "ContainerEntrypoint": ["python3", "/opt/ml/code/x.py"]},
                    ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                           "VolumeSizeInGB": 20}})
    assert_refused(error, "AppSpecification.ContainerEntrypoint")
    assert "custom entrypoints" in error["Message"]


def test_monitoring_features_the_analyzer_does_not_run_are_refused(deployer):
    error = refused(job_definition, deployer=deployer, endpoint="any-endpoint", DataQualityAppSpecification={
        "ImageUri": ANALYZER, "RecordPreprocessorSourceUri": "s3://emulator-tests/pre.py"})
    assert_refused(error, "DataQualityAppSpecification.RecordPreprocessorSourceUri")
    error = refused(job_definition, deployer=deployer, endpoint="any-endpoint", DataQualityJobInput={
        "EndpointInput": {"EndpointName": "any-endpoint", "LocalPath": "/opt/ml/processing/input/endpoint",
                          "FeaturesAttribute": "features"}})
    assert_refused(error, "DataQualityJobInput.EndpointInput.FeaturesAttribute")


def test_runtime_headers_for_inference_components_and_sessions_are_refused(deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {"values": [1]}, InferenceComponentName="component")
    assert caught.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": "Inference Component Name header is not allowed for endpoints to which you dont have inference "
                   "components. Please remove the Inference Component Name header and try again."}
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {"values": [1]}, SessionId="NEW_SESSION")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["Error"]["Message"].startswith("The emulator does not support SessionId yet")
    assert deployer.invoke(endpoint, {"values": [1]})["result"] == [2]
