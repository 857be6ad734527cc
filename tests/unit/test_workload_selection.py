"""The chapter's workload-selection algorithm, branch by branch (sagemaker_ops.workload_selection)."""

from __future__ import annotations

import pytest

from sagemaker_ops.workload_selection import (
    MB,
    MeasuredCandidate,
    Requirements,
    WorkloadSelectionError,
    monthly_cost,
    select_workload,
)

C5_LARGE = MeasuredCandidate(name="ml.c5.large x1", kind="instance", max_rps=400, latency_ms={"p99": 40, "p50": 8},
                             instance_type="ml.c5.large", cost_per_hour=0.102, cost_per_inference=0.102 / (400 * 3600))
C5_XLARGE = MeasuredCandidate(name="ml.c5.xlarge x1", kind="instance", max_rps=900, latency_ms={"p99": 20, "p50": 5},
                              instance_type="ml.c5.xlarge", cost_per_hour=0.204,
                              cost_per_inference=0.204 / (900 * 3600))
M5_LARGE = MeasuredCandidate(name="ml.m5.large x1", kind="instance", max_rps=300, latency_ms={"p99": 90, "p50": 12},
                             instance_type="ml.m5.large", cost_per_hour=0.115, cost_per_inference=0.115 / (300 * 3600))
SERVERLESS_2G = MeasuredCandidate(name="serverless 2048MB x20", kind="serverless", max_rps=150,
                                  latency_ms={"p99": 60, "p50": 10}, memory_size_mb=2048, max_concurrency=20,
                                  cost_per_inference=4e-7, cold_start_ms=1800)
ALL = [C5_LARGE, C5_XLARGE, M5_LARGE, SERVERLESS_2G]


def test_batch_mode_picks_batch_transform_on_the_cheapest_instances():
    selection = select_workload(Requirements(mode="batch", payload_size_bytes=50 * MB, max_processing_seconds=600), ALL)
    assert (selection.option, selection.candidate) == ("batch", "ml.c5.xlarge x1")
    assert "available up front" in selection.reasons[0]
    assert "lowest measured cost per inference" in selection.reasons[-1]


def test_batch_mode_with_records_over_100_mb_goes_async():
    selection = select_workload(Requirements(mode="batch", payload_size_bytes=200 * MB), ALL)
    assert selection.option == "async"
    assert "exceeds batch transform's 100 MB" in selection.reasons[0]


def test_batch_without_instance_candidates_says_to_benchmark_some():
    selection = select_workload(Requirements(mode="batch"), [SERVERLESS_2G])
    assert (selection.option, selection.candidate) == ("batch", None)
    assert "No instance configuration was measured" in selection.reasons[-1]


@pytest.mark.parametrize("payload, seconds", [(8 * MB, 1.0), (1024, 300.0)])
def test_online_over_real_time_limits_goes_async(payload, seconds):
    selection = select_workload(Requirements(payload_size_bytes=payload, max_processing_seconds=seconds), ALL)
    assert (selection.option, selection.candidate) == ("async", "ml.c5.xlarge x1")
    assert "exceeds real-time inference (6 MB, 60 s" in selection.reasons[0]


@pytest.mark.parametrize("payload, seconds", [(2048 * MB, 1.0), (1024, 3600.0)])
def test_beyond_async_limits_nothing_fits(payload, seconds):
    with pytest.raises(WorkloadSelectionError, match="No SageMaker inference option takes this workload") as caught:
        select_workload(Requirements(payload_size_bytes=payload, max_processing_seconds=seconds), ALL)
    assert "at most 1 GB and 15 minutes" in caught.value.reasons[-1]


def test_steady_traffic_picks_real_time_meeting_the_sla_at_the_lowest_cost_per_inference():
    selection = select_workload(Requirements(latency_sla_ms=50, traffic_pattern="steady"), ALL)
    assert (selection.option, selection.candidate) == ("real-time", "ml.c5.xlarge x1")
    text = "\n".join(selection.reasons)
    assert "Traffic is steady" in text
    assert "ml.m5.large x1 misses the SLA: p99 90.0 ms > 50 ms" in text
    assert "ml.c5.large x1 meets the SLA: p99 40.0 ms <= 50 ms" in text
    assert selection.within_budget is None


def test_a_tighter_sla_rules_out_the_cheaper_instance():
    cheap_but_slow = MeasuredCandidate(name="cheap", kind="instance", max_rps=2000, latency_ms={"p99": 30},
                                       cost_per_hour=0.1, cost_per_inference=0.1 / (2000 * 3600))
    assert select_workload(Requirements(latency_sla_ms=50), [cheap_but_slow, C5_XLARGE]).candidate == "cheap"
    assert select_workload(Requirements(latency_sla_ms=25), [cheap_but_slow, C5_XLARGE]).candidate == \
        "ml.c5.xlarge x1"


def test_no_sla_lets_every_configuration_qualify():
    selection = select_workload(Requirements(), [M5_LARGE, C5_LARGE])
    assert selection.candidate == "ml.c5.large x1"
    assert "No latency SLA stated" in "\n".join(selection.reasons)


