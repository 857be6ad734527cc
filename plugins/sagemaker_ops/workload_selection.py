"""Choose the hosting option and configuration: the book chapter's selection algorithm (Figure 10.8).

Pure functions over two inputs: what the pipeline states it needs (:class:`Requirements`: batch or
online, payload size, processing time, latency SLA, traffic pattern, tolerance for cold starts, cost
budget) and what the benchmark measured for each candidate (:class:`MeasuredCandidate`). The limits
are the chapter's table (Figure 10.7) of the four SageMaker inference options:

=================  ===========  ===========  ==========  ===========
                   real-time    batch        async       serverless
=================  ===========  ===========  ==========  ===========
payload            6 MB         100 MB       1 GB        4 MB
processing time    60 s         unlimited    15 min      60 s
scale              1..n inst.   1..n inst.   0..n inst.  0..200 concurrent
=================  ===========  ===========  ==========  ===========

The decision, in the order the figure asks its questions:

1. offline input available up front (``mode: batch``) -> batch transform, unless a record is over
   100 MB (then async, up to 1 GB);
2. online, but a payload over 6 MB or processing over 60 s -> async (up to 1 GB / 15 min; beyond
   that no option fits and the selection fails);
3. traffic that is not steady, cold starts tolerated, payload within 4 MB and a measured serverless
   configuration meeting the SLA -> serverless (pay per request, scale to zero);
4. otherwise real-time: the instance configuration that meets the latency SLA at the lowest cost
   per inference.

Every step appends a sentence to ``reasons``; the operator logs them and the report prints them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MB = 1024 * 1024
HOURS_PER_MONTH = 730  # AWS's pricing pages bill a month as 730 hours
MAX_ERROR_RATE = 0.01  # a configuration failing more than 1% of its requests did not serve the load

REAL_TIME, SERVERLESS, ASYNC, BATCH = "real-time", "serverless", "async", "batch"
OPTION_LIMITS = {  # the chapter's table: max payload (bytes), max processing time (seconds, None: unlimited)
    REAL_TIME: (6 * MB, 60),
    SERVERLESS: (4 * MB, 60),
    ASYNC: (1024 * MB, 15 * 60),
    BATCH: (100 * MB, None),
}
TRAFFIC_PATTERNS = ("steady", "variable", "intermittent")


class WorkloadSelectionError(ValueError):
    """No hosting option or configuration satisfies the requirements; ``reasons`` says why."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(message + "\n" + "\n".join(f"- {reason}" for reason in reasons))


@dataclass(frozen=True)
class Requirements:
    """What the pipeline states about its workload (the ``benchmark.requirements`` section)."""

    mode: str = "online"  # online | batch (the whole input is available up front)
    payload_size_bytes: int = 1024  # the largest request
    max_processing_seconds: float = 1.0  # the slowest inference
    latency_sla_ms: float | None = None  # at ``latency_percentile``; None: no SLA
    latency_percentile: str = "p99"
    traffic_pattern: str = "steady"  # steady | variable (peaks and troughs) | intermittent (idle periods)
    cold_start_tolerant: bool = False
    expected_peak_rps: float | None = None
    monthly_budget_usd: float | None = None


@dataclass(frozen=True)
class MeasuredCandidate:
    """One benchmarked configuration and what was measured (by a load test or an Inference Recommender job)."""

    name: str
    kind: str  # "instance" | "serverless"
    max_rps: float  # the whole configuration's measured capacity (requests per second)
    latency_ms: dict[str, float]  # percentile ("p50", "p95", "p99") -> milliseconds, at that capacity
    error_rate: float = 0.0
    instance_type: str | None = None
    instance_count: int = 1
    cost_per_hour: float | None = None  # the whole fleet (instances); None for serverless
    cost_per_inference: float | None = None
    memory_size_mb: int | None = None  # serverless
    max_concurrency: int | None = None  # serverless
    cold_start_ms: float | None = None  # serverless: the first request after idle

    @property
    def max_rps_per_instance(self) -> float:
        return self.max_rps / max(self.instance_count, 1)

    @property
    def cost_per_million(self) -> float | None:
        return None if self.cost_per_inference is None else self.cost_per_inference * 1e6

    def latency_at(self, percentile: str) -> float | None:
        return self.latency_ms.get(percentile)


@dataclass
class Selection:
    """The recommendation: the hosting option, the configuration (a candidate's name; None for none
    measured) and the reasons, in the order they were decided."""

    option: str
    candidate: str | None
    reasons: list[str] = field(default_factory=list)
    within_budget: bool | None = None  # None: no budget (or no expected load) stated

    def as_dict(self) -> dict:
        return {"option": self.option, "candidate": self.candidate, "reasons": list(self.reasons),
                "within_budget": self.within_budget}


