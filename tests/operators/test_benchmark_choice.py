"""benchmark.choose_configuration (the release's choice task) on measured candidates, writing its report to the
emulator's S3: the variant deployed, the scaling target, the run's override, an option the release cannot deploy."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from airflow.sdk.exceptions import AirflowFailException
from sagemaker_ops.benchmark_tasks import choose_configuration
from sagemaker_ops.workload_selection import Requirements

BUCKET = "benchmark-choice-tests"
CANDIDATES = [
    {"name": "ml.c5.large x2", "kind": "instance", "instance_type": "ml.c5.large", "instance_count": 2,
     "max_rps": 200.0, "latency_ms": {"p95": 30.0}, "error_rate": 0.0, "cost_per_hour": 0.204,
     "cost_per_inference": 0.204 / (200 * 3600), "steps": []},
    {"name": "ml.m5.large x2", "kind": "instance", "instance_type": "ml.m5.large", "instance_count": 2,
     "max_rps": 150.0, "latency_ms": {"p95": 80.0}, "error_rate": 0.0, "cost_per_hour": 0.23,
     "cost_per_inference": 0.23 / (150 * 3600), "steps": []},
]


def settings(**requirements) -> dict:
    return {"pipeline": "iris", "requirements": dataclasses.asdict(Requirements(
        latency_sla_ms=50, latency_percentile="p95", **requirements)),
            "latency_sla_ms": 50, "percentile": "P95", "safety_factor": 0.5,
            "report_s3_uri": f"s3://{BUCKET}/benchmarks/iris",
            "variant": {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2,
                        "InitialVariantWeight": 1.0},
            "candidate_counts": {"ml.c5.large x2": 2, "ml.m5.large x2": 2}}


@pytest.fixture
def s3(emulator):
    client = emulator.client("s3")
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
    return client


def test_the_cheapest_within_the_sla_is_deployed_and_sets_the_scaling_target(s3):
    choice = choose_configuration.function({"candidates": CANDIDATES}, settings(), "iris-abc123")
    assert (choice["option"], choice["candidate"]) == ("real-time", "ml.c5.large x2")
    assert choice["production_variants"] == [{"VariantName": "AllTraffic", "InitialVariantWeight": 1.0,
                                              "InstanceType": "ml.c5.large", "InitialInstanceCount": 2}]
    assert choice["autoscaling_target"] == 100 / 1 * 0.5 * 60  # 200 req/s over 2 instances, x 0.5 x 60
    assert choice["report_s3_uri"] == f"s3://{BUCKET}/benchmarks/iris/iris-abc123/report.html"
    page = s3.get_object(Bucket=BUCKET, Key="benchmarks/iris/iris-abc123/report.html")["Body"].read().decode()
    assert "Choice: real-time on ml.c5.large x2" in page and "misses the SLA" in page


def test_a_run_can_keep_the_scaling_sections_own_target(s3):
    run = SimpleNamespace(conf={"scaling_target": "pipeline"})
    choice = choose_configuration.function({"candidates": CANDIDATES}, settings(), "iris-abc123", dag_run=run)
    assert choice["autoscaling_target"] is None
    assert "scaling_target=pipeline" in choice["reasons"][-1]
    with pytest.raises(ValueError, match="scaling_target must be benchmark or pipeline, got 'bogus'"):
        choose_configuration.function({"candidates": CANDIDATES}, settings(), "iris-abc123",
                                      dag_run=SimpleNamespace(conf={"scaling_target": "bogus"}))


def test_an_option_the_release_does_not_deploy_fails_with_the_reasons(s3):
    with pytest.raises(AirflowFailException, match="recommends async, which this release does not deploy.*6 MB"):
        choose_configuration.function({"candidates": CANDIDATES}, settings(payload_size_bytes=8 * 1024 * 1024),
                                      "iris-abc123")
