"""Endpoint metrics to CloudWatch (``AWS/SageMaker``) and worker logs to CloudWatch Logs.

Invocations are aggregated in memory and flushed as statistic sets on a short interval, as the
real service publishes per-minute aggregates rather than one datum per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from sagemaker_emulator import moto_bridge

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
UNITS = {"ModelLatency": "Microseconds", "OverheadLatency": "Microseconds", "ModelSetupTime": "Microseconds"}


@dataclass
class _Stat:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)


class EndpointMetrics:
    """Collects per-variant invocation metrics and publishes them to moto's CloudWatch."""

    def __init__(self, flush_seconds: float = 1.0):
        self.flush_seconds = flush_seconds
        self._stats: dict[tuple[str, str, str, str], _Stat] = defaultdict(_Stat)
        self._task: asyncio.Task | None = None

    def record_invocation(self, region: str, endpoint: str, variant: str, *, instances: int,
                          model_latency_us: float | None, overhead_us: float, status: int) -> None:
        key = (region, endpoint, variant)
        self._add(key, "Invocations", 1)
        self._add(key, "InvocationsPerInstance", 1 / max(instances, 1))
        self._add(key, "Invocation4XXErrors", 1 if 400 <= status < 500 else 0)
        self._add(key, "Invocation5XXErrors", 1 if status >= 500 else 0)
        self._add(key, "InvocationModelErrors", 0 if status < 400 else 1)
        if model_latency_us is not None:
            self._add(key, "ModelLatency", model_latency_us)
        self._add(key, "OverheadLatency", overhead_us)

    def _add(self, key: tuple[str, str, str], metric: str, value: float) -> None:
        self._stats[(*key, metric)].add(value)

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
        stats, self._stats = self._stats, defaultdict(_Stat)
        by_region: dict[str, list[dict]] = defaultdict(list)
        for (region, endpoint, variant, metric), stat in stats.items():
            datum = {
                "MetricName": metric,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                               {"Name": "VariantName", "Value": variant}],
                "StatisticValues": {"SampleCount": stat.count, "Sum": stat.total,
                                    "Minimum": stat.low, "Maximum": stat.high},
            }
            if metric in UNITS:
                datum["Unit"] = UNITS[metric]
            else:
                datum["Unit"] = "None"
            by_region[region].append(datum)
        for region, data in by_region.items():
            moto_bridge.cloudwatch(region).put_metric_data(NAMESPACE, data)


class LogSink:
    """Writes worker output to ``/aws/sagemaker/Endpoints/<endpoint>``, stream ``<variant>/<instance>``."""

    def __init__(self, region: str, endpoint: str):
        self.region = region
        self.group = f"/aws/sagemaker/Endpoints/{endpoint}"

    def stream_for(self, variant: str, instance_id: str) -> str:
        backend = moto_bridge.logs(self.region)
        stream = f"{variant}/{instance_id}"
        if self.group not in backend.groups:
            backend.create_log_group(self.group, tags={})
        if stream not in backend.groups[self.group].streams:
            backend.create_log_stream(self.group, stream)
        return stream

    def write(self, stream: str, lines: list[str]) -> None:
        now = int(time.time() * 1000)
        backend = moto_bridge.logs(self.region)
        if self.group in backend.groups and stream in backend.groups[self.group].streams:
            backend.put_log_events(self.group, stream, [{"timestamp": now, "message": line} for line in lines])
