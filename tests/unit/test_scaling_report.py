"""The scaling report's page: three plots and an alarm plot as inline PNGs, activities oldest first, and the
instance count rebuilt from activities when no DescribeEndpoint samples were taken."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone

from sagemaker_ops.scaling_report import _counts_from_activities, render_scaling_report

START, END = datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc), datetime(2026, 11, 30, 15, 2, tzinfo=timezone.utc)
HIGH = "TargetTracking-endpoint/iris/variant/AllTraffic-AlarmHigh-50e9da78-83aa-4f5e-8569-9fdca0a6f3c9"


def activity(minute: int, second: int, count: int, status: str = "Successful") -> dict:
    at = START.replace(minute=minute, second=second).isoformat()
    return {"start": at, "end": START.replace(minute=minute, second=second + 5).isoformat(), "status": status,
            "description": f"Setting desired instance count to {count}.", "cause": f"monitor alarm {HIGH}",
            "message": ""}


def document() -> dict:
    return {
        "endpoint_name": "iris", "variant": "AllTraffic", "period_seconds": 3,
        "window_start": START.isoformat(), "window_end": END.isoformat(),
        "target": {"metric": "SageMakerVariantInvocationsPerInstance", "value": 10.0},
        "instance_counts": _counts_from_activities([activity(1, 30, 1), activity(0, 20, 4)], {
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 1,
                                    "DesiredInstanceCount": 1}]}, "AllTraffic", START, END, deployed=1),
        "invocations": {START.replace(second=s).isoformat(): 42.0 for s in range(0, 30, 3)},
        "tracked": {START.replace(second=s).isoformat(): 42.0 / (1 if s < 25 else 4) for s in range(0, 30, 3)},
        "alarm_history": {HIGH: [{"time": START.replace(second=12).isoformat(), "old_state": "OK",
                                  "new_state": "ALARM", "reason": "3 datapoints above 10"}]},
        "activities": [activity(1, 30, 1), activity(0, 20, 4)],
    }


def test_counts_step_up_at_the_scale_out_and_down_at_the_scale_in():
    counts = [(sample["desired"], sample["current"]) for sample in document()["instance_counts"]]
    assert counts == [(1, 1), (4, 1), (4, 4), (1, 4), (1, 1), (1, 1)]


def test_the_page_inlines_its_plots_and_lists_the_activities_oldest_first():
    page = render_scaling_report(document())
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 and all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    assert "2 scaling activities; instances 1 to 4; 420 invocations in the window" in page
    assert "target tracking holds SageMakerVariantInvocationsPerInstance at 10" in page
    assert page.index("count to 4.") < page.index("count to 1.")
