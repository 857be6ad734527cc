"""The ``benchmark:`` section of a pipeline file: what iris ships, defaults, and each mistake named by its field."""

from __future__ import annotations

import copy

from sagemaker_ops.pipeline.benchmark_section import BenchmarkCandidate
from tests.unit.pipeline_documents import document_errors, load_document, shipped_document


def iris_with(**benchmark) -> dict:
    document = shipped_document("iris")
    document["benchmark"] = {**document["benchmark"], **benchmark}
    return document


def test_iris_benchmarks_three_candidates_and_states_its_requirements(tmp_path):
    config = load_document(tmp_path, shipped_document("iris")).benchmark
    assert config.engine == "load_test"
    assert [(c.instance_type, c.instance_count) for c in config.candidates] == [
        ("ml.c5.large", 2), ("ml.c5.xlarge", 2), ("ml.m5.large", 2)]
    assert (config.latency_sla_ms, config.percentile, config.safety_factor) == (500, "P95", 0.5)
    assert config.requirements.latency_sla_ms == 500 and config.requirements.latency_percentile == "p95"
    # The payload and its content type come from the smoke test; the payload size from the payload.
    assert config.content_type == "text/csv" and config.payload.count("\n") >= 2
    assert config.requirements.payload_size_bytes == len(config.payload.encode())
    assert config.report_s3_uri == "s3://sagemaker-ops-artifacts/benchmarks/iris"
    assert config.variant_name == "AllTraffic"
    assert config.stopping_conditions() == {"FlatInvocations": "Stop", "ModelLatencyThresholds": [
        {"Percentile": "P95", "ValueInMilliseconds": 500}]}


def test_defaults_and_a_serverless_candidate(tmp_path):
    document = shipped_document("iris")
    document["benchmark"] = {"candidates": [{"instance_type": "ml.c5.large"},
                                            {"serverless": {"memory_size_mb": 2048, "max_concurrency": 5}}]}
    config = load_document(tmp_path, document).benchmark
    assert config.candidates[1] == BenchmarkCandidate(memory_size_mb=2048, max_concurrency=5)
    assert config.candidates[1].endpoint_configuration() == {
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
    assert config.traffic_shape == {"kind": "steps", "start": 2, "step": 6, "count": 3, "step_seconds": 2}
    assert config.traffic_pattern == {"TrafficType": "STAIRS", "Stairs": {
        "DurationInSeconds": 120, "NumberOfSteps": 2, "UsersPerStep": 2}}
    assert (config.safety_factor, config.latency_sla_ms, config.requirements.traffic_pattern) == (0.5, None, "steady")


def test_each_mistake_is_named_by_its_field(tmp_path):
    errors = document_errors(tmp_path, iris_with(
        engine="wrk",
        candidates=[{"instance_type": "ml.c6i.large"}, {"serverless": {"memory_size_mb": 1500, "max_concurrency": 0}},
                    {"instance_type": "ml.c5.large", "serverless": {}}],
        traffic_shape={"kind": "steps", "start": 1},
        traffic={"stairs": {"duration_seconds": 60, "users_per_step": 5}},
        sla={"latency_ms": 0, "percentile": "P50"},
        safety_factor=1.5,
        requirements={"traffic_pattern": "bursty", "mode": "offline", "colour": "red"},
    ))
    text = "\n".join(errors)
    for expected in [
        "benchmark.engine must be one of load_test, inference_recommender, got 'wrk'",
        "benchmark.candidates[0].instance_type is unknown: instance type 'ml.c6i.large' is not in the instance catalog",
        "benchmark.candidates[1].serverless.memory_size_mb must be one of 1024, 2048, 3072, 4096, 5120, 6144, got 1500",
        "benchmark.candidates[1].serverless.max_concurrency must be an integer from 1 to 200, got 0",
        "benchmark.candidates[2] must be a mapping with instance_type (and instance_count) or serverless",
        "benchmark.traffic_shape is invalid: traffic_shape of kind steps takes count, start, step, step_seconds",
        "benchmark.traffic.stairs.duration_seconds must be an integer from 120 to 3600, got 60",
        "benchmark.traffic.stairs.users_per_step must be an integer from 1 to 3, got 5",
        "benchmark.sla.latency_ms must be a number >= 1, got 0",
        "benchmark.sla.percentile must be one of P95, P99, got 'P50'",
        "benchmark.safety_factor must be at most 1 (a share of the measured capacity), got 1.5",
        "benchmark.requirements.traffic_pattern must be one of steady, variable, intermittent, got 'bursty'",
        "benchmark.requirements.mode must be one of online, batch, got 'offline'",
        "benchmark.requirements.colour is not a known field",
    ]:
        assert expected in text, f"{expected!r} not in:\n{text}"


def test_the_choice_needs_one_variant_and_a_synchronous_endpoint(tmp_path):
    document = iris_with()
    second = copy.deepcopy(document["endpoint"]["variants"][0])
    document["endpoint"]["variants"].append({**second, "name": "Other"})
    text = "\n".join(document_errors(tmp_path, document))
    assert "benchmark needs an endpoint with exactly one variant" in text


def test_at_most_ten_candidates_and_no_duplicates(tmp_path):
    many = [{"instance_type": "ml.c5.large", "instance_count": n} for n in range(1, 12)]
    assert any("may list at most 10 configurations" in e for e in document_errors(tmp_path, iris_with(
        candidates=many)))
    twice = [{"instance_type": "ml.c5.large"}, {"instance_type": "ml.c5.large"}]
    assert any("benchmark.candidates must have unique configurations" in e for e in document_errors(
        tmp_path, iris_with(candidates=twice)))
