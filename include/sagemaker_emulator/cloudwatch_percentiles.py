"""Percentiles in moto's CloudWatch metric queries (part of the moto door, installed by moto_bridge).

moto accepts ``ExtendedStatistics`` in GetMetricStatistics and a ``pNN`` ``Stat`` in GetMetricData and
ignores both (no ``ExtendedStatistics`` in the datapoints; a None value). CloudWatch computes them
from the values published: single values, and the ``Values``/``Counts`` distributions the emulator
publishes for ModelLatency (stored by moto_bridge.put_metric_data). This patch teaches moto's
``Statistics`` helper the same nearest-rank percentiles the alarm evaluator uses, so a client reading
ModelLatency p99 gets the number an alarm on p99 would see. A period whose data are statistic sets
without values has no percentile (CloudWatch cannot compute one either) and the percentile is left out.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.controllers.alarm_rules import PeriodData, statistic_value

_installed = False


def install() -> None:
    """Patch moto once per process (idempotent)."""
    global _installed
    if _installed:
        return
    from moto.cloudwatch.models import Statistics
    from moto.cloudwatch.responses import CloudWatchResponse

    plain_statistic = Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        return _percentile(self, stat) if _is_percentile(stat) else plain_statistic(self, stat)

    def extended_statistics(self: Any) -> dict[str, float] | None:
        values = {stat: _percentile(self, stat) for stat in self.stats if _is_percentile(stat)}
        values = {stat: value for stat, value in values.items() if value is not None}
        return values or None

    plain_response = CloudWatchResponse.get_metric_statistics

    def get_metric_statistics(self: Any) -> Any:
        # moto hands only Statistics to its backend; the percentiles asked for ride along with them.
        extended = self._get_param("ExtendedStatistics") or []
        if extended:
            original = self._get_param
            self._get_param = lambda name, default=None: (
                [*(original("Statistics") or []), *extended] if name == "Statistics" else original(name, default))
            try:
                return plain_response(self)
            finally:
                del self._get_param
        return plain_response(self)

    Statistics.get_statistics_for_type = get_statistics_for_type
    Statistics.extended_statistics = property(extended_statistics)
    CloudWatchResponse.get_metric_statistics = get_metric_statistics
    _installed = True


def _is_percentile(stat: str) -> bool:
    return stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit()


def _percentile(statistics: Any, stat: str) -> float | None:
    from moto.cloudwatch.models import MetricAggregatedDatum

    period = PeriodData()
    for datum in statistics.metric_data:
        if isinstance(datum, MetricAggregatedDatum):
            distribution = getattr(datum, "distribution", None)
            if distribution is None:
                return None  # a statistic set without its values: no percentile
            period.add_set(datum.sample_count, datum.sum, datum.min, datum.max, distribution)
        else:
            period.add_value(float(datum.value))
    return statistic_value(period, None, stat)
