"""The scaling report: instance count, load and the tracked metric with its target, the alarms' states and the
scaling activities of one variant over a window, as one self-contained HTML page (PNGs inlined as base64).

:func:`collect_scaling_report` reads the document from AWS (DescribeScalingPolicies/Activities,
GetMetricStatistics, DescribeAlarmHistory, DescribeEndpoint); :func:`render_scaling_report` draws it and
needs nothing but the document. The instance count comes from DescribeEndpoint samples when the caller
took some (the demo polls while it drives load), else from the activities ("Setting desired instance count
to N."). Metrics are summed per ``period_seconds``: 60 on AWS; on the emulator, 60 / its time scale, so that
one point is one AWS minute, the period target tracking's alarms evaluate.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from typing import Any

from sagemaker_ops.report_plots import draw_alarm_states, new_figure, png_base64, times
from sagemaker_rules.scaling_rules import INSTANCE_COUNT, SERVICE_NAMESPACE, resource_id

DESIRED_COUNT = re.compile(r"desired instance count to (\d+)")
NAMESPACE = "AWS/SageMaker"


def collect_scaling_report(sagemaker: Any, autoscaling: Any, cloudwatch: Any, endpoint_name: str, variant: str,
                           start: datetime, end: datetime, period_seconds: int = 60,
                           samples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The report's document, from the hooks of SageMaker, Application Auto Scaling and CloudWatch
    (:class:`~sagemaker_ops.hooks.sagemaker.SageMakerOpsHook`, ``ApplicationAutoScalingHook``,
    ``CloudWatchHook``). ``samples``: optional ``{"time", "desired", "current"}`` from DescribeEndpoint."""
    key = {"ServiceNamespace": SERVICE_NAMESPACE, "ResourceId": resource_id(endpoint_name, variant),
           "ScalableDimension": INSTANCE_COUNT}
    policies = list(autoscaling.describe_policies(key).values())
    tracking = next((p["TargetTrackingScalingPolicyConfiguration"] for p in policies
                     if p["PolicyType"] == "TargetTrackingScaling"), None)
    alarm_names = sorted({alarm["AlarmName"] for policy in policies for alarm in policy.get("Alarms", [])})
    activities = [_activity(item) for item in autoscaling.describe_activities(key)]
    endpoint = sagemaker.describe_or_none("endpoint", endpoint_name) or {}
    config = sagemaker.describe_or_none("endpoint_config", endpoint["EndpointConfigName"]) if endpoint else None
    deployed = next((v.get("InitialInstanceCount") for v in (config or {}).get("ProductionVariants", [])
                     if v["VariantName"] == variant), None)
    dimensions = [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant}]
    return {
        "endpoint_name": endpoint_name, "variant": variant, "period_seconds": period_seconds,
        "window_start": start.isoformat(), "window_end": end.isoformat(),
        "target": _target(tracking),
        "instance_counts": samples or _counts_from_activities(activities, endpoint, variant, start, end, deployed),
        "invocations": _sums(cloudwatch, "Invocations", dimensions, start, end, period_seconds),
        "tracked": _sums(cloudwatch, "InvocationsPerInstance", dimensions, start, end, period_seconds),
        "alarm_history": {name: cloudwatch.state_changes(name, start, end) for name in alarm_names},
        "activities": [a for a in activities if start.isoformat() <= a["start"] <= end.isoformat()],
    }


def _target(tracking: dict[str, Any] | None) -> dict[str, Any] | None:
    if tracking is None:
        return None
    metric = (tracking.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType") or \
        (tracking.get("CustomizedMetricSpecification") or {}).get("MetricName")
    return {"metric": metric, "value": float(tracking["TargetValue"])}


def _activity(item: dict[str, Any]) -> dict[str, Any]:
    end = item.get("EndTime")
    return {"start": item["StartTime"].astimezone(timezone.utc).isoformat(),
            "end": end.astimezone(timezone.utc).isoformat() if end else None,
            "status": item["StatusCode"], "description": item.get("Description", ""),
            "cause": item.get("Cause", ""), "message": item.get("StatusMessage", "")}


def _counts_from_activities(activities: list[dict[str, Any]], endpoint: dict[str, Any], variant: str,
                            start: datetime, end: datetime, deployed: int | None = None) -> list[dict[str, Any]]:
    """Desired count steps at each successful activity's start, current at its end. The count before the
    window is the last activity's before it; without one, the count deployed (``deployed``, the config's
    InitialInstanceCount) if an activity follows, else the live count (nothing scaled it)."""
    live = next((v for v in endpoint.get("ProductionVariants", []) if v["VariantName"] == variant), {})
    done = sorted((a for a in activities if a["status"] == "Successful" and DESIRED_COUNT.search(a["description"])),
                  key=lambda a: a["start"])
    counts = [(a["start"], a["end"] or a["start"], int(DESIRED_COUNT.search(a["description"]).group(1)))
              for a in done]
    before = [count for begun, _, count in counts if begun < start.isoformat()]
    initial = before[-1] if before else deployed if counts and deployed else live.get("CurrentInstanceCount")
    samples = [{"time": start.isoformat(), "desired": initial, "current": initial}]
    previous = initial
    for begun, ended, count in counts:
        if begun >= start.isoformat():
            samples.append({"time": begun, "desired": count, "current": previous})
            samples.append({"time": ended, "desired": count, "current": count})
            previous = count
    samples.append({"time": end.isoformat(), "desired": live.get("DesiredInstanceCount", previous),
                    "current": live.get("CurrentInstanceCount", previous)})
    return samples


def _sums(cloudwatch: Any, metric: str, dimensions: list[dict[str, str]], start: datetime, end: datetime,
          period: int) -> dict[str, float]:
    answer = cloudwatch.conn.get_metric_statistics(Namespace=NAMESPACE, MetricName=metric, Dimensions=dimensions,
                                                   StartTime=start, EndTime=end, Period=period, Statistics=["Sum"])
    return {point["Timestamp"].astimezone(timezone.utc).isoformat(): float(point["Sum"])
            for point in sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])}


