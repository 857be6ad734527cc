"""Helpers shared by the autoscaling tests: steady real load, and watching an endpoint change."""

from __future__ import annotations

import json
import threading
import time

DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def resource(endpoint: str, variant: str = "AllTraffic") -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


class SteadyLoad:
    """Invokes an endpoint at a fixed rate from a thread (paced, not as fast as possible), counting
    answers and failures, until stopped."""

    def __init__(self, runtime, endpoint: str, per_second: float):
        self.runtime, self.endpoint, self.interval = runtime, endpoint, 1.0 / per_second
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "SteadyLoad":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                self.runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="application/json",
                                             Body=json.dumps({"values": [1]}))["Body"].read()
                self.ok += 1
            except Exception as error:  # noqa: BLE001 - every failure is counted and shown by the test
                self.failures.append(repr(error))
            due += self.interval
            self._stop.wait(max(0.0, due - time.monotonic()))


class EndpointWatch:
    """Polls DescribeEndpoint from a thread, remembering each distinct (status, desired, current)."""

    def __init__(self, sm, endpoint: str):
        self.sm, self.endpoint = sm, endpoint
        self.seen: list[tuple[str, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "EndpointWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            described = self.sm.describe_endpoint(EndpointName=self.endpoint)
            variant = described["ProductionVariants"][0]
            state = (described["EndpointStatus"], variant.get("DesiredInstanceCount"),
                     variant.get("CurrentInstanceCount"))
            if not self.seen or self.seen[-1] != state:
                self.seen.append(state)
            self._stop.wait(0.05)


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
