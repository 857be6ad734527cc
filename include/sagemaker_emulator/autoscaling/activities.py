"""Scaling activities (DescribeScalingActivities), worded as Application Auto Scaling words them.

moto has no scaling activities, so the emulator keeps them: per region, newest first, six weeks as
AWS keeps them (in practice as long as the emulator runs). AWS's observed strings
(endpoint-scaling-query-history.md): Description "Setting desired instance count to 48.", Cause
"monitor alarm <alarm> in state ALARM triggered policy <policy>", StatusMessage "Successfully set
desired instance count to 48. Change successfully fulfilled by sagemaker.", and for a failure
"Failed to set desired instance count to 110. Reason: <why>". For provisioned concurrency the
emulator says "provisioned concurrency" where AWS's wording for it is not published.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sagemaker_emulator.sagemaker.listing import offset_page
from sagemaker_rules.scaling_rules import INSTANCE_COUNT, PROVISIONED_CONCURRENCY

PENDING, IN_PROGRESS, SUCCESSFUL, FAILED = "Pending", "InProgress", "Successful", "Failed"
_NOUNS = {INSTANCE_COUNT: "instance count", PROVISIONED_CONCURRENCY: "provisioned concurrency"}


def capacity_noun(dimension: str) -> str:
    return _NOUNS.get(dimension, "capacity")


def alarm_cause(alarm: str, state: str, policy: str) -> str:
    return f"monitor alarm {alarm} in state {state} triggered policy {policy}"


def scheduled_cause(action: str) -> str:
    return f"scheduled action name {action} was triggered"


def bounds_cause(kind: str, value: int) -> str:
    return f"{kind} capacity was set to {value}"


@dataclass
class Activity:
    resource_id: str
    dimension: str
    desired: int
    cause: str
    status: str = PENDING
    message: str | None = None
    activity_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    ended: float | None = None

    @property
    def description(self) -> str:
        return f"Setting desired {capacity_noun(self.dimension)} to {self.desired}."

    def succeeded(self) -> None:
        noun = capacity_noun(self.dimension)
        self._end(SUCCESSFUL, f"Successfully set desired {noun} to {self.desired}. "
                              "Change successfully fulfilled by sagemaker.")

    def failed(self, reason: str) -> None:
        self._end(FAILED, f"Failed to set desired {capacity_noun(self.dimension)} to {self.desired}. "
                          f"Reason: {reason}")

    def _end(self, status: str, message: str) -> None:
        self.status, self.message, self.ended = status, message, time.time()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ActivityId": self.activity_id, "ServiceNamespace": "sagemaker", "ResourceId": self.resource_id,
            "ScalableDimension": self.dimension, "Description": self.description, "Cause": self.cause,
            "StartTime": self.started, "StatusCode": self.status,
        }
        if self.ended is not None:
            out["EndTime"] = self.ended
        if self.message:
            out["StatusMessage"] = self.message
        return out


class ActivityLog:
    def __init__(self) -> None:
        self._by_region: dict[str, list[Activity]] = {}

    def add(self, region: str, activity: Activity) -> Activity:
        self._by_region.setdefault(region, []).insert(0, activity)
        return activity

    def describe(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        """DescribeScalingActivities: filtered by ResourceId and ScalableDimension, newest first, paged."""
        found = [a for a in self._by_region.get(region, [])
                 if params.get("ResourceId") in (None, a.resource_id)
                 and params.get("ScalableDimension") in (None, a.dimension)]
        page, token = offset_page(found, params.get("NextToken"), int(params.get("MaxResults") or 50))
        return {"ScalingActivities": [a.describe() for a in page], **token}
