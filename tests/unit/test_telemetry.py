"""Endpoint metrics: what one flush publishes for the invocations recorded since the last one."""

from __future__ import annotations

import random

import pytest

from sagemaker_emulator.runtime import telemetry
from sagemaker_emulator.runtime.telemetry import EndpointMetrics


@pytest.fixture
def published(monkeypatch):
    """Capture put_metric_data calls instead of sending them to moto: {(region, endpoint, variant, metric): datum}."""
    calls: dict[tuple[str, str, str, str], dict] = {}

    def put_metric_data(region: str, namespace: str, data: list[dict]) -> None:
        assert namespace == "AWS/SageMaker"
        for datum in data:
            dims = {d["Name"]: d["Value"] for d in datum["Dimensions"]}
            key = (region, dims["EndpointName"], dims["VariantName"], datum["MetricName"])
            assert key not in calls, "one datum per metric and variant per flush"
            calls[key] = datum

    monkeypatch.setattr(telemetry.moto_bridge, "put_metric_data", put_metric_data)
    return calls


def expected_sets(samples: list[tuple[int, float | None, float, int]]) -> dict[str, dict]:
    """The statistic set of every metric, computed datum by datum (one datum per request per metric)."""
    values: dict[str, list[float]] = {}
    for instances, model_latency, overhead, status in samples:
        values.setdefault("Invocations", []).append(1)
        values.setdefault("InvocationsPerInstance", []).append(1 / max(instances, 1))
        values.setdefault("Invocation4XXErrors", []).append(1 if 400 <= status < 500 else 0)
        values.setdefault("Invocation5XXErrors", []).append(1 if status >= 500 else 0)
        values.setdefault("InvocationModelErrors", []).append(0 if status < 400 else 1)
        if model_latency is not None:
            values.setdefault("ModelLatency", []).append(model_latency)
        values.setdefault("OverheadLatency", []).append(overhead)
    return {metric: {"SampleCount": len(v), "Sum": pytest.approx(sum(v)), "Minimum": min(v), "Maximum": max(v)}
            for metric, v in values.items()}


def test_one_flush_publishes_every_invocation_metric_as_a_statistic_set(published):
    rng = random.Random(7)
    metrics = EndpointMetrics()
    samples = {
        ("us-east-1", "ep", "A"): [(rng.choice([1, 2, 3]), rng.choice([None, rng.uniform(10, 900)]),
                                    rng.uniform(50, 300), rng.choice([200, 200, 200, 415, 500]))
                                   for _ in range(200)],
        ("us-east-1", "ep", "B"): [(2, 120.0, 80.0, 200)] * 5,  # only successes: the error minimums stay 0
        ("eu-west-1", "other", "AllTraffic"): [(1, None, 70.0, 500)],  # no model latency: no ModelLatency datum
    }
    for (region, endpoint, variant), rows in samples.items():
        for instances, model_latency, overhead, status in rows:
            metrics.record_invocation(region, endpoint, variant, instances=instances,
                                      model_latency_us=model_latency, overhead_us=overhead, status=status)
    metrics.flush()

    for (region, endpoint, variant), rows in samples.items():
        expected = expected_sets(rows)
        got = {metric: datum for (r, e, v, metric), datum in published.items() if (r, e, v) == (region, endpoint, variant)}
        assert set(got) == set(expected)
        for metric, datum in got.items():
            assert datum["StatisticValues"] == expected[metric], metric
            assert datum["Unit"] == ("Microseconds" if metric.endswith("Latency") else "None")


def test_a_flush_starts_a_new_period(published):
    metrics = EndpointMetrics()
    metrics.record_invocation("us-east-1", "ep", "A", instances=1, model_latency_us=5.0, overhead_us=1.0, status=200)
    metrics.flush()
    published.clear()
    metrics.flush()
    assert published == {}
    metrics.record_invocation("us-east-1", "ep", "A", instances=1, model_latency_us=7.0, overhead_us=2.0, status=500)
    metrics.flush()
    assert published[("us-east-1", "ep", "A", "Invocations")]["StatisticValues"]["SampleCount"] == 1
    assert published[("us-east-1", "ep", "A", "Invocation5XXErrors")]["StatisticValues"]["Sum"] == 1


def test_an_async_invocations_model_latency_keeps_its_distribution(published):
    """Async endpoints record ModelLatency through record(): p99 alarms need its values too."""
    metrics = EndpointMetrics()
    for latency in (100.0, 200.0, 200.0, 9000.0):
        metrics.record_async_invocation("us-east-1", "ep", "A", model_latency_us=latency, status=200)
    metrics.flush()
    datum = published[("us-east-1", "ep", "A", "ModelLatency")]
    assert datum["Distribution"] == [[100.0, 1], [200.0, 2], [9000.0, 1]]
    assert "Distribution" not in published[("us-east-1", "ep", "A", "Invocation5XXErrors")]