def test_no_instance_meeting_the_sla_fails_naming_the_sla():
    with pytest.raises(WorkloadSelectionError, match=r"meets the latency SLA \(p99 <= 5 ms\)") as caught:
        select_workload(Requirements(latency_sla_ms=5), ALL)
    assert any("misses the SLA" in reason for reason in caught.value.reasons)


def test_real_time_without_instance_candidates_fails():
    with pytest.raises(WorkloadSelectionError, match="needs an instance configuration"):
        select_workload(Requirements(), [SERVERLESS_2G])


def test_a_candidate_without_the_percentile_cannot_be_held_to_the_sla():
    partial = MeasuredCandidate(name="p50 only", kind="instance", max_rps=100, latency_ms={"p50": 1},
                                cost_per_hour=0.01, cost_per_inference=1e-9)
    selection = select_workload(Requirements(latency_sla_ms=50), [partial, C5_LARGE])
    assert selection.candidate == "ml.c5.large x1"
    assert "p50 only: no p99 latency measured" in "\n".join(selection.reasons)


def test_failing_candidates_are_ruled_out():
    broken = MeasuredCandidate(name="broken", kind="instance", max_rps=5000, latency_ms={"p99": 1}, error_rate=0.2,
                               cost_per_hour=0.01, cost_per_inference=1e-10)
    selection = select_workload(Requirements(latency_sla_ms=50), [broken, C5_LARGE])
    assert selection.candidate == "ml.c5.large x1"
    assert "broken is ruled out: 20.0% of its requests failed" in "\n".join(selection.reasons)


def test_intermittent_traffic_tolerating_cold_starts_picks_serverless():
    selection = select_workload(Requirements(latency_sla_ms=100, traffic_pattern="intermittent",
                                             cold_start_tolerant=True), ALL)
    assert (selection.option, selection.candidate) == ("serverless", "serverless 2048MB x20")
    assert "its cold start took 1800 ms" in selection.reasons[-1]


def test_cold_starts_not_tolerated_means_real_time():
    selection = select_workload(Requirements(latency_sla_ms=100, traffic_pattern="variable"), ALL)
    assert selection.option == "real-time"
    assert "cold starts are not tolerated" in "\n".join(selection.reasons)


def test_payload_over_4_mb_rules_out_serverless():
    selection = select_workload(Requirements(payload_size_bytes=5 * MB, traffic_pattern="intermittent",
                                             cold_start_tolerant=True), ALL)
    assert selection.option == "real-time"
    assert "exceeds serverless inference's 4 MB" in "\n".join(selection.reasons)


def test_no_serverless_candidate_measured_means_real_time():
    selection = select_workload(Requirements(traffic_pattern="intermittent", cold_start_tolerant=True), [C5_LARGE])
    assert selection.option == "real-time"
    assert "no serverless configuration was benchmarked" in "\n".join(selection.reasons)


def test_serverless_missing_the_sla_means_real_time():
    selection = select_workload(Requirements(latency_sla_ms=50, traffic_pattern="intermittent",
                                             cold_start_tolerant=True), ALL)
    assert (selection.option, selection.candidate) == ("real-time", "ml.c5.xlarge x1")
    assert "No serverless configuration met the latency SLA" in "\n".join(selection.reasons)


def test_budget_within_and_over():
    within = select_workload(Requirements(latency_sla_ms=50, expected_peak_rps=500, monthly_budget_usd=1000), ALL)
    assert within.within_budget is True
    assert "within the $1,000 budget" in within.reasons[-1]
    over = select_workload(Requirements(latency_sla_ms=50, expected_peak_rps=5000, monthly_budget_usd=100), ALL)
    assert over.within_budget is False
    assert "OVER the $100 budget" in over.reasons[-1]


def test_budget_of_a_candidate_without_cost_cannot_be_checked():
    unpriced = MeasuredCandidate(name="unpriced", kind="instance", max_rps=100, latency_ms={"p99": 1})
    selection = select_workload(Requirements(expected_peak_rps=10, monthly_budget_usd=10), [unpriced])
    assert selection.within_budget is None
    assert "no measured cost" in selection.reasons[-1]


def test_monthly_cost_counts_whole_instances_and_serverless_per_request():
    # 1000 rps on c5.large measured at 400 rps per instance -> 3 instances, 730 hours each.
    assert monthly_cost(C5_LARGE, 1000) == pytest.approx(3 * 0.102 * 730)
    assert monthly_cost(SERVERLESS_2G, 10) == pytest.approx(4e-7 * 10 * 3600 * 730)


def test_a_candidate_bigger_than_the_host_running_its_emulator_is_noted():
    from sagemaker_ops.benchmark_tasks import host_limit_notes

    small = MeasuredCandidate(name="ml.c5.large x1", kind="instance", max_rps=900, latency_ms={"p95": 5},
                              instance_type="ml.c5.large", instance_count=1)
    big = MeasuredCandidate(name="ml.c5.xlarge x2", kind="instance", max_rps=900, latency_ms={"p95": 5},
                            instance_type="ml.c5.xlarge", instance_count=2)
    [note] = host_limit_notes([small, big], "http://127.0.0.1:4566", host_cores=2)
    assert note.startswith("Note: ml.c5.xlarge x2 has 8 vCPUs but ran on this machine's 2 cores")
    assert host_limit_notes([small, big], None, host_cores=2) == []  # on AWS: nothing to say
