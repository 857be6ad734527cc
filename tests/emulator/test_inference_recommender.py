"""Inference Recommender through boto3: job validation, real load tests on temporary endpoints, steps,
Stop and failure cleanup, scaling recommendations.

The emulator runs at time scale 20: a 40 s stair lasts 2 s. Throughput is measured in real seconds.
"""

from __future__ import annotations

import json
import math
import textwrap
import uuid

import pytest
from botocore.exceptions import ClientError

from sagemaker_rules.instance_catalog import instance_type
from tests.emulator.conftest import BUCKET, ECHO_MODEL, ROLE_ARN, Deployer, model_archive, wait_until, workers_of

SLEEP_SECONDS = 0.05  # every sample payload asks the echo model to sleep this long
STAIRS = {"TrafficType": "STAIRS", "Stairs": {"DurationInSeconds": 40, "NumberOfSteps": 3, "UsersPerStep": 1}}
BROKEN_MODEL = """
def model_fn(model_dir):
    raise RuntimeError("weights are corrupt")
"""


@pytest.fixture(scope="module")
def ir(emulator):
    helper = Deployer(emulator)
    yield helper
    helper.cleanup()


@pytest.fixture(scope="module")
def payload_url(ir) -> str:
    key = f"payloads/{uuid.uuid4().hex}/payload.tar.gz"
    body = json.dumps({"sleep": SLEEP_SECONDS, "values": [1, 2]})
    ir.s3.put_object(Bucket=BUCKET, Key=key, Body=model_archive({"a.json": body, "b.json": body}))
    return f"s3://{BUCKET}/{key}"


def job_request(name: str, model: str, payload_url: str, job_type: str = "Advanced", **input_config) -> dict:
    container = {"PayloadConfig": {"SamplePayloadUrl": payload_url, "SupportedContentTypes": ["application/json"]}}
    return {"JobName": name, "JobType": job_type, "RoleArn": ROLE_ARN,
            "InputConfig": {"ModelName": model, "ContainerConfig": container, **input_config}}


def wait_for_job(sm, name: str, statuses=("COMPLETED", "FAILED", "STOPPED"), seconds: float = 120) -> dict:
    return wait_until(lambda: (lambda d: d if d["Status"] in statuses else None)(
        sm.describe_inference_recommendations_job(JobName=name)), seconds, f"job {name} to reach {statuses}")


def error_of(call, **params) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def job_endpoints(ir, job: str) -> list[str]:
    return [e["EndpointName"] for e in ir.sm.list_endpoints(MaxResults=100)["Endpoints"]
            if e["EndpointName"].startswith(job)]


@pytest.fixture(scope="module")
def completed_job(ir, payload_url) -> dict:
    """An Advanced job over two instance types and a serverless config, run to completion."""
    name = ir.name("ir-advanced")
    request = job_request(name, ir.model(), payload_url, TrafficPattern=STAIRS, EndpointConfigurations=[
        {"InstanceType": "ml.m5.large"}, {"InstanceType": "ml.m5.xlarge"},
        {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}])
    ir.sm.create_inference_recommendations_job(**request, StoppingConditions={"FlatInvocations": "Stop"},
                                               Tags=[{"Key": "team", "Value": "ml"}])
    return wait_for_job(ir.sm, name)


def by_type(job: dict) -> dict[str, dict]:
    return {r["EndpointConfiguration"].get("InstanceType", "serverless"): r for r in job["InferenceRecommendations"]}


# -- validation ---------------------------------------------------------------------------------------

