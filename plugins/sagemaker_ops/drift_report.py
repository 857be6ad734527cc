"""The drift report: one self-contained HTML page comparing a window of captured data with its baseline.

Input is Model Monitor's own files (the baseline's ``statistics.json`` and ``constraints.json``,
the window's ``statistics.json`` and violations), so the page reads the same whether the check ran
in an Airflow task or in a processing job. One plot per feature: for a numeric feature the 10 KLL
buckets of each side rescaled to shares, beside the CDFs rebuilt from the KLL sketches (the
distance Model Monitor compares with ``comparison_threshold`` is the largest vertical gap between
them); for a string feature the share of each category. PNGs are inlined as base64: the file
opens anywhere, with nothing fetched.

Pure: matplotlib (Agg, no pyplot state) and the analyzer (``data_quality``, whose distance and
threshold arithmetic the report reuses) are imported when a report is rendered.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from sagemaker_ops.report_plots import new_figure, png_base64

DEFAULT_THRESHOLD = 0.1
BASELINE_COLOR, CURRENT_COLOR = "#5c6bc0", "#ef6c00"
MAX_CATEGORIES_SHOWN = 20


@dataclass
class FeatureDrift:
    """One feature of the report: its kind, the distance to the baseline, the threshold and the plot."""

    name: str
    kind: str  # "numeric" | "string"
    distance: float | None
    threshold: float
    method: str
    checks: list[str] = field(default_factory=list)  # violated check types
    note: str = ""
    image_png_base64: str = ""

    @property
    def drifted(self) -> bool:
        return "baseline_drift_check" in self.checks or (
            self.distance is not None and self.distance > self.threshold)


@dataclass
class DriftReport:
    html: str
    features: list[FeatureDrift]

    @property
    def drifted_features(self) -> list[str]:
        return [feature.name for feature in self.features if feature.drifted]


# -- distances ------------------------------------------------------------------------------------
# The analyzer's own arithmetic (data_quality): the report's numbers are the check's numbers.


def _shares(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {value: count / total for value, count in counts.items()} if total else {}


# -- the report -----------------------------------------------------------------------------------


def render_drift_report(*, endpoint_name: str, window_start: str, window_end: str,
                        baseline_statistics: dict[str, Any], constraints: dict[str, Any],
                        current_statistics: dict[str, Any] | None, violations: list[dict[str, Any]],
                        records: int, unparseable_records: int | None = None,
                        executions: list[dict[str, Any]] | None = None) -> DriftReport:
    """Compare each baseline feature with the window's; return the page and the per-feature figures."""
    features = feature_drifts(baseline_statistics, current_statistics or {"features": []}, constraints, violations)
    page = _page(endpoint_name, window_start, window_end, baseline_statistics, features, violations, records,
                 unparseable_records, executions or [], current_statistics is not None)
    return DriftReport(html=page, features=features)


def feature_drifts(baseline: dict[str, Any], current: dict[str, Any], constraints: dict[str, Any],
                   violations: list[dict[str, Any]]) -> list[FeatureDrift]:
    from data_quality import feature_config, statistics_distance

    constrained = {feature["name"]: feature for feature in constraints.get("features", [])}
    flagged: dict[str, list[str]] = {}
    for violation in violations:
        for name in str(violation.get("feature_name", "")).split(", "):  # missing_column_check lists several
            flagged.setdefault(name, []).append(violation.get("constraint_check_type", ""))
    current_by_name = {feature["name"]: feature for feature in current.get("features", [])}
    drifts = []
    for base in baseline.get("features", []):
        name = base["name"]
        numeric = "numerical_statistics" in base
        config = feature_config(constraints, constrained.get(name, {"name": name}))
        distribution = config["distribution_constraints"]
        threshold = float(distribution["comparison_threshold" if numeric else "categorical_comparison_threshold"])
        method = distribution.get("comparison_method", "Robust") if numeric else \
            distribution.get("categorical_drift_method", "LInfinity")
        drift = FeatureDrift(name=name, kind="numeric" if numeric else "string", distance=None, threshold=threshold,
                             method=method, checks=sorted(set(flagged.get(name, []))))
        cur = current_by_name.get(name)
        if cur is None:
            drift.note = "missing from the window's data"
        else:
            drift.distance = statistics_distance(base, cur, config)
            if drift.distance is None and base.get("inferred_type") != cur.get("inferred_type"):
                drift.note = f"baseline type {base.get('inferred_type')}, window type {cur.get('inferred_type')}"
        drift.image_png_base64 = _plot(drift, base, cur)
        drifts.append(drift)
    for name in sorted(set(current_by_name) - {feature["name"] for feature in baseline.get("features", [])}):
        drifts.append(FeatureDrift(name=name, kind="unknown", distance=None, threshold=DEFAULT_THRESHOLD,
                                   method="-", checks=sorted(set(flagged.get(name, []))),
                                   note="not in the baseline (an extra column)"))
    return drifts


# -- plots ----------------------------------------------------------------------------------------


def _plot(drift: FeatureDrift, base: dict[str, Any], cur: dict[str, Any] | None) -> str:
    if drift.kind == "numeric":
        return _numeric_plot(drift, base, cur if cur and "numerical_statistics" in cur else None)
    return _string_plot(drift, base, cur if cur and "string_statistics" in cur else None)


