"""constraints.json suggested from a baseline profile (sagemaker-api.md §4.3), and the per-feature
monitoring configuration a check applies."""

from __future__ import annotations

import copy

from .profile import FRACTIONAL, INTEGRAL, STRING, ColumnProfile, DatasetProfile

# Deequ's CategoricalRangeRule: a domain is suggested for a column with a histogram (at most 120
# distinct values) in which at most 10 % of the distinct values were seen only once.
DOMAIN_MAX_DISTINCT = 120
DOMAIN_MAX_SINGLETON_RATIO = 0.1

DEFAULT_MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 0.1,
    "domain_content_threshold": 0.1,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        # The prebuilt container's suggested constraints say Robust (the docs' table allows
        # Simple | Robust); Robust suppresses drift alarms on small windows.
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}
CATEGORICAL_DRIFT_METHODS = ("LInfinity", "ChiSquared")


def constraints_document(profile: DatasetProfile, categorical_drift_method: str | None = None) -> dict:
    config = copy.deepcopy(DEFAULT_MONITORING_CONFIG)
    if categorical_drift_method:
        config["distribution_constraints"]["categorical_drift_method"] = categorical_drift_method
    return {
        "version": 0.0,
        "features": [feature_constraints(column, profile.rows) for column in profile.columns.values()],
        "monitoring_config": config,
    }


def feature_constraints(column: ColumnProfile, rows: int) -> dict:
    kind = column.inferred_type
    feature = {"name": column.name, "inferred_type": kind,
               "completeness": column.present / rows if rows else 0.0}
    if kind in (INTEGRAL, FRACTIONAL):
        feature["num_constraints"] = {"is_non_negative": bool(column.count == 0 or column.minimum >= 0)}
    elif kind == STRING:
        domain = suggested_domain(column.value_counts or {})
        if domain is not None:
            feature["string_constraints"] = {"domains": domain}
    feature["monitoringConfigOverrides"] = {}
    return feature


def suggested_domain(counts: dict) -> list[str] | None:
    if not counts or len(counts) > DOMAIN_MAX_DISTINCT:
        return None
    singletons = sum(1 for count in counts.values() if count == 1)
    if singletons / len(counts) > DOMAIN_MAX_SINGLETON_RATIO:
        return None
    return [value for value, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def feature_config(constraints: dict, feature: dict) -> dict:
    """The global monitoring_config with the feature's overrides laid over it.

    Overrides are read from `monitoringConfigOverrides` (the docs' spelling) or
    `monitoring_config_overrides` (what the SDK's Constraints.set_monitoring writes), on the feature
    or inside its num_constraints/string_constraints (older files put them there).
    """
    config = copy.deepcopy(DEFAULT_MONITORING_CONFIG)
    # A file without categorical_comparison_threshold uses its comparison_threshold for categories.
    del config["distribution_constraints"]["categorical_comparison_threshold"]
    _overlay(config, constraints.get("monitoring_config") or {})
    for holder in (feature, feature.get("num_constraints") or {}, feature.get("string_constraints") or {}):
        for key in ("monitoringConfigOverrides", "monitoring_config_overrides"):
            if isinstance(holder.get(key), dict):
                _overlay(config, holder[key])
    distribution = config["distribution_constraints"]
    distribution.setdefault("categorical_comparison_threshold", distribution.get("comparison_threshold", 0.1))
    if distribution.get("enable_comparisons") is False:  # the older spelling of perform_comparison
        distribution["perform_comparison"] = "Disabled"
    return config


def _overlay(base: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = value
