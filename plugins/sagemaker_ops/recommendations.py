"""Inference Recommender results read as measured candidates, and the choice among them (pure).

A recommendation's ``Metrics`` (MaxInvocations per minute, ModelLatency in ms at the job's percentile,
CostPerHour and CostPerInference for the recommended fleet, ModelSetupTime for serverless) become a
:class:`~sagemaker_ops.workload_selection.MeasuredCandidate`, so an Inference Recommender job and our
own load tests feed the same choice: within the latency SLA, the lowest cost per inference.
"""

from __future__ import annotations

from typing import Any

from sagemaker_ops.workload_selection import (
    MeasuredCandidate,
    Requirements,
    WorkloadSelectionError,
    cheapest_meeting_sla,
)

DEFAULT_PERCENTILE = "P95"  # ModelLatencyThresholds' default percentile, and the one ModelLatency is read at


def recommendation_name(recommendation: dict[str, Any]) -> str:
    """``ml.c5.large x1`` or ``serverless 2048MB x5``: how the logs and the report call a configuration."""
    config = recommendation["EndpointConfiguration"]
    if config.get("ServerlessConfig"):
        serverless = config["ServerlessConfig"]
        return f"serverless {serverless['MemorySizeInMB']}MB x{serverless['MaxConcurrency']}"
    environment = recommendation.get("ModelConfiguration", {}).get("EnvironmentParameters", [])
    suffix = "".join(f" {p['Key']}={p['Value']}" for p in environment)
    return f"{config['InstanceType']} x{config.get('InitialInstanceCount', 1)}{suffix}"


def measured_candidate(recommendation: dict[str, Any], percentile: str = DEFAULT_PERCENTILE) -> MeasuredCandidate:
    metrics, config = recommendation["Metrics"], recommendation["EndpointConfiguration"]
    serverless = config.get("ServerlessConfig") or {}
    return MeasuredCandidate(
        name=recommendation_name(recommendation),
        kind="serverless" if serverless else "instance",
        max_rps=metrics.get("MaxInvocations", 0) / 60,
        latency_ms={percentile.lower(): float(metrics["ModelLatency"])} if "ModelLatency" in metrics else {},
        instance_type=config.get("InstanceType"),
        instance_count=config.get("InitialInstanceCount") or 1,
        cost_per_hour=metrics.get("CostPerHour"),
        cost_per_inference=metrics.get("CostPerInference"),
        memory_size_mb=serverless.get("MemorySizeInMB"),
        max_concurrency=serverless.get("MaxConcurrency"),
        cold_start_ms=metrics.get("ModelSetupTime"),
    )


def job_percentile(job: dict[str, Any]) -> str:
    """The percentile the job measured ModelLatency at (its latency stopping condition's, else P95)."""
    thresholds = (job.get("StoppingConditions") or {}).get("ModelLatencyThresholds") or []
    return thresholds[0].get("Percentile", DEFAULT_PERCENTILE) if thresholds else DEFAULT_PERCENTILE


def choose_recommendation(recommendations: list[dict[str, Any]], latency_sla_ms: float | None,
                          percentile: str = DEFAULT_PERCENTILE) -> tuple[dict[str, Any], list[str]]:
    """The recommendation meeting the SLA at the lowest CostPerInference, and why;
    :class:`WorkloadSelectionError` when none meets it."""
    if not recommendations:
        raise WorkloadSelectionError("The job has no recommendations to choose from.", [])
    by_name = {recommendation_name(r): r for r in recommendations}
    candidates = [measured_candidate(r, percentile) for r in recommendations]
    requirements = Requirements(latency_sla_ms=latency_sla_ms, latency_percentile=percentile.lower())
    reasons: list[str] = []
    best = cheapest_meeting_sla(candidates, requirements, reasons)
    if best is None:
        raise WorkloadSelectionError(f"No recommended configuration meets the latency SLA ({percentile} <= "
                                     f"{latency_sla_ms:g} ms).", reasons)
    cost = f"${best.cost_per_inference * 1e6:.2f} per million inferences" if best.cost_per_inference else "no cost"
    reasons.append(f"Chosen: {best.name}, the lowest cost per inference within the SLA ({cost}, "
                   f"{best.max_rps * 60:.0f} invocations/min, {percentile} {best.latency_at(percentile.lower())} ms).")
    return by_name[best.name], reasons
