"""statistics.json, as Model Monitor writes it (sagemaker-api.md §4.2)."""

from __future__ import annotations

import math

from . import kll
from .profile import FRACTIONAL, INTEGRAL, STRING, UNKNOWN, ColumnProfile, DatasetProfile

# Deequ computes exact histograms for columns of at most this many distinct values
# (ColumnProfiler.DEFAULT_CARDINALITY_THRESHOLD); larger columns list their most frequent values.
CATEGORICAL_BUCKET_LIMIT = 120


def statistics_document(profile: DatasetProfile) -> dict:
    return {
        "version": 0.0,
        "dataset": {"item_count": profile.rows},
        "features": [feature_statistics(column, profile.rows) for column in profile.columns.values()],
    }


def feature_statistics(column: ColumnProfile, rows: int) -> dict:
    kind = column.inferred_type
    common = {"num_present": column.present, "num_missing": rows - column.present}
    if kind in (INTEGRAL, FRACTIONAL):
        return {"name": column.name, "inferred_type": kind, "numerical_statistics": numerical(column, common)}
    if kind == STRING:
        return {"name": column.name, "inferred_type": kind, "string_statistics": categorical(column, common)}
    # All values missing: no distribution to describe, only how much is missing.
    return {"name": column.name, "inferred_type": UNKNOWN,
            "string_statistics": {"common": common, "distinct_count": 0.0}}


def numerical(column: ColumnProfile, common: dict) -> dict:
    levels = kll.sketch_levels(column.sketch()) if column.count else []
    minimum, maximum = (column.minimum, column.maximum) if column.count else (0.0, 0.0)
    return {
        "common": common,
        "mean": column.mean if column.count else 0.0,
        "sum": float(column.total),
        "std_dev": math.sqrt(column.m2 / column.count) if column.count else 0.0,  # population, as Deequ
        "min": float(minimum),
        "max": float(maximum),
        "distribution": {"kll": {
            "buckets": kll.equal_width_buckets(kll.WeightedCdf(levels), minimum, maximum) if column.count else [],
            "sketch": {"parameters": dict(kll.SKETCH_PARAMETERS), "data": levels},
        }},
    }


def categorical(column: ColumnProfile, common: dict) -> dict:
    counts = column.value_counts or {}
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:CATEGORICAL_BUCKET_LIMIT]
    return {
        "common": common,
        "distinct_count": float(len(counts)),
        "distribution": {"categorical": {"buckets": [{"value": value, "count": count} for value, count in ranked]}},
    }