def _numeric_plot(drift: FeatureDrift, base: dict[str, Any], cur: dict[str, Any] | None) -> str:
    from data_quality import feature_cdf

    figure = new_figure()
    shares, cdfs = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for label, stats, color in (("baseline", base, BASELINE_COLOR), ("window", cur, CURRENT_COLOR)):
        if stats is None:
            continue
        buckets = stats["numerical_statistics"].get("distribution", {}).get("kll", {}).get("buckets") or []
        total = sum(float(bucket["count"]) for bucket in buckets) or 1.0
        for index, bucket in enumerate(buckets):
            width = max(bucket["upper_bound"] - bucket["lower_bound"], 1e-9)
            shares.bar(bucket["lower_bound"], float(bucket["count"]) / total, width=width, align="edge",
                       color=color, alpha=0.45, edgecolor=color, label=label if index == 0 else None)
        cdf = feature_cdf(stats)
        if cdf.n:
            cdfs.step(cdf.values, cdf.cumulative / cdf.n, where="post", color=color, label=label)
    figure.suptitle(drift.name, fontweight="bold")
    shares.set_title("share of rows per KLL bucket", fontsize=9)
    shares.set_ylabel("share")
    cdfs.set_title(f"CDF: {_distance_title(drift)}", fontsize=9)
    cdfs.set_ylabel("cumulative share")
    cdfs.set_ylim(0, 1.02)
    for axes in (shares, cdfs):
        axes.legend(loc="best", fontsize=8)
    return png_base64(figure)


def _string_plot(drift: FeatureDrift, base: dict[str, Any], cur: dict[str, Any] | None) -> str:
    import numpy as np
    from data_quality import category_counts

    base_shares = _shares(category_counts(base))
    cur_shares = _shares(category_counts(cur)) if cur else {}
    categories = sorted(set(base_shares) | set(cur_shares),
                        key=lambda value: -(base_shares.get(value, 0) + cur_shares.get(value, 0)))[:MAX_CATEGORIES_SHOWN]
    figure = new_figure()
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(categories))
    axes.bar(positions - 0.2, [base_shares.get(c, 0) for c in categories], width=0.4, color=BASELINE_COLOR,
             label="baseline")
    if cur:
        axes.bar(positions + 0.2, [cur_shares.get(c, 0) for c in categories], width=0.4, color=CURRENT_COLOR,
                 label="window")
    axes.set_xticks(positions, categories, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("share")
    figure.suptitle(drift.name, fontweight="bold")
    axes.set_title(f"share per category: {_distance_title(drift)}", fontsize=9)
    axes.legend(loc="best", fontsize=8)
    return png_base64(figure)


def _distance_title(drift: FeatureDrift) -> str:
    if drift.distance is None:
        return f"no distance ({drift.note or 'no data in the window'})"
    verdict = "drift" if drift.drifted else "ok"
    return f"distance {drift.distance:.3f} ({drift.method}) vs threshold {drift.threshold:g}: {verdict}"


# -- HTML -----------------------------------------------------------------------------------------


def _page(endpoint: str, start: str, end: str, baseline: dict[str, Any], features: list[FeatureDrift],
          violations: list[dict[str, Any]], records: int, unparseable: int | None,
          executions: list[dict[str, Any]], has_window_data: bool) -> str:
    e = html.escape
    drifted = [feature.name for feature in features if feature.drifted]
    summary_rows = "".join(
        f"<tr class='{'bad' if f.drifted or f.checks else 'ok'}'><td>{e(f.name)}</td><td>{e(f.kind)}</td>"
        f"<td>{'-' if f.distance is None else f'{f.distance:.4f}'}</td><td>{f.threshold:g}</td><td>{e(f.method)}</td>"
        f"<td>{e(', '.join(f.checks) or '-')}</td><td>{e(f.note)}</td></tr>" for f in features)
    violation_rows = "".join(
        f"<tr><td>{e(str(v.get('feature_name', '')))}</td><td>{e(str(v.get('constraint_check_type', '')))}</td>"
        f"<td>{e(str(v.get('description', '')))}</td></tr>" for v in violations) or \
        "<tr><td colspan='3'>no violations</td></tr>"
    execution_rows = "".join(
        f"<tr><td>{e(str(x.get('scheduled_time')))}</td><td>{e(str(x.get('status')))}</td>"
        f"<td>{e(str(x.get('violation_count')))}</td><td>{e(str(x.get('failure_reason') or ''))}</td></tr>"
        for x in executions) or "<tr><td colspan='4'>no executions yet</td></tr>"
    plots = "".join(
        f"<section class='feature'><h3>{e(f.name)}</h3>"
        + (f"<img alt='{e(f.name)} baseline versus window' src='data:image/png;base64,{f.image_png_base64}'>"
           if f.image_png_base64 else f"<p>{e(f.note)}</p>") + "</section>" for f in features)
    no_data = "" if has_window_data else "<p class='bad'>No captured requests in this window: nothing to compare.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Data drift: {e(endpoint)} {e(start)} .. {e(end)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #eee; }} tr.bad td, p.bad {{ color: #b71c1c; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>Data drift of endpoint {e(endpoint)}</h1>
<p>Window <b>{e(start)}</b> to <b>{e(end)}</b>: {records} captured records
({'-' if unparseable is None else unparseable} unparseable), against a baseline of
{baseline.get('dataset', {}).get('item_count', '?')} rows. Drifted features:
<b>{e(', '.join(drifted) or 'none')}</b>; {len(violations)} violation(s).</p>
{no_data}
<h2>Features</h2>
<table><tr><th>feature</th><th>type</th><th>distance</th><th>threshold</th><th>method</th>
<th>violated checks</th><th>note</th></tr>{summary_rows}</table>
<h2>Violations</h2>
<table><tr><th>feature</th><th>check</th><th>description</th></tr>{violation_rows}</table>
<h2>Latest executions of the monitoring schedule</h2>
<table><tr><th>scheduled</th><th>status</th><th>violations</th><th>failure reason</th></tr>{execution_rows}</table>
<h2>Baseline versus window</h2>
{plots}
</body></html>
"""
