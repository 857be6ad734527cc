"""Helpers shared by the autoscaling tests: steady real load, and watching an endpoint change."""

from __future__ import annotations

import json

from sagemaker_ops.load_test.background import BackgroundCalls

DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def resource(endpoint: str, variant: str = "AllTraffic") -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


class SteadyLoad(BackgroundCalls):
    """Invokes an endpoint at a fixed rate from a thread (paced, not as fast as possible), counting
    answers and failures (``failures``: their reprs), until stopped."""

    def __init__(self, runtime, endpoint: str, per_second: float):
        super().__init__(per_second=per_second)
        self.runtime, self.endpoint = runtime, endpoint
        self.ok = 0
        self.failures = self.errors

    def call(self) -> None:
        self.runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="application/json",
                                     Body=json.dumps({"values": [1]}))["Body"].read()
        self.ok += 1

    def failed(self, error: Exception) -> None:
        self.failures.append(repr(error))


class EndpointWatch(BackgroundCalls):
    """Polls DescribeEndpoint from a thread, remembering each distinct (status, desired, current)."""

    def __init__(self, sm, endpoint: str):
        super().__init__(pause_seconds=0.05)
        self.sm, self.endpoint = sm, endpoint
        self.seen: list[tuple[str, int, int]] = []

    def call(self) -> None:
        described = self.sm.describe_endpoint(EndpointName=self.endpoint)
        variant = described["ProductionVariants"][0]
        state = (described["EndpointStatus"], variant.get("DesiredInstanceCount"),
                 variant.get("CurrentInstanceCount"))
        if not self.seen or self.seen[-1] != state:
            self.seen.append(state)


def activities(aas, endpoint: str) -> list[dict]:
    """The endpoint's scaling activities, oldest first."""
    found = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource(endpoint),
                                            ScalableDimension=DIMENSION)["ScalingActivities"]
    return list(reversed(found))


def alarm_datapoint_at_alarm(cloudwatch, alarm: str) -> float:
    """The most recent datapoint the alarm evaluated when it went to ALARM (from its history)."""
    items = cloudwatch.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    for item in items:
        data = json.loads(item["HistoryData"])
        if data["newState"]["stateValue"] == "ALARM":
            points = data["newState"]["stateReasonData"]["evaluatedDatapoints"]
            return next(p["value"] for p in points if "value" in p)
    raise AssertionError(f"{alarm} never went to ALARM")