def test_requests_aws_would_refuse_are_refused_naming_the_field(ir, payload_url):
    model = ir.model()
    create = ir.sm.create_inference_recommendations_job

    def refused(**changes) -> tuple[str, str]:
        request = job_request(ir.name("ir-bad"), model, payload_url)
        for path, value in changes.items():
            node = request
            *parents, leaf = path.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return error_of(create, **request)

    code, message = refused(InputConfig__ModelName="no-such-model")
    assert code == "ValidationException" and "Could not find model" in message and "no-such-model" in message
    code, message = refused(InputConfig__ModelPackageVersionArn="arn:aws:sagemaker:us-east-1:123456789012:"
                                                                "model-package/pkg/1")
    assert code == "ValidationException" and "InputConfig.ModelPackageVersionArn" in message
    code, message = refused(InputConfig__EndpointConfigurations=[{"InstanceType": "ml.c6i.large"}])
    assert code == "ValidationException" and "ml.c6i.large" in message and "catalog" in message
    code, message = refused(InputConfig__EndpointConfigurations=[{"InstanceType": "ml.bogus.large"}])
    assert code == "ValidationException" and "ml.bogus.large" in message
    code, message = refused(InputConfig__TrafficPattern={"TrafficType": "PHASES", "Phases": [
        {"InitialNumberOfUsers": 5, "SpawnRate": 1, "DurationInSeconds": 120}]})
    assert (code, message) == ("ValidationException", "InputConfig.TrafficPattern.Phases.1.InitialNumberOfUsers is "
                                                      "5; it must be between 1 and 3.")
    code, message = refused(InputConfig__TrafficPattern={"TrafficType": "PHASES", "Phases": [
        {"InitialNumberOfUsers": 1, "SpawnRate": 1, "DurationInSeconds": 60}]})
    assert "DurationInSeconds is 60; it must be between 120 and 3600" in message
    code, message = refused(InputConfig__TrafficPattern={"TrafficType": "STAIRS", "Stairs": {
        "DurationInSeconds": 60, "NumberOfSteps": 2, "UsersPerStep": 4}})
    assert code == "ValidationException" and "usersPerStep" in message and "less than or equal to 3" in message
    code, message = refused(InputConfig__JobDurationInSeconds=100, InputConfig__TrafficPattern=STAIRS)
    assert "lasts 120 seconds" in message and "JobDurationInSeconds (100)" in message
    code, message = refused(InputConfig__EndpointConfigurations=[
        {"ServerlessConfig": {"MemorySizeInMB": 1500, "MaxConcurrency": 1}}])
    assert "MemorySizeInMB must be one of 1024" in message
    code, message = refused(InputConfig__EndpointConfigurations=[
        {"InstanceType": "ml.m5.large", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}])
    assert "either InstanceType or ServerlessConfig" in message
    code, message = refused(InputConfig__ContainerConfig={"SupportedInstanceTypes": ["ml.m5.large"]})
    assert "SamplePayloadUrl is required" in message
    code, message = refused(StoppingConditions={"ModelLatencyThresholds": [
        {"Percentile": "P99", "ValueInMilliseconds": 100}]})
    assert "Advanced jobs accept P95" in message
    code, message = refused(StoppingConditions={"MaxInvocations": 50_000})
    assert "MaxInvocations is 50000; it must be between 1 and 30000" in message
    code, message = refused(InputConfig__ResourceLimit={"MaxNumberOfTests": 11})
    assert "MaxNumberOfTests is 11" in message
    assert error_of(ir.sm.describe_inference_recommendations_job, JobName="no-such-job") == (
        "ResourceNotFound", "Inference recommendations job no-such-job does not exist.")


def test_a_job_name_is_used_once(ir, payload_url, completed_job):
    code, message = error_of(ir.sm.create_inference_recommendations_job,
                             **job_request(completed_job["JobName"], ir.model(), payload_url))
    assert code == "ResourceInUse" and completed_job["JobName"] in message


# -- a completed job --------------------------------------------------------------------------------

def test_an_advanced_job_measures_every_candidate_with_aws_metrics(completed_job):
    assert completed_job["Status"] == "COMPLETED", completed_job.get("FailureReason")
    results = by_type(completed_job)
    assert set(results) == {"ml.m5.large", "ml.m5.xlarge", "serverless"}
    for kind in ("ml.m5.large", "ml.m5.xlarge"):
        metrics, catalogued = results[kind]["Metrics"], instance_type(kind)
        assert metrics["CostPerHour"] == pytest.approx(catalogued.price_per_hour_usd)
        assert metrics["CostPerInference"] == pytest.approx(metrics["CostPerHour"] / (metrics["MaxInvocations"] * 60))
        assert metrics["ModelLatency"] >= SLEEP_SECONDS * 1000  # a request takes at least the model's sleep
        # One prediction at a time per serving process (one per vCPU): at most 60 / sleep per minute each,
        # plus the requests already running when a 2 s window opened.
        assert metrics["MaxInvocations"] <= catalogued.vcpus * 60 / SLEEP_SECONDS * 1.1
        assert 0 < metrics["CpuUtilization"] <= 100 and metrics["MemoryUtilization"] > 0
        assert results[kind]["EndpointConfiguration"]["InitialInstanceCount"] == 1
    # Twice the serving processes never serve fewer sleeping requests (beyond noise).
    assert results["ml.m5.xlarge"]["Metrics"]["MaxInvocations"] >= \
        0.9 * results["ml.m5.large"]["Metrics"]["MaxInvocations"]
    serverless = results["serverless"]
    assert serverless["EndpointConfiguration"]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    assert serverless["Metrics"]["ModelSetupTime"] >= 0 and "CostPerHour" not in serverless["Metrics"]
    assert serverless["Metrics"]["ModelLatency"] >= SLEEP_SECONDS * 1000
    assert completed_job["InputConfig"]["TrafficPattern"] == STAIRS


