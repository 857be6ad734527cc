"""Typed requests: the state layer reads attributes, and Describe* gives back exactly what was sent."""

from __future__ import annotations

from sagemaker_emulator.sagemaker.typed_requests import (EndpointConfigSpec, ModelSpec, ProcessingJobRequest,
                                                         UpdateEndpointRequest)

CONFIG = {
    "EndpointConfigName": "cfg",
    "ProductionVariants": [
        {"VariantName": "A", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2,
         "InitialVariantWeight": 0.5, "VolumeSizeInGB": 30, "RoutingConfig": {"RoutingStrategy": "RANDOM"}},
        {"VariantName": "B", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}},
    ],
    "DataCaptureConfig": {"InitialSamplingPercentage": 50, "DestinationS3Uri": "s3://b/capture",
                          "CaptureOptions": [{"CaptureMode": "Input"}], "KmsKeyId": "key"},
    "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://b/out", "NotificationConfig": {
        "SuccessTopic": "arn:aws:sns:us-east-1:123456789012:ok"}}},
    "KmsKeyId": "key", "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
    "Tags": [{"Key": "team", "Value": "ml"}],
}


def test_endpoint_config_round_trips_and_reads_typed():
    spec = EndpointConfigSpec.from_aws(CONFIG)
    first, second = spec.production_variants
    assert (first.variant_name, first.instance_count, first.weight, first.instance_type) == ("A", 2, 0.5, "ml.m5.large")
    assert (second.instance_count, second.weight, second.serverless_config.memory_size_in_mb) == (1, 1.0, 2048)
    assert spec.data_capture_config.enabled and spec.data_capture_config.modes == {"Input"}
    assert spec.async_inference_config.notifications.success_topic.endswith(":ok")
    assert spec.tags == {"team": "ml"}
    assert spec.to_aws() == {k: v for k, v in CONFIG.items() if k != "Tags"}


def test_model_containers_and_defaults():
    spec = ModelSpec.from_aws({"ModelName": "m", "Containers": [
        {"Image": "a", "ContainerHostname": "first"}, {"Image": "b", "Mode": "MultiModel",
                                                      "ModelDataUrl": "s3://b/mme/"}]})
    assert [c.name(i) for i, c in enumerate(spec.all_containers)] == ["first", "container_2"]
    assert [c.is_multi_model for c in spec.all_containers] == [False, True]
    assert spec.all_containers[1].caches_models and spec.execution_mode == "Serial"


def test_update_endpoint_exclusions():
    request = UpdateEndpointRequest.from_aws({"EndpointName": "e", "EndpointConfigName": "c",
                                              "RetainAllVariantProperties": True,
                                              "ExcludeRetainedVariantProperties": [
                                                  {"VariantPropertyType": "DesiredWeight"}]})
    assert request.retain_all_variant_properties and request.excluded_properties == {"DesiredWeight"}


def test_processing_job_request_round_trips():
    request = {"ProcessingJobName": "j", "RoleArn": "arn:aws:iam::123456789012:role/r",
               "AppSpecification": {"ImageUri": "img"}, "Environment": {"a": "1"},
               "ProcessingInputs": [{"InputName": "in", "S3Input": {
                   "S3Uri": "s3://b/in", "LocalPath": "/opt/ml/processing/in", "S3DataType": "S3Prefix"}}],
               "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                   "S3Uri": "s3://b/out", "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]},
               "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                         "VolumeSizeInGB": 20}},
               "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    typed = ProcessingJobRequest.from_aws(request)
    assert (typed.max_runtime_seconds, typed.outputs[0].s3_output.local_path) == (600, "/opt/ml/processing/out")
    assert typed.processing_inputs[0].s3_input.s3_uri == "s3://b/in"
    assert typed.to_aws() == request
