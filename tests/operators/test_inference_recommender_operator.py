"""InferenceRecommenderOperator against the emulator's Inference Recommender: a real job over three
candidates, the choice within the latency SLA at the lowest CostPerInference, reuse by name, deferral.

The emulator runs at time scale 20: a 120 s stair pattern lasts 6 s per candidate.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from airflow.sdk.exceptions import TaskDeferred
from sagemaker_ops.operators.inference_recommender import (
    InferenceRecommendationsJobFailed,
    InferenceRecommenderOperator,
)
from sagemaker_ops.triggers.inference_recommender import InferenceRecommendationsJobTrigger
from sagemaker_ops.workload_selection import WorkloadSelectionError
from tests.emulator.conftest import BUCKET, ROLE_ARN, Deployer, model_archive

CANDIDATES = [{"InstanceType": "ml.c5.large"}, {"InstanceType": "ml.m5.large"},
              {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}]
STAIRS = {"TrafficType": "STAIRS", "Stairs": {"DurationInSeconds": 60, "NumberOfSteps": 2, "UsersPerStep": 2}}


@pytest.fixture(scope="module")
def ir(emulator):
    helper = Deployer(emulator)
    yield helper
    helper.cleanup()


@pytest.fixture(scope="module")
def model_and_payload(ir) -> tuple[str, str]:
    key = f"payloads/{uuid.uuid4().hex}/payload.tar.gz"
    body = json.dumps({"values": [1, 2], "sleep": 0.01})
    ir.s3.put_object(Bucket=BUCKET, Key=key, Body=model_archive({"a.json": body}))
    return ir.model(), f"s3://{BUCKET}/{key}"


def operator(model_and_payload, job_name: str, **kwargs) -> InferenceRecommenderOperator:
    model, payload = model_and_payload
    kwargs.setdefault("endpoint_configurations", CANDIDATES)
    return InferenceRecommenderOperator(
        task_id="recommend", job_name=job_name, model_name=model, role_arn=ROLE_ARN, sample_payload_url=payload,
        content_types=["application/json"], traffic_pattern=STAIRS, stopping_conditions={"FlatInvocations": "Stop"},
        waiter_delay=1, waiter_max_attempts=300, **kwargs)


def cheapest_within(job: dict, sla_ms: float) -> dict:
    """What the choice must be, computed straight from the job's recommendations."""
    within = [r for r in job["InferenceRecommendations"]
              if r["Metrics"]["ModelLatency"] <= sla_ms and "CostPerInference" in r["Metrics"]]
    return min(within, key=lambda r: r["Metrics"]["CostPerInference"])


@pytest.fixture(scope="module")
def completed(ir, model_and_payload) -> tuple[str, dict]:
    name = ir.name("ir-op")
    result = operator(model_and_payload, name, latency_sla_ms=10_000).execute({})
    return name, result


def test_runs_the_job_and_picks_the_cheapest_configuration_within_the_sla(ir, completed):
    name, result = completed
    job = ir.sm.describe_inference_recommendations_job(JobName=name)
    assert job["Status"] == "COMPLETED" and len(job["InferenceRecommendations"]) == 3
    expected = cheapest_within(job, 10_000)
    assert result["recommendation_id"] == expected["RecommendationId"]
    assert result["instance_type"] == expected["EndpointConfiguration"]["InstanceType"]
    assert result["metrics"] == expected["Metrics"]
    assert result["reasons"][-1].startswith(f"Chosen: {result['instance_type']} x1, the lowest cost per inference")
    assert {c["name"] for c in result["candidates"]} == {"ml.c5.large x1", "ml.m5.large x1", "serverless 2048MB x2"}
    assert json.loads(json.dumps(result)) == result
    assert not [e for e in ir.sm.list_endpoints()["Endpoints"] if e["EndpointName"].startswith(name)]


def test_a_rerun_with_the_same_name_reuses_the_job(ir, completed, model_and_payload):
    name, first = completed
    before = ir.sm.list_inference_recommendations_jobs(MaxResults=100)["InferenceRecommendationsJobs"]
    again = operator(model_and_payload, name, latency_sla_ms=10_000).execute({})
    after = ir.sm.list_inference_recommendations_jobs(MaxResults=100)["InferenceRecommendationsJobs"]
    assert len(after) == len(before)
    assert again["recommendation_id"] == first["recommendation_id"]


def test_a_tighter_sla_than_any_measured_latency_fails_naming_each_miss(completed, model_and_payload):
    name, _ = completed
    with pytest.raises(WorkloadSelectionError, match=r"No recommended configuration meets the latency SLA") as caught:
        operator(model_and_payload, name, latency_sla_ms=0.001).execute({})
    assert sum("misses the SLA" in reason for reason in caught.value.reasons) == 3


def test_deferrable_defers_then_chooses_from_the_completed_job(ir, model_and_payload):
    name = ir.name("ir-defer")
    task = operator(model_and_payload, name, latency_sla_ms=10_000, deferrable=True,
                    endpoint_configurations=[{"InstanceType": "ml.c5.large"}])
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, InferenceRecommendationsJobTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "sagemaker_ops.triggers.inference_recommender.InferenceRecommendationsJobTrigger"
    assert kwargs["job_name"] == name

    async def first_event() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(first_event())
    assert event == {"status": "success", "job_name": name}
    result = task.execute_complete({}, event)
    assert (result["job_name"], result["instance_type"]) == (name, "ml.c5.large")


def test_a_stopped_job_fails_with_its_reason(ir, model_and_payload):
    name = ir.name("ir-stop")
    request = operator(model_and_payload, name, endpoint_configurations=[{"InstanceType": "ml.c5.large"}])._request()
    ir.sm.create_inference_recommendations_job(**request)
    ir.sm.stop_inference_recommendations_job(JobName=name)
    with pytest.raises(InferenceRecommendationsJobFailed, match=rf"{name} ended STOPPED.*new job_name"):
        operator(model_and_payload, name, endpoint_configurations=[{"InstanceType": "ml.c5.large"}]).execute({})


def test_invalid_settings_are_refused_before_any_call(model_and_payload):
    with pytest.raises(ValueError, match="endpoint_configurations is required for an Advanced job"):
        operator(model_and_payload, "ok-name", endpoint_configurations=[]).execute({})
    with pytest.raises(ValueError, match="job_name must be 1-64 characters"):
        operator(model_and_payload, "x" * 65).execute({})
    with pytest.raises(ValueError, match="latency_sla_ms must be a number > 0"):
        operator(model_and_payload, "ok-name", latency_sla_ms=-1).execute({})