def test_each_candidate_is_a_benchmark_step(ir, completed_job):
    steps = ir.sm.list_inference_recommendations_job_steps(JobName=completed_job["JobName"])["Steps"]
    assert [(s["StepType"], s["Status"]) for s in steps] == [("BENCHMARK", "COMPLETED")] * 3
    recommended = {r["EndpointConfiguration"]["EndpointName"]: r["Metrics"]
                   for r in completed_job["InferenceRecommendations"]}
    for step in steps:
        benchmark = step["InferenceBenchmark"]
        assert benchmark["Metrics"] == recommended[benchmark["EndpointConfiguration"]["EndpointName"]]
        assert benchmark["EndpointMetrics"]["MaxInvocations"] == benchmark["Metrics"]["MaxInvocations"]
        assert benchmark["InvocationEndTime"] > benchmark["InvocationStartTime"]
    assert ir.sm.list_inference_recommendations_job_steps(JobName=completed_job["JobName"],
                                                          Status="FAILED")["Steps"] == []


def test_a_completed_job_leaves_no_endpoint_or_worker(ir, completed_job):
    assert job_endpoints(ir, completed_job["JobName"]) == []
    for recommendation in completed_job["InferenceRecommendations"]:
        assert workers_of(recommendation["EndpointConfiguration"]["EndpointName"]) == []
    names = [m["ModelName"] for m in ir.sm.list_models(MaxResults=100)["Models"]]
    assert not [n for n in names if n.startswith(completed_job["JobName"])]


