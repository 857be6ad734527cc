"""The benchmark report page and what a load test's result becomes for the selection (pure parts)."""

from __future__ import annotations

import re

import pytest

from sagemaker_ops.benchmark_report import render_benchmark_report
from sagemaker_ops.operators.benchmark import measured, production_variant

RESULT = {"capacity": {"throughput_rps": 100.0, "latency_ms": {"p95": 20.0, "mean": 10.0}},
          "totals": {"requests": 1000, "errors": 10}, "after_idle": {"latency_ms": {"max": 900.0}},
          "steps": [{"name": "step 1", "value": 2, "throughput_rps": 50.0, "latency_ms": {"p95": 5.0}, "errors": 0},
                    {"name": "step 2", "value": 8, "throughput_rps": 100.0, "latency_ms": {"p95": 20.0}, "errors": 10}]}


def test_a_load_test_becomes_a_priced_candidate():
    instance = measured({"instance_type": "ml.c5.large", "instance_count": 2}, RESULT, "s3://b/1.json")
    assert (instance["name"], instance["max_rps"], instance["error_rate"]) == ("ml.c5.large x2", 100.0, 0.01)
    assert instance["cost_per_hour"] == pytest.approx(2 * 0.102)  # the catalog's us-east-1 price, two instances
    assert instance["cost_per_inference"] == pytest.approx(2 * 0.102 / (100 * 3600))
    assert [s["users"] for s in instance["steps"]] == [2, 8] and instance["cold_start_ms"] is None
    serverless = measured({"memory_size_mb": 2048, "max_concurrency": 5}, RESULT, "s3://b/2.json")
    assert serverless["name"] == "serverless 2048MB x5" and serverless["cost_per_hour"] is None
    assert serverless["cost_per_inference"] == pytest.approx(0.00002 * 2 * 0.010)  # 2 GB for the mean 10 ms
    assert serverless["cold_start_ms"] == 900.0
    assert production_variant({"memory_size_mb": 2048, "max_concurrency": 5}, "m")["ServerlessConfig"] == {
        "MemorySizeInMB": 2048, "MaxConcurrency": 5}


def test_the_page_shows_the_choice_reasons_plots_and_table():
    candidate = measured({"instance_type": "ml.c5.large", "instance_count": 2}, RESULT, "s3://b/1.json")
    page = render_benchmark_report({
        "pipeline": "iris", "latency_sla_ms": 50, "percentile": "P95", "safety_factor": 0.5,
        "autoscaling_target": 1500.0, "candidates": [candidate],
        "selection": {"option": "real-time", "candidate": "ml.c5.large x2", "reasons": ["because <cheap>"]}})
    assert "Choice: real-time on ml.c5.large x2" in page
    assert "<li>because &lt;cheap&gt;</li>" in page
    assert "<b>1500</b> invocations per instance per minute" in page
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', page)) == 2
    assert '<tr class="chosen"><td>ml.c5.large x2</td><td>100.0</td><td>20.0</td><td>1.00%</td>' in page