def render_scaling_report(document: dict[str, Any]) -> str:
    """The HTML page of a report document (see :func:`collect_scaling_report` for its fields)."""
    e = html.escape
    target = document.get("target")
    rows = "".join(f"<tr><td>{e(a['start'][11:19])}</td><td>{e(a['status'])}</td><td>{e(a['description'])}</td>"
                   f"<td>{e(a['cause'])}</td><td>{e(a['message'])}</td></tr>"
                   for a in sorted(document["activities"], key=lambda a: a["start"]))
    counts = [s["current"] for s in document["instance_counts"] if s["current"] is not None]
    summary = (f"{len(document['activities'])} scaling activities; instances {min(counts, default=0)} to "
               f"{max(counts, default=0)}; {sum(document['invocations'].values()):.0f} invocations in the window")
    target_text = f"target tracking holds {e(str(target['metric']))} at {target['value']:g}" if target else \
        "no target-tracking policy"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Scaling of {e(document['endpoint_name'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} td,th{{padding:2px 8px;vertical-align:top;
text-align:left;font-size:90%}} tr:nth-child(even){{background:#f5f5f5}}</style></head><body>
<h1>Scaling of endpoint {e(document['endpoint_name'])}, variant {e(document['variant'])}</h1>
<p>{summary}; {target_text}.</p>
<p>Window {e(document['window_start'])} to {e(document['window_end'])}; metrics summed per
{document['period_seconds']} s period (one AWS minute, the period target tracking evaluates).</p>
<img alt="instances, load and tracked metric" src="data:image/png;base64,{_timeline(document)}">
<h2>Alarm states</h2><img alt="alarm states" src="data:image/png;base64,{_alarms(document)}">
<h2>Scaling activities</h2>
<table><tr><th>start (UTC)</th><th>status</th><th>description</th><th>cause</th><th>status message</th></tr>
{rows}</table>
</body></html>"""


def _timeline(document: dict[str, Any]) -> str:
    figure = new_figure(height=7.5)
    count_axes, load_axes, tracked_axes = (figure.add_subplot(3, 1, row) for row in (1, 2, 3))
    samples = document["instance_counts"]
    for key, style in (("desired", "--"), ("current", "-")):
        points = [s for s in samples if s[key] is not None]
        count_axes.step(times([s["time"] for s in points]), [s[key] for s in points], where="post",
                        linestyle=style, label=f"{key} instance count")
    count_axes.set_ylabel("instances")
    count_axes.legend(loc="upper left", fontsize=8)
    _series(load_axes, document["invocations"], "invocations per period", "#6d4c41")
    _series(tracked_axes, document["tracked"], "invocations per instance per period", "#1e88e5")
    target = document.get("target")
    if target:
        tracked_axes.axhline(target["value"], color="#c62828", linestyle="--", label=f"target {target['value']:g}")
        tracked_axes.legend(loc="upper left", fontsize=8)
    window = times([document["window_start"], document["window_end"]])
    for axes in (count_axes, load_axes, tracked_axes):
        axes.set_xlim(*window)
        for activity in document["activities"]:
            axes.axvline(datetime.fromisoformat(activity["start"]), color="#9e9e9e", linewidth=0.8, linestyle=":")
    figure.autofmt_xdate()
    return png_base64(figure)


def _series(axes: Any, series: dict[str, float], label: str, color: str) -> None:
    if series:
        axes.plot(times(list(series)), list(series.values()), marker=".", color=color)
    else:
        axes.text(0.5, 0.5, "no datapoints in the window", ha="center", transform=axes.transAxes)
    axes.set_ylabel(label, fontsize=8)


def _alarm_label(name: str) -> str:
    """Target tracking's ``TargetTracking-<resource>-AlarmHigh-<uuid>`` as ``AlarmHigh``; others as named."""
    match = re.search(r"-(Alarm(High|Low))-[0-9a-f-]+$", name)
    return f"target tracking {match.group(1)}" if match else name[-40:]


def _alarms(document: dict[str, Any]) -> str:
    history = document["alarm_history"]
    figure = new_figure(height=1.0 + 0.8 * max(1, len(history)))
    axes = figure.add_subplot(1, 1, 1)
    draw_alarm_states(axes, history, document["window_start"], document["window_end"], label=_alarm_label)
    axes.set_xlim(*times([document["window_start"], document["window_end"]]))  # aligned with the timeline
    figure.autofmt_xdate()
    return png_base64(figure)