def test_jobs_are_listed_and_filtered(ir, completed_job):
    listed = ir.sm.list_inference_recommendations_jobs(NameContains=completed_job["JobName"])
    (row,) = listed["InferenceRecommendationsJobs"]
    assert (row["Status"], row["JobType"], row["ModelName"]) == (
        "COMPLETED", "Advanced", completed_job["InputConfig"]["ModelName"])
    assert ir.sm.list_inference_recommendations_jobs(NameContains=completed_job["JobName"],
                                                     StatusEquals="FAILED")["InferenceRecommendationsJobs"] == []
    assert ir.sm.list_tags(ResourceArn=row["JobArn"])["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_scaling_configuration_comes_from_the_measured_capacity(ir, completed_job):
    large = by_type(completed_job)["ml.m5.large"]
    capacity = large["Metrics"]["MaxInvocations"]
    answer = ir.sm.get_scaling_configuration_recommendation(
        InferenceRecommendationsJobName=completed_job["JobName"], RecommendationId=large["RecommendationId"])
    assert answer["Metric"] == {"InvocationsPerInstance": capacity, "ModelLatency": large["Metrics"]["ModelLatency"]}
    invocations, cpu = answer["DynamicScalingConfiguration"]["ScalingPolicies"]
    assert invocations["TargetTracking"]["TargetValue"] == pytest.approx(capacity * 0.5)  # default 50 % per core
    assert cpu["TargetTracking"]["TargetValue"] == 50 * instance_type("ml.m5.large").vcpus
    by_endpoint = ir.sm.get_scaling_configuration_recommendation(
        InferenceRecommendationsJobName=completed_job["JobName"], TargetCpuUtilizationPerCore=70,
        EndpointName=large["EndpointConfiguration"]["EndpointName"],
        ScalingPolicyObjective={"MinInvocationsPerMinute": 100, "MaxInvocationsPerMinute": capacity * 3})
    target = capacity * 0.7
    assert by_endpoint["DynamicScalingConfiguration"]["ScalingPolicies"][0]["TargetTracking"]["TargetValue"] == \
        pytest.approx(target)
    assert by_endpoint["DynamicScalingConfiguration"]["MinCapacity"] == math.ceil(100 / target)
    assert by_endpoint["DynamicScalingConfiguration"]["MaxCapacity"] == math.ceil(capacity * 3 / target)
    code, message = error_of(ir.sm.get_scaling_configuration_recommendation,
                             InferenceRecommendationsJobName=completed_job["JobName"], RecommendationId="nope")
    assert code == "ValidationException" and "RecommendationId nope" in message


# -- stop and failure -------------------------------------------------------------------------------

def test_stopping_a_job_removes_its_endpoint_and_workers(ir, payload_url):
    name = ir.name("ir-stop")
    long_stairs = {"TrafficType": "STAIRS", "Stairs": {"DurationInSeconds": 600, "NumberOfSteps": 3, "UsersPerStep": 1}}
    ir.sm.create_inference_recommendations_job(**job_request(
        name, ir.model(), payload_url, TrafficPattern=long_stairs,
        EndpointConfigurations=[{"InstanceType": "ml.m5.large"}, {"InstanceType": "ml.c5.large"}]))

    def serving_step():
        steps = ir.sm.list_inference_recommendations_job_steps(JobName=name, Status="IN_PROGRESS")["Steps"]
        endpoints = [s["InferenceBenchmark"]["EndpointConfiguration"]["EndpointName"] for s in steps]
        return endpoints[0] if endpoints and workers_of(endpoints[0]) else None

    endpoint = wait_until(serving_step, 60, "the first load test to run")
    ir.sm.stop_inference_recommendations_job(JobName=name)
    assert ir.sm.describe_inference_recommendations_job(JobName=name)["Status"] in ("STOPPING", "STOPPED")
    described = wait_for_job(ir.sm, name, seconds=60)
    assert described["Status"] == "STOPPED" and "InferenceRecommendations" not in described
    steps = ir.sm.list_inference_recommendations_job_steps(JobName=name)["Steps"]
    assert [s["Status"] for s in steps] == ["STOPPED", "STOPPED"]
    assert job_endpoints(ir, name) == []
    wait_until(lambda: not workers_of(endpoint), 30, f"the workers of {endpoint} to exit")
    code, message = error_of(ir.sm.stop_inference_recommendations_job, JobName=name)
    assert code == "ValidationException" and "STOPPED" in message


def test_a_model_that_cannot_start_fails_the_job_and_leaves_nothing(ir, payload_url):
    name = ir.name("ir-broken")
    ir.sm.create_inference_recommendations_job(**job_request(
        name, ir.model(textwrap.dedent(BROKEN_MODEL)), payload_url, TrafficPattern=STAIRS,
        EndpointConfigurations=[{"InstanceType": "ml.m5.large"}]))
    described = wait_for_job(ir.sm, name)
    assert described["Status"] == "FAILED"
    assert "All 1 load tests failed" in described["FailureReason"]
    assert "weights are corrupt" in described["FailureReason"]
    (step,) = ir.sm.list_inference_recommendations_job_steps(JobName=name)["Steps"]
    assert step["Status"] == "FAILED" and "weights are corrupt" in step["InferenceBenchmark"]["FailureReason"]
    assert job_endpoints(ir, name) == []
    assert not [m for m in ir.sm.list_models(MaxResults=100)["Models"] if m["ModelName"].startswith(name)]
    code, message = error_of(ir.sm.get_scaling_configuration_recommendation, InferenceRecommendationsJobName=name,
                             EndpointName="x")
    assert code == "ValidationException" and "FAILED" in message


def test_a_missing_sample_payload_fails_the_job_before_any_endpoint(ir):
    name = ir.name("ir-nopayload")
    ir.sm.create_inference_recommendations_job(**job_request(
        name, ir.model(), f"s3://{BUCKET}/payloads/missing.tar.gz", EndpointConfigurations=[
            {"InstanceType": "ml.m5.large"}]))
    described = wait_for_job(ir.sm, name, seconds=30)
    assert described["Status"] == "FAILED"
    missing = f"s3://{BUCKET}/payloads/missing.tar.gz"
    assert described["FailureReason"] == f"ClientError: the sample payload archive {missing} does not exist."
    (step,) = ir.sm.list_inference_recommendations_job_steps(JobName=name)["Steps"]
    assert step["Status"] == "FAILED" and "EndpointConfiguration" not in step["InferenceBenchmark"]


def test_a_default_job_benchmarks_the_supported_instance_types(ir, payload_url, emulator):
    name = ir.name("ir-default")
    request = job_request(name, ir.model(), payload_url, job_type="Default")
    request["InputConfig"]["ContainerConfig"]["SupportedInstanceTypes"] = ["ml.c5.large"]
    ir.sm.create_inference_recommendations_job(**request)
    described = wait_for_job(ir.sm, name)
    assert described["Status"] == "COMPLETED", described.get("FailureReason")
    (recommendation,) = described["InferenceRecommendations"]
    assert recommendation["EndpointConfiguration"]["InstanceType"] == "ml.c5.large"
    assert recommendation["Metrics"]["MaxInvocations"] > 0
    log_events = emulator.client("logs").get_log_events(
        logGroupName="/aws/sagemaker/InferenceRecommendationsJobs", logStreamName=name)["events"]
    assert any("invocations/min" in e["message"] for e in log_events)
    metrics = emulator.client("cloudwatch").list_metrics(Namespace="/aws/sagemaker/InferenceRecommendationsJobs",
                                                         MetricName="ClientInvocations")["Metrics"]
    assert any({"Name": "JobName", "Value": name} in m["Dimensions"] for m in metrics)
