"""Constraint violations of a window against a baseline (sagemaker-api.md §4.4), and the distances.

Arithmetic (where AWS documents none, a consistent choice):
- data_type_check: the share of present values that can be read as the baseline type (Integral
  reads as Fractional; anything reads as String) must be at least 1 - datatype_check_threshold;
- completeness_check: the window's completeness must not be below the baseline constraint's;
- categorical_values_check: the share of values outside string_constraints.domains must not exceed
  domain_content_threshold;
- baseline_drift_check: Deequ's L-infinity distance between the CDFs (numbers, from both KLL
  sketches, items weighing 2^level) or between the category frequencies (strings), "Robust"
  subtracting 1.8 * sqrt((n + m) / (n * m)) as Deequ's linf_robust does; a violation when the
  distance exceeds comparison_threshold (categorical_comparison_threshold for strings). ChiSquared
  is not implemented: a constraints file asking for it is compared with LInfinity (logged).
- missing_column_check / extra_column_check: the window's columns against the baseline's, once each.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from . import kll
from .constraints import feature_config
from .profile import FRACTIONAL, INTEGRAL, STRING, ColumnProfile, DatasetProfile

log = logging.getLogger(__name__)
ROBUST_C_ALPHA = 1.8  # Deequ's default c(alpha), alpha ~ 0.003
VALUE_MESSAGE = "Value: {value} does not meet the constraint requirement! "


def evaluate(current: DatasetProfile, baseline_statistics: dict, baseline_constraints: dict) -> tuple[list, dict]:
    """(violations, drift distance per feature)."""
    global_config = feature_config(baseline_constraints, {})
    if global_config.get("evaluate_constraints") == "Disabled":
        return [], {}
    stats_by_name = {feature["name"]: feature for feature in baseline_statistics.get("features", [])}
    features = baseline_constraints.get("features") or [{"name": name} for name in stats_by_name]
    violations = column_set_violations([f["name"] for f in features], list(current.columns))
    distances = {}
    for feature in features:
        column = current.columns.get(feature["name"])
        if column is None:
            continue
        config = feature_config(baseline_constraints, feature)
        if config.get("evaluate_constraints") == "Disabled":
            continue
        stats = stats_by_name.get(feature["name"], {})
        violations += feature_violations(feature, column, current.rows, config)
        distance = drift_distance(stats, column, config)
        if distance is not None:
            distances[feature["name"]] = distance
            distribution = config["distribution_constraints"]
            threshold = distribution["categorical_comparison_threshold" if _is_string(stats) else "comparison_threshold"]
            if distance > float(threshold):
                violations.append(violation(feature["name"], "baseline_drift_check",
                                            f"Baseline drift distance: {distance} exceeds threshold: {threshold}"))
    return violations, distances


def violation(feature: str, check: str, description: str) -> dict:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def column_set_violations(baseline: list[str], current: list[str]) -> list[dict]:
    found = []
    missing = [name for name in baseline if name not in current]
    extra = [name for name in current if name not in baseline]
    counts = (f"Number of columns in current dataset: {len(current)}, "
              f"Number of columns in baseline constraints: {len(baseline)}")
    if missing:
        found.append(violation(", ".join(missing), "missing_column_check",
                               f"There are missing columns in current dataset. {counts}. Missing: {', '.join(missing)}"))
    if extra:
        found.append(violation(", ".join(extra), "extra_column_check",
                               f"There are extra columns in current dataset. {counts}. Extra: {', '.join(extra)}"))
    return found


def feature_violations(feature: dict, column: ColumnProfile, rows: int, config: dict) -> list[dict]:
    name, found = feature["name"], []
    expected = feature.get("inferred_type")
    if expected in (INTEGRAL, FRACTIONAL, STRING) and column.present:
        share = type_match_share(expected, column)
        required = 1.0 - float(config.get("datatype_check_threshold", 0.1))
        if share < required - 1e-12:
            found.append(violation(name, "data_type_check",
                                   f"Data type match requirement is not met. Expected data type: {expected}, "
                                   f"Expected match: {_percent(required)}. Observed: Only {_percent(share)} of data is {expected}."))
    if isinstance(feature.get("completeness"), (int, float)) and rows:
        completeness = column.present / rows
        if completeness < float(feature["completeness"]) - 1e-12:
            found.append(violation(name, "completeness_check", VALUE_MESSAGE.format(value=completeness)
                                   + f"Completeness {completeness:.4g} is below the baseline's {float(feature['completeness']):.4g}."))
    domain = (feature.get("string_constraints") or {}).get("domains")
    if isinstance(domain, list) and column.present and column.value_counts is not None:
        allowed = set(domain)
        unknown = {value: count for value, count in column.value_counts.items() if value not in allowed}
        share = sum(unknown.values()) / column.present
        threshold = float(config.get("domain_content_threshold", 0.1))
        if share > threshold:
            examples = ", ".join(repr(value) for value in sorted(unknown, key=lambda v: -unknown[v])[:3])
            found.append(violation(name, "categorical_values_check", VALUE_MESSAGE.format(value=share)
                                   + f"{share:.1%} of values are outside the baseline domain (e.g. {examples}); "
                                     f"allowed: {threshold:.1%}."))
    return found


def type_match_share(expected: str, column: ColumnProfile) -> float:
    if column.arrow_kind is not None:  # a typed column: every value has the column's type
        matches = {INTEGRAL: column.arrow_kind == INTEGRAL, FRACTIONAL: column.arrow_kind in (INTEGRAL, FRACTIONAL),
                   STRING: True}[expected]
        return 1.0 if matches else 0.0
    matching = {INTEGRAL: column.integral, FRACTIONAL: column.integral + column.fractional,
                STRING: column.present}[expected]
    return matching / column.present


# ---- distances --------------------------------------------------------------------------------

def drift_distance(stats: dict, column: ColumnProfile, config: dict) -> float | None:
    distribution = config["distribution_constraints"]
    if distribution.get("perform_comparison") == "Disabled" or not stats:
        return None
    robust = str(distribution.get("comparison_method", "Robust")).lower() in ("robust", "linf_robust")
    if _is_string(stats):
        if column.value_counts is None or not column.present:
            return None
        method = distribution.get("categorical_drift_method", "LInfinity")
        if method != "LInfinity":
            log.warning("categorical_drift_method %s is not implemented; comparing %s with LInfinity", method, stats["name"])
        baseline = category_counts(stats)
        n = float(stats["string_statistics"]["common"].get("num_present") or sum(baseline.values()))
        return categorical_distance(baseline, n, column.value_counts, column.present, robust)
    numbers = stats.get("numerical_statistics")
    if not numbers or not column.count:
        return None
    baseline_cdf = feature_cdf(stats)
    if not baseline_cdf.n:
        return None
    return numerical_distance(baseline_cdf, kll.WeightedCdf(kll.sketch_levels(column.sketch())), robust)


def statistics_distance(baseline: dict, current: dict, config: dict) -> float | None:
    """The drift distance between one feature of two statistics.json files (a report comparing runs).

    Same arithmetic as the check; the check itself uses the current window's full value counts and
    sketch, so a category beyond the 120 buckets a file keeps can make the two differ slightly."""
    robust = str(config["distribution_constraints"].get("comparison_method", "Robust")).lower() in (
        "robust", "linf_robust")
    if _is_string(baseline) and _is_string(current):
        first, second = category_counts(baseline), category_counts(current)
        if not first or not second:
            return None
        return categorical_distance(first, sum(first.values()), second, sum(second.values()), robust)
    if "numerical_statistics" in baseline and "numerical_statistics" in current:
        first, second = feature_cdf(baseline), feature_cdf(current)
        return numerical_distance(first, second, robust) if first.n and second.n else None
    return None


def feature_cdf(stats: dict) -> kll.WeightedCdf:
    """A numeric feature's distribution, rebuilt from its KLL sketch (level i items weigh 2^i)."""
    numbers = stats.get("numerical_statistics") or {}
    return kll.WeightedCdf(numbers.get("distribution", {}).get("kll", {}).get("sketch", {}).get("data") or [])


def category_counts(stats: dict) -> dict[str, float]:
    buckets = (stats.get("string_statistics") or {}).get("distribution", {}).get("categorical", {}).get("buckets") or []
    return {str(bucket["value"]): float(bucket["count"]) for bucket in buckets}


def numerical_distance(first: kll.WeightedCdf, second: kll.WeightedCdf, robust: bool) -> float:
    points = np.union1d(first.values, second.values)
    simple = float(np.max(np.abs(first.rank(points) / first.n - second.rank(points) / second.n)))
    return _robust(simple, first.n, second.n) if robust else simple


def categorical_distance(baseline: dict, n: float, current: dict, m: float, robust: bool) -> float:
    keys = set(baseline) | set(current)
    simple = max(abs(baseline.get(key, 0.0) / n - current.get(key, 0) / m) for key in keys)
    return _robust(simple, n, m) if robust else simple


def _robust(simple: float, n: float, m: float) -> float:
    return max(0.0, simple - ROBUST_C_ALPHA * math.sqrt((n + m) / (n * m)))


def _is_string(stats: dict) -> bool:
    return stats.get("inferred_type") == STRING and "string_statistics" in stats


def _percent(share: float) -> str:
    return f"{share * 100}%"  # full precision, as the prebuilt container prints it
