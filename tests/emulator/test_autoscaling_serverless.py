"""A serverless variant's provisioned concurrency scales on its own dimension
(sagemaker:variant:DesiredProvisionedConcurrency) with target tracking on
SageMakerVariantProvisionedConcurrencyUtilization, which the runtime publishes as
ServerlessProvisionedConcurrencyUtilization."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.emulator.autoscaling_support import SteadyLoad, resource
from tests.emulator.conftest import wait_until
from tests.emulator.test_serverless import serverless_config

PROVISIONED = "sagemaker:variant:DesiredProvisionedConcurrency"


def test_provisioned_concurrency_scales_with_its_utilization(emulator, deployer):
    aas = emulator.client("application-autoscaling")
    endpoint = deployer.endpoint(serverless_config(deployer, deployer.model(), concurrency=4, ProvisionedConcurrency=1))
    with pytest.raises(ClientError) as refused:
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                     ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                                     MinCapacity=1, MaxCapacity=2)
    assert "is serverless and has no instance count" in refused.value.response["Error"]["Message"]
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                 ScalableDimension=PROVISIONED, MinCapacity=1, MaxCapacity=3)
    aas.put_scaling_policy(
        PolicyName="warm", ServiceNamespace="sagemaker", ResourceId=resource(endpoint), ScalableDimension=PROVISIONED,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 0.5, "ScaleOutCooldown": 60, "DisableScaleIn": True, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"}})

    def provisioned() -> tuple[int | None, int | None]:
        variant = deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
        return (variant["DesiredServerlessConfig"].get("ProvisionedConcurrency"),
                variant.get("CurrentServerlessConfig", {}).get("ProvisionedConcurrency"))

    with SteadyLoad(deployer.runtime, endpoint, 4) as load:  # one request at a time: utilization 1.0 of 1
        wait_until(lambda: provisioned() == (2, 2), 60, "provisioned concurrency to double")
    assert load.failures == []

    def settled_activity():  # the activity is closed just after the endpoint reports the new concurrency
        [latest, *_] = aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                       ResourceId=resource(endpoint))["ScalingActivities"]
        return latest if latest["StatusCode"] != "InProgress" else None

    activity = wait_until(settled_activity, 30, "the activity to close")
    assert activity["Description"] == "Setting desired provisioned concurrency to 2."
    assert activity["ScalableDimension"] == PROVISIONED and activity["StatusCode"] == "Successful"
