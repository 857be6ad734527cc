"""The benchmark report: latency against throughput per configuration, cost per million inferences, the SLA
line, the choice and the reasons for it.

One self-contained HTML page (PNGs inlined as base64, as the drift, promotion and scaling reports do),
drawn from the JSON document :mod:`sagemaker_ops.benchmark_tasks` writes beside it. Pure: matplotlib
is imported when a page is rendered.
"""

from __future__ import annotations

import html
from typing import Any

from sagemaker_ops.report_plots import new_figure, png_base64

CHOSEN_COLOR, OTHER_COLORS = "#2e7d32", ("#1e88e5", "#8e24aa", "#f4511e", "#00897b", "#6d4c41", "#3949ab")


def render_benchmark_report(document: dict[str, Any]) -> str:
    """The HTML page of a benchmark document: ``pipeline``, ``candidates`` (each with ``steps``),
    ``selection`` (``option``, ``candidate``, ``reasons``), ``latency_sla_ms``, ``percentile``,
    ``safety_factor``, ``autoscaling_target``."""
    selection, percentile = document["selection"], document["percentile"].lower()
    chosen = selection.get("candidate")
    curve = _latency_plot(document["candidates"], percentile, document.get("latency_sla_ms"), chosen)
    costs = _cost_plot(document["candidates"], chosen)
    reasons = "".join(f"<li>{html.escape(reason)}</li>" for reason in selection["reasons"])
    target = document.get("autoscaling_target")
    scaling = (f"<p>Autoscaling target: <b>{target:g}</b> invocations per instance per minute (measured capacity "
               f"per instance x safety factor {document['safety_factor']:g} x 60).</p>") if target else \
        "<p>No autoscaling target: the chosen configuration does not scale by instances.</p>"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Benchmark of {html.escape(document['pipeline'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}} td,th{{padding:2px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} .chosen{{color:{CHOSEN_COLOR};font-weight:bold}}</style></head><body>
<h1>Benchmark of {html.escape(document['pipeline'])}</h1>
<p class="chosen">Choice: {html.escape(selection['option'])} on {html.escape(str(chosen))}</p>
<h2>Why</h2><ol>{reasons}</ol>
{scaling}
<h2>Latency against throughput</h2><img alt="latency against throughput" src="data:image/png;base64,{curve}">
<h2>Cost per million inferences</h2><img alt="cost per million inferences" src="data:image/png;base64,{costs}">
<h2>Measured</h2>{_table(document['candidates'], percentile, chosen)}
</body></html>"""


def _points(candidate: dict[str, Any], percentile: str) -> list[tuple[float, float]]:
    """(throughput, latency) per load step; the capacity point alone when no steps were recorded."""
    steps = [(s["throughput_rps"], s["latency_ms"].get(percentile)) for s in candidate.get("steps") or []]
    points = [(rps, latency) for rps, latency in steps if latency is not None]
    if not points and candidate["latency_ms"].get(percentile) is not None:
        points = [(candidate["max_rps"], candidate["latency_ms"][percentile])]
    return points


def _latency_plot(candidates: list[dict[str, Any]], percentile: str, sla_ms: float | None, chosen: str | None) -> str:
    figure = new_figure(height=4.0)
    axes = figure.add_subplot(1, 1, 1)
    for index, candidate in enumerate(candidates):
        points = _points(candidate, percentile)
        if not points:
            continue
        is_chosen = candidate["name"] == chosen
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                  linewidth=3 if is_chosen else 1.5,
                  color=CHOSEN_COLOR if is_chosen else OTHER_COLORS[index % len(OTHER_COLORS)],
                  label=candidate["name"] + (" (chosen)" if is_chosen else ""))
    highest = max((p[1] for c in candidates for p in _points(c, percentile)), default=1.0)
    if sla_ms is not None and sla_ms <= 3 * highest:
        axes.axhline(sla_ms, color="#c62828", linestyle="--", label=f"SLA {percentile} {sla_ms:g} ms")
        axes.set_ylim(0, max(highest, sla_ms) * 1.15)
    else:  # an SLA far above every point would flatten the curves: say where it is instead
        axes.set_ylim(0, highest * 1.3)
        if sla_ms is not None:
            axes.text(0.99, 0.97, f"SLA {percentile} {sla_ms:g} ms: above this plot, every point meets it",
                      transform=axes.transAxes, ha="right", va="top", fontsize=8, color="#c62828")
    axes.set_xlabel("throughput (requests per second, each load step)")
    axes.set_ylabel(f"{percentile} latency (ms)")
    axes.set_xlim(left=0)
    axes.legend(loc="upper left", fontsize=8)
    return png_base64(figure)


def _cost_plot(candidates: list[dict[str, Any]], chosen: str | None) -> str:
    figure = new_figure(height=0.8 + 0.5 * max(1, len(candidates)))
    axes = figure.add_subplot(1, 1, 1)
    names = [c["name"] for c in candidates]
    costs = [(c["cost_per_inference"] or 0) * 1e6 for c in candidates]
    colors = [CHOSEN_COLOR if name == chosen else "#90a4ae" for name in names]
    axes.barh(names, costs, color=colors)
    for row, cost in enumerate(costs):
        axes.annotate(f"${cost:.3g}" if cost else "not measured", (cost, row), xytext=(4, 0),
                      textcoords="offset points", va="center", fontsize=8)
    axes.set_xlim(0, max(costs + [1e-9]) * 1.15)  # room for the labels
    axes.set_xlabel("USD per million inferences at measured capacity")
    axes.invert_yaxis()
    return png_base64(figure)


def _table(candidates: list[dict[str, Any]], percentile: str, chosen: str | None) -> str:
    def money(value: float | None, scale: float = 1.0) -> str:
        return "-" if value is None else f"${value * scale:,.4g}"

    rows = []
    for c in candidates:
        latency = c["latency_ms"].get(percentile)
        cold = f"{c['cold_start_ms']:.0f}" if c.get("cold_start_ms") is not None else "-"
        rows.append(f"<tr class=\"{'chosen' if c['name'] == chosen else ''}\"><td>{html.escape(c['name'])}</td>"
                    f"<td>{c['max_rps']:.1f}</td><td>{'-' if latency is None else f'{latency:.1f}'}</td>"
                    f"<td>{100 * c['error_rate']:.2f}%</td><td>{money(c['cost_per_hour'])}</td>"
                    f"<td>{money(c['cost_per_inference'], 1e6)}</td><td>{cold}</td></tr>")
    return ("<table><tr><th>configuration</th><th>max req/s</th><th>" + html.escape(percentile) + " ms</th>"
            "<th>errors</th><th>$/hour</th><th>$/million</th><th>cold start ms</th></tr>" + "".join(rows) + "</table>")