def select_workload(requirements: Requirements, candidates: list[MeasuredCandidate]) -> Selection:
    """The chapter's decision (module docstring), explained; :class:`WorkloadSelectionError` if nothing fits."""
    reasons: list[str] = []
    payload, seconds = requirements.payload_size_bytes, requirements.max_processing_seconds
    if requirements.mode == "batch":
        if _fits(BATCH, payload, seconds):
            reasons.append(f"The input is available up front (mode batch) and a {_size(payload)} record fits batch "
                           "transform's 100 MB: run it offline, with no endpoint kept running.")
            return _cheapest_instances(BATCH, candidates, reasons, requirements)
        reasons.append(f"Mode batch, but a {_size(payload)} record exceeds batch transform's 100 MB payload.")
        return _asynchronous(requirements, candidates, reasons)
    if not _fits(REAL_TIME, payload, seconds):
        reasons.append(f"A {_size(payload)} payload or {seconds:g} s of processing exceeds real-time inference "
                       "(6 MB, 60 s per request).")
        return _asynchronous(requirements, candidates, reasons)
    reasons.append(f"Online requests of up to {_size(payload)} and {seconds:g} s fit real-time inference "
                   "(6 MB, 60 s).")
    serverless = _serverless_if_suitable(requirements, candidates, reasons)
    if serverless is not None:
        return serverless
    return _real_time(requirements, candidates, reasons)


def _asynchronous(requirements: Requirements, candidates: list[MeasuredCandidate], reasons: list[str]) -> Selection:
    payload, seconds = requirements.payload_size_bytes, requirements.max_processing_seconds
    if not _fits(ASYNC, payload, seconds):
        reasons.append(f"Asynchronous inference takes at most 1 GB and 15 minutes per request; {_size(payload)} "
                       f"and {seconds:g} s do not fit.")
        raise WorkloadSelectionError("No SageMaker inference option takes this workload: split the payload or the "
                                     "work (batch transform over smaller records).", reasons)
    reasons.append("Asynchronous inference takes up to 1 GB and 15 minutes per request, queues requests and "
                   "answers through S3; it can scale to zero instances when idle.")
    return _cheapest_instances(ASYNC, candidates, reasons, requirements)


def _cheapest_instances(option: str, candidates: list[MeasuredCandidate], reasons: list[str],
                        requirements: Requirements) -> Selection:
    """Batch and async: latency is not the user's wait, so the lowest cost per inference wins."""
    instances = [c for c in candidates if c.kind == "instance" and _served(c, reasons)
                 and c.cost_per_inference is not None]
    if not instances:
        reasons.append(f"No instance configuration was measured; {option} runs on instances: benchmark some.")
        return Selection(option, None, reasons)
    best = min(instances, key=lambda c: c.cost_per_inference)
    reasons.append(f"{best.name} has the lowest measured cost per inference "
                   f"(${best.cost_per_million:.3g} per million at {best.max_rps:.0f} requests/s).")
    return _budgeted(Selection(option, best.name, reasons), best, requirements)


def _serverless_if_suitable(requirements: Requirements, candidates: list[MeasuredCandidate],
                            reasons: list[str]) -> Selection | None:
    """Serverless when the traffic has idle periods or swings, cold starts are acceptable and a measured
    serverless configuration meets the SLA; else None, with the reason it was ruled out."""
    if requirements.traffic_pattern == "steady":
        reasons.append("Traffic is steady: instances kept busy cost less per inference than paying per request, "
                       "and never start cold; serverless not chosen.")
        return None
    if not requirements.cold_start_tolerant:
        reasons.append(f"Traffic is {requirements.traffic_pattern}, but cold starts are not tolerated (serverless "
                       "scales to zero and its first request after idle waits for a worker): real-time instead.")
        return None
    if requirements.payload_size_bytes > OPTION_LIMITS[SERVERLESS][0]:
        reasons.append(f"A {_size(requirements.payload_size_bytes)} payload exceeds serverless inference's 4 MB.")
        return None
    measured = [c for c in candidates if c.kind == "serverless" and _served(c, reasons)]
    if not measured:
        reasons.append(f"Traffic is {requirements.traffic_pattern} and cold starts are tolerated, but no serverless "
                       "configuration was benchmarked (add one to benchmark.candidates): real-time instead.")
        return None
    meeting = _meeting_sla(measured, requirements, reasons)
    if not meeting:
        reasons.append("No serverless configuration met the latency SLA: real-time instead.")
        return None
    best = min(meeting, key=lambda c: (c.cost_per_inference if c.cost_per_inference is not None else math.inf))
    cold = f"; its cold start took {best.cold_start_ms:.0f} ms" if best.cold_start_ms is not None else ""
    reasons.append(f"Traffic is {requirements.traffic_pattern} and cold starts are tolerated: serverless "
                   f"{best.name} meets the SLA and is paid per request, scaling to zero when idle{cold}.")
    return _budgeted(Selection(SERVERLESS, best.name, reasons), best, requirements)


