"""CloudWatch hook: alarms written only when they differ, alarm states, metric statistics, alarm history.

The Amazon provider has no CloudWatch metrics/alarms hook (only CloudWatch Logs), so this is a thin
``AwsBaseHook`` over ``boto3.client("cloudwatch")``.
"""

from __future__ import annotations

import json
from datetime import timezone
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from sagemaker_ops.promotion import alarm_differs


class CloudWatchHook(AwsBaseHook):
    """Interact with Amazon CloudWatch metrics and alarms; thin wrapper around ``boto3.client("cloudwatch")``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "cloudwatch"
        super().__init__(*args, **kwargs)

    def describe_alarms(self, names: list[str]) -> list[dict[str, Any]]:
        """The metric alarms called ``names`` that exist (DescribeAlarms takes up to 100 names a call)."""
        alarms: list[dict[str, Any]] = []
        for start in range(0, len(names), 100):
            paginator = self.conn.get_paginator("describe_alarms")
            for page in paginator.paginate(AlarmNames=names[start:start + 100], AlarmTypes=["MetricAlarm"]):
                alarms.extend(page.get("MetricAlarms", []))
        return alarms

    def ensure_alarms(self, requests: list[dict[str, Any]]) -> dict[str, list[str]]:
        """
        Put each PutMetricAlarm request whose alarm is missing or differs; leave equal ones alone (a
        re-put would reset nothing on AWS either, but it would bump the configuration time and history).
        Returns the alarm names ``created``, ``updated`` and ``unchanged``.
        """
        existing = {alarm["AlarmName"]: alarm for alarm in self.describe_alarms([r["AlarmName"] for r in requests])}
        outcome: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
        for request in requests:
            current = existing.get(request["AlarmName"])
            if not alarm_differs(current, request):
                outcome["unchanged"].append(request["AlarmName"])
                continue
            self.conn.put_metric_alarm(**request)
            outcome["created" if current is None else "updated"].append(request["AlarmName"])
            self.log.info("%s alarm %s", "Created" if current is None else "Updated", request["AlarmName"])
        return outcome

    def alarm_history(self, name: str, start: Any, end: Any) -> list[dict[str, Any]]:
        """State changes of alarm ``name`` between ``start`` and ``end`` (oldest first)."""
        items: list[dict[str, Any]] = []
        paginator = self.conn.get_paginator("describe_alarm_history")
        for page in paginator.paginate(AlarmName=name, HistoryItemType="StateUpdate", StartDate=start, EndDate=end,
                                       ScanBy="TimestampAscending"):
            items.extend(page.get("AlarmHistoryItems", []))
        return items

    def state_changes(self, name: str, start: Any, end: Any) -> list[dict[str, str]]:
        """Alarm ``name``'s state changes in the window as ``{"time", "old_state", "new_state", "reason"}``
        (UTC ISO times, oldest first): what the reports draw."""
        changes = []
        for item in self.alarm_history(name, start, end):
            data = json.loads(item.get("HistoryData") or "{}")
            changes.append({"time": item["Timestamp"].astimezone(timezone.utc).isoformat(),
                            "old_state": data.get("oldState", {}).get("stateValue", ""),
                            "new_state": data.get("newState", {}).get("stateValue", ""),
                            "reason": data.get("newState", {}).get("stateReason", item.get("HistorySummary", ""))})
        return sorted(changes, key=lambda change: change["time"])
