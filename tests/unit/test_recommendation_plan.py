"""Inference Recommender planning and reading of results, without an emulator: the traffic pattern's
windows, the candidates, when a load test stops and which window its figures come from."""

from __future__ import annotations

import pytest

from sagemaker_emulator.controllers.load_test import Window, chosen_window, stop_reason
from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_emulator.sagemaker.recommendations import (BenchmarkStep, Candidate, LoadStep, StoppingRules, plan_job,
                                                          scaling_recommendation)

PAYLOAD = {"PayloadConfig": {"SamplePayloadUrl": "s3://b/p.tar.gz", "SupportedContentTypes": ["text/csv"]}}


def request(job_type="Advanced", **inputs) -> dict:
    return {"JobName": "j", "JobType": job_type, "RoleArn": "r",
            "InputConfig": {"ModelName": "m", "ContainerConfig": PAYLOAD, **inputs}}


def window(per_minute: float, latency_ms: float = 10.0) -> Window:
    return Window(users=1, seconds=60.0, latencies_ms=[latency_ms] * int(per_minute))


def test_phases_spawn_users_every_minute_of_each_phase():
    plan = plan_job(request(TrafficPattern={"TrafficType": "PHASES", "Phases": [
        {"InitialNumberOfUsers": 1, "SpawnRate": 2, "DurationInSeconds": 150},
        {"InitialNumberOfUsers": 3, "SpawnRate": 0, "DurationInSeconds": 120}]}), host_cores=2)
    assert plan.load == (LoadStep(1, 60), LoadStep(3, 60), LoadStep(5, 30), LoadStep(3, 60), LoadStep(3, 60))


def test_environment_ranges_multiply_the_candidates_and_the_limit_keeps_the_first():
    ranges = {"CategoricalParameterRanges": [{"Name": "OMP_NUM_THREADS", "Value": ["1", "2"]},
                                             {"Name": "BATCH", "Value": ["a", "b"]}]}
    configuration = {"InstanceType": "ml.c5.large", "EnvironmentParameterRanges": ranges}
    plan = plan_job(request(EndpointConfigurations=[configuration],
                            ResourceLimit={"MaxNumberOfTests": 3, "MaxParallelOfTests": 4}), host_cores=2)
    assert [c.environment for c in plan.candidates] == [
        (("OMP_NUM_THREADS", "1"), ("BATCH", "a")), (("OMP_NUM_THREADS", "1"), ("BATCH", "b")),
        (("OMP_NUM_THREADS", "2"), ("BATCH", "a"))]
    assert plan.parallel == 1  # two host cores: one test at a time
    assert plan.content_type == "text/csv"


def test_a_default_job_without_supported_types_tests_the_default_set():
    plan = plan_job(request("Default"), host_cores=2)
    assert [c.instance_type for c in plan.candidates] == ["ml.c5.large", "ml.c5.xlarge", "ml.m5.large"]
    assert [s.users for s in plan.load] == [2, 4, 6, 8]


def test_more_than_ten_load_tests_are_refused():
    ranges = {"CategoricalParameterRanges": [{"Name": "A", "Value": ["1", "2", "3"]},
                                             {"Name": "B", "Value": ["1", "2", "3"]}]}
    with pytest.raises(ValidationException, match="make 18 load tests; a job runs at most 10"):
        plan_job(request(EndpointConfigurations=[{"InstanceType": name, "EnvironmentParameterRanges": ranges}
                                                 for name in ("ml.c5.large", "ml.m5.large")]), host_cores=2)


def test_flat_invocations_stop_and_read_the_window_where_they_level_out():
    rules = StoppingRules()
    windows = [window(1000), window(2000), window(2050, latency_ms=30)]
    assert stop_reason(windows[:2], rules) is None
    assert stop_reason(windows, rules) == "invocations flattened"
    assert chosen_window(windows, rules, "invocations flattened") is windows[1]
    assert stop_reason(windows, StoppingRules(stop_when_flat=False)) is None


def test_a_latency_threshold_reads_the_best_window_within_it():
    rules = StoppingRules(latency_threshold_ms=20, stop_when_flat=False)
    windows = [window(1000, 10), window(1500, 15), window(1800, 25)]
    assert stop_reason(windows, rules) == "P95 latency 25 ms exceeded the 20 ms threshold"
    assert chosen_window(windows, rules, stop_reason(windows, rules)) is windows[1]


def test_max_invocations_stop_the_test_where_they_are_reached():
    rules = StoppingRules(max_invocations=1500)
    windows = [window(1000), window(1600)]
    assert stop_reason(windows, rules) == "reached MaxInvocations (1500 per minute)"
    assert chosen_window(windows, rules, stop_reason(windows, rules)) is windows[1]


def test_percentiles_are_nearest_rank():
    measured = Window(users=1, seconds=1.0, latencies_ms=[float(v) for v in range(1, 101)])
    assert (measured.latency_ms("P95"), measured.latency_ms("P99")) == (95.0, 99.0)


def test_the_scaling_target_is_the_measured_capacity_times_the_target_utilisation():
    step = BenchmarkStep(Candidate(instance_type="ml.c5.xlarge"), endpoint_name="e", recommendation_id="r",
                         metrics={"MaxInvocations": 1200, "ModelLatency": 40})
    answer = scaling_recommendation("j", step, {"TargetCpuUtilizationPerCore": 25,
                                                "ScalingPolicyObjective": {"MinInvocationsPerMinute": 10,
                                                                           "MaxInvocationsPerMinute": 3000}})
    scaling = answer["DynamicScalingConfiguration"]
    assert scaling["ScalingPolicies"][0]["TargetTracking"]["TargetValue"] == 300
    assert scaling["ScalingPolicies"][1]["TargetTracking"]["TargetValue"] == 100  # 25 % of 4 vCPUs
    assert (scaling["MinCapacity"], scaling["MaxCapacity"]) == (1, 10)


def test_windows_without_an_answer_are_never_read():
    rules = StoppingRules(latency_threshold_ms=5, stop_when_flat=False)
    windows = [Window(users=1, seconds=60.0, errors=9), window(600, latency_ms=8)]
    assert chosen_window(windows, rules, stop_reason(windows, rules)) is windows[1]
