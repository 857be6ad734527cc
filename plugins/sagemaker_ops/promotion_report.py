"""The promotion report: traffic share per fleet over time, alarm states over time, and the deployment's events.

One self-contained HTML page (PNGs inlined as base64, like :mod:`sagemaker_ops.drift_report`) and the
JSON document it is drawn from. Pure: the operator that collects the data from CloudWatch is
:class:`sagemaker_ops.operators.promotion_report.PromotionReportOperator`; matplotlib is imported
when a page is rendered.
"""

from __future__ import annotations

import html
from typing import Any

from sagemaker_ops.report_plots import draw_alarm_states, new_figure, png_base64, times

FLEET_COLORS = {"blue": "#1e88e5", "green": "#43a047"}


def traffic_shares(invocations: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per timestamp, each fleet's share of the invocations (fleet -> {iso time -> count} in, shares out)."""
    times = sorted({time for series in invocations.values() for time in series})
    shares: dict[str, dict[str, float]] = {fleet: {} for fleet in invocations}
    for time in times:
        total = sum(series.get(time, 0.0) for series in invocations.values())
        for fleet, series in invocations.items():
            shares[fleet][time] = series.get(time, 0.0) / total if total else 0.0
    return shares


def render_promotion_report(document: dict[str, Any]) -> str:
    """The HTML page of a report document (see the operator for its fields)."""
    traffic_png = _traffic_plot(document["invocations"])
    alarms_png = _alarm_plot(document["alarm_history"], document["window_start"], document["window_end"])
    outcome = document["outcome"]
    rows = "".join(f"<tr><td>{html.escape(e['time'])}</td><td>{html.escape(e['event'])}</td></tr>"
                   for e in document["events"])
    verdict = "promoted" if outcome.get("promoted") else "NOT promoted"
    css_class = "good" if outcome.get("promoted") else "bad"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Promotion of {html.escape(document['endpoint_name'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}} td{{padding:2px 8px;vertical-align:top}}
.bad{{color:#c62828}} .good{{color:#2e7d32}}</style></head><body>
<h1>Promotion of endpoint {html.escape(document['endpoint_name'])}</h1>
<p class="{css_class}"><b>{verdict}</b>: {html.escape(outcome.get('summary', ''))}</p>
<p>Blue (before): <code>{html.escape(str(document.get('blue_config')))}</code>;
green (target): <code>{html.escape(str(document.get('green_config')))}</code>;
window {html.escape(document['window_start'])} to {html.escape(document['window_end'])}.</p>
<h2>Traffic share per fleet</h2><img alt="traffic share" src="data:image/png;base64,{traffic_png}">
<h2>Alarm states</h2><img alt="alarm states" src="data:image/png;base64,{alarms_png}">
<h2>Events</h2><table>{rows}</table>
</body></html>"""


def _traffic_plot(invocations: dict[str, dict[str, float]]) -> str:
    figure = new_figure()
    axes = figure.add_subplot(1, 1, 1)
    shares = traffic_shares(invocations)
    for fleet, series in shares.items():
        if series:
            points = sorted(series.items())
            axes.step(times([t for t, _ in points]), [100 * s for _, s in points], where="post", label=fleet,
                      color=FLEET_COLORS.get(fleet))
    axes.set_ylabel("share of invocations (%)")
    axes.set_ylim(-5, 105)
    if any(shares.values()):
        axes.legend(loc="center right")
    else:
        axes.text(0.5, 0.5, "no invocations in the window", ha="center", transform=axes.transAxes)
    figure.autofmt_xdate()
    return png_base64(figure)


def _alarm_plot(history: dict[str, list[dict[str, str]]], start: str, end: str) -> str:
    figure = new_figure(height=1.0 + 0.8 * max(1, len(history)))
    draw_alarm_states(figure.add_subplot(1, 1, 1), history, start, end)
    figure.autofmt_xdate()
    return png_base64(figure)