def _real_time(requirements: Requirements, candidates: list[MeasuredCandidate], reasons: list[str]) -> Selection:
    instances = [c for c in candidates if c.kind == "instance" and _served(c, reasons)]
    if not instances:
        raise WorkloadSelectionError("Real-time inference needs an instance configuration, and none was measured "
                                     "successfully: add instance candidates to benchmark.candidates.", reasons)
    best = cheapest_meeting_sla(instances, requirements, reasons)
    if best is None:
        raise WorkloadSelectionError(f"No instance configuration meets the latency SLA "
                                     f"({requirements.latency_percentile} <= {requirements.latency_sla_ms:g} ms): "
                                     "benchmark larger instances or relax the SLA.", reasons)
    reasons.append(f"Real-time on {best.name}: of the configurations meeting the SLA it has the lowest cost per "
                   f"inference (${(best.cost_per_million or 0):.3g} per million at its measured "
                   f"{best.max_rps:.0f} requests/s).")
    return _budgeted(Selection(REAL_TIME, best.name, reasons), best, requirements)


def cheapest_meeting_sla(candidates: list[MeasuredCandidate], requirements: Requirements,
                         reasons: list[str]) -> MeasuredCandidate | None:
    """Of the candidates within the latency SLA, the lowest cost per inference (then the most
    throughput); None when none meets it. Each candidate's verdict is appended to ``reasons``."""
    meeting = _meeting_sla(candidates, requirements, reasons)
    priced = [c for c in meeting if c.cost_per_inference is not None]
    return min(priced or meeting, key=lambda c: (c.cost_per_inference or math.inf, -c.max_rps), default=None)


def _meeting_sla(candidates: list[MeasuredCandidate], requirements: Requirements,
                 reasons: list[str]) -> list[MeasuredCandidate]:
    """The candidates whose measured latency at the SLA's percentile is within it (all, without an SLA)."""
    if requirements.latency_sla_ms is None:
        reasons.append("No latency SLA stated: every configuration qualifies.")
        return list(candidates)
    percentile, limit = requirements.latency_percentile, requirements.latency_sla_ms
    meeting = []
    for candidate in candidates:
        latency = candidate.latency_at(percentile)
        if latency is None:
            reasons.append(f"{candidate.name}: no {percentile} latency measured, so it cannot be held to the SLA.")
        elif latency <= limit:
            meeting.append(candidate)
            reasons.append(f"{candidate.name} meets the SLA: {percentile} {latency:.1f} ms <= {limit:g} ms.")
        else:
            reasons.append(f"{candidate.name} misses the SLA: {percentile} {latency:.1f} ms > {limit:g} ms.")
    return meeting


def _served(candidate: MeasuredCandidate, reasons: list[str]) -> bool:
    if candidate.error_rate > MAX_ERROR_RATE:
        reasons.append(f"{candidate.name} is ruled out: {100 * candidate.error_rate:.1f}% of its requests failed "
                       f"(more than {100 * MAX_ERROR_RATE:g}%).")
        return False
    return True


def _budgeted(selection: Selection, chosen: MeasuredCandidate, requirements: Requirements) -> Selection:
    """Compare the chosen configuration's monthly cost at the expected peak load with the budget."""
    if requirements.monthly_budget_usd is None or requirements.expected_peak_rps is None:
        return selection
    monthly = monthly_cost(chosen, requirements.expected_peak_rps)
    if monthly is None:
        selection.reasons.append(f"{chosen.name} has no measured cost: the budget cannot be checked.")
        return selection
    selection.within_budget = monthly <= requirements.monthly_budget_usd
    verdict = "within" if selection.within_budget else "OVER"
    selection.reasons.append(f"At the expected {requirements.expected_peak_rps:g} requests/s {chosen.name} costs about "
                             f"${monthly:,.0f} a month: {verdict} the ${requirements.monthly_budget_usd:,.0f} budget.")
    return selection


def monthly_cost(candidate: MeasuredCandidate, requests_per_second: float) -> float | None:
    """A month at ``requests_per_second``: enough copies of the instance fleet for that load (whole
    instances), or per request for serverless."""
    if candidate.kind == "serverless" or candidate.cost_per_hour is None:
        if candidate.cost_per_inference is None:
            return None
        return candidate.cost_per_inference * requests_per_second * 3600 * HOURS_PER_MONTH
    instances = max(1, math.ceil(requests_per_second / max(candidate.max_rps_per_instance, 1e-9)))
    return candidate.cost_per_hour / max(candidate.instance_count, 1) * instances * HOURS_PER_MONTH


def _fits(option: str, payload: int, seconds: float) -> bool:
    max_payload, max_seconds = OPTION_LIMITS[option]
    return payload <= max_payload and (max_seconds is None or seconds <= max_seconds)


def _size(size_bytes: int) -> str:
    if size_bytes >= MB:
        return f"{size_bytes / MB:g} MB"
    return f"{size_bytes / 1024:.3g} KB"
