"""Endpoint metrics to CloudWatch (``AWS/SageMaker``) and worker logs to CloudWatch Logs.

Invocations are aggregated in memory and flushed as statistic sets on a short interval, as the
real service publishes per-minute aggregates rather than one datum per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterator

from sagemaker_emulator import moto_bridge

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"  # per-instance metrics (utilisation, LoadedModelCount)
UNITS = {"ModelLatency": "Microseconds", "OverheadLatency": "Microseconds", "ModelSetupTime": "Microseconds",
         "ModelLoadingWaitTime": "Microseconds", "ModelLoadingTime": "Microseconds",
         "ModelDownloadingTime": "Microseconds", "ModelUnloadingTime": "Microseconds"}


@dataclass(slots=True)
class _Stat:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value


@dataclass(slots=True)
class _Sample(_Stat):
    """A statistic set that also keeps the raw values, so percentiles (ModelLatency p99) can be computed."""

    values: list = field(default_factory=list)

    def add(self, value: float) -> None:
        _Stat.add(self, value)
        self.values.append(value)

    def distribution(self) -> list[list[float]]:
        """[value, count] pairs, values rounded to 3 significant digits (CloudWatch's percentiles are
        approximate too) so that a busy second is a few hundred pairs, not one entry per request."""
        counts = Counter(float(f"{value:.3g}") for value in self.values)
        return [[value, count] for value, count in sorted(counts.items())]


class _Invocations:
    """The invocation metrics of one variant since the last flush, updated once per request.

    Counting metrics whose every datum is 0 or 1 (Invocations, the error counts) keep just a
    count; their statistic set follows from it (Sum = count of ones, Minimum 0 unless every datum
    was 1, Maximum 1 if any was).
    """

    __slots__ = ("invocations", "errors_4xx", "errors_5xx", "per_instance", "model_latency", "overhead")

    def __init__(self) -> None:
        self.invocations = self.errors_4xx = self.errors_5xx = 0
        self.per_instance = _Stat()
        self.model_latency = _Sample()
        self.overhead = _Stat()

    def statistic_sets(self) -> Iterator[tuple[str, _Stat]]:
        n = self.invocations
        model_errors = self.errors_4xx + self.errors_5xx
        yield "Invocations", _Stat(n, float(n), 1, 1)
        yield "InvocationsPerInstance", self.per_instance
        for metric, ones in (("Invocation4XXErrors", self.errors_4xx), ("Invocation5XXErrors", self.errors_5xx),
                             ("InvocationModelErrors", model_errors)):
            yield metric, _Stat(n, float(ones), 1 if ones == n else 0, 1 if ones else 0)
        if self.model_latency.count:
            yield "ModelLatency", self.model_latency
        yield "OverheadLatency", self.overhead


class EndpointMetrics:
    """Collects per-variant invocation metrics and publishes them to moto's CloudWatch."""

    def __init__(self, flush_seconds: float = 1.0):
        self.flush_seconds = flush_seconds
        # keyed (region, endpoint, variant, EndpointConfigName or ""): a deployment's green fleet also
        # publishes under the EndpointConfigName dimension, so an alarm can watch green alone (AWS does this)
        self._invocations: dict[tuple[str, str, str, str], _Invocations] = {}
        # any other metric, keyed (namespace, region, endpoint, variant, metric)
        self._stats: dict[tuple[str, str, str, str, str], _Stat] = {}
        self._task: asyncio.Task | None = None

    def record_invocation(self, region: str, endpoint: str, variant: str, *, instances: int,
                          model_latency_us: float | None, overhead_us: float, status: int,
                          config_name: str = "") -> None:
        """Called once per InvokeEndpoint, on the hot path: one dictionary lookup, a few additions."""
        key = (region, endpoint, variant, config_name)
        stats = self._invocations.get(key)
        if stats is None:
            stats = self._invocations[key] = _Invocations()
        stats.invocations += 1
        if status >= 500:
            stats.errors_5xx += 1
        elif status >= 400:
            stats.errors_4xx += 1
        stats.per_instance.add(1 / max(instances, 1))
        if model_latency_us is not None:
            stats.model_latency.add(model_latency_us)
        stats.overhead.add(overhead_us)

    def record(self, region: str, endpoint: str, variant: str, metric: str, value: float,
               namespace: str = NAMESPACE) -> None:
        """Add one datum of any other metric (e.g. the multi-model cache metrics) to the next flush. Timings
        (async ModelLatency, ModelSetupTime, the multi-model loading times) keep their values for percentiles."""
        key = (namespace, region, endpoint, variant, metric)
        stat = self._stats.get(key)
        if stat is None:
            stat = self._stats[key] = _Sample() if metric in UNITS else _Stat()
        stat.add(value)

    def record_async_invocation(self, region: str, endpoint: str, variant: str, *,
                                model_latency_us: float | None, status: int) -> None:
        """An asynchronous endpoint's invocation: only the common metrics, as AWS publishes for them
        no Invocations, InvocationsPerInstance or OverheadLatency (their queue has its own metrics)."""
        for metric, counted in (("Invocation4XXErrors", 400 <= status < 500), ("Invocation5XXErrors", status >= 500),
                                ("InvocationModelErrors", status >= 400)):
            self.record(region, endpoint, variant, metric, float(counted))
        if model_latency_us is not None:
            self.record(region, endpoint, variant, "ModelLatency", model_latency_us)

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        self.flush()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                self.flush()
            except Exception:  # a metrics hiccup must never take the runtime down; say so loudly
                log.exception("publishing endpoint metrics failed")

    def flush(self) -> None:
        stats, self._stats = self._stats, {}
        invocations, self._invocations = self._invocations, {}
        expanded = [((NAMESPACE, region, endpoint, variant, metric, config), stat)
                    for (region, endpoint, variant, config), aggregate in invocations.items()
                    for metric, stat in aggregate.statistic_sets()]
        by_region: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for (namespace, region, endpoint, variant, metric, config), stat in [
                *expanded, *(((*key, ""), stat) for key, stat in stats.items())]:
            dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
            if config:
                dimensions.append({"Name": "EndpointConfigName", "Value": config})
            datum = {
                "MetricName": metric,
                "Dimensions": dimensions,
                "StatisticValues": {"SampleCount": stat.count, "Sum": stat.total,
                                    "Minimum": stat.low, "Maximum": stat.high},
            }
            if isinstance(stat, _Sample) and stat.values:  # read by the alarm evaluator's percentiles
                datum["Distribution"] = stat.distribution()
            if metric in UNITS:
                datum["Unit"] = UNITS[metric]
            else:
                datum["Unit"] = "None"
            by_region[(region, namespace)].append(datum)
        for (region, namespace), data in by_region.items():
            moto_bridge.put_metric_data(region, namespace, data)


class LogSink:
    """Writes worker output to ``/aws/sagemaker/Endpoints/<endpoint>``, stream ``<variant>/<instance>``."""

    def __init__(self, region: str, endpoint: str):
        self.region = region
        self.endpoint = endpoint
        self.group = f"/aws/sagemaker/Endpoints/{endpoint}"

    def stream_for(self, variant: str, instance_id: str) -> str:
        stream = f"{variant}/{instance_id}"
        moto_bridge.ensure_log_stream(self.region, self.group, stream)
        return stream

    def write(self, stream: str, lines: list[str]) -> None:
        now = int(time.time() * 1000)
        moto_bridge.put_log_events(self.region, self.group, stream, [{"timestamp": now, "message": line} for line in lines])
