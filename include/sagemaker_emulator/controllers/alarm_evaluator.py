"""Evaluates the metric alarms stored in moto's CloudWatch, as CloudWatch does on its own.

moto stores alarms (PutMetricAlarm, DescribeAlarms, SetAlarmState) but never evaluates them. This
controller does: it reads the alarms and the datapoints through moto_bridge, computes each alarm's
state with controllers/alarm_rules.py, writes state changes back to moto (so DescribeAlarms and
DescribeAlarmsForMetric show them), keeps the history (controllers/alarm_history.py), and runs the
alarm's actions: SNS topics through moto, any other ARN through a registered action handler.

Time. moto stamps every datapoint with the real time it arrived (or the client's ``Timestamp``);
the emulator's clock runs ``time_scale`` times faster than AWS's. An alarm's ``Period`` of P AWS
seconds is therefore P / time_scale *real* seconds of datapoints: periods are consecutive real-time
intervals of that length aligned to the Unix epoch (as CloudWatch aligns one-minute periods to the
minute), and each datapoint falls in the period that holds its real timestamp. An alarm is evaluated
once each time one of its periods completes (plus a short grace for datapoints in flight), over the
last N + 2 completed periods; the in-progress period is never evaluated, as on AWS. Timestamps in
StateReason and StateReasonData are the real starts of those periods. So with time scale 20 a 60 s
alarm is evaluated every 3 real seconds, and a breaching datapoint moves it to ALARM within one
scaled period (3 s) of being published.

Cheap: each tick reads only the datapoints moto received since the last tick (moto keeps them in one
list, in arrival order), files them by (namespace, metric, exact dimension set) and drops what no
alarm can look at any more; the loop sleeps until the next period of any alarm completes.

State rules: a new alarm starts INSUFFICIENT_DATA ("Unchecked: Initial alarm creation"); updating an
alarm with PutMetricAlarm keeps its state (moto would reset it); SetAlarmState holds until the next
evaluation decides otherwise. Actions run on each state change when ActionsEnabled.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.controllers.alarm_history import AlarmHistory, HistoryItem
from sagemaker_emulator.controllers.alarm_rules import Datapoint, PeriodData, Rule, dumps, evaluate, statistic_value

log = logging.getLogger(__name__)

GRACE_SECONDS = 0.05  # datapoints stamped just before a period ends may still be on their way
IDLE_TICK_SECONDS = 0.5
MIN_RETENTION_SECONDS = 60.0
INITIAL_REASON = "Unchecked: Initial alarm creation"
REGION_NAMES = {"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)",
                "us-west-1": "US West (N. California)", "us-west-2": "US West (Oregon)",
                "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)", "eu-west-2": "EU (London)",
                "ap-southeast-1": "Asia Pacific (Singapore)", "ap-northeast-1": "Asia Pacific (Tokyo)"}


@dataclass(frozen=True)
class StateChange:
    """What an action handler receives."""

    region: str
    alarm: dict[str, Any]  # moto_bridge.metric_alarms() snapshot, after the change
    old_state: str
    new_state: str
    reason: str
    timestamp: datetime
    reason_data: str = "{}"  # StateReasonData JSON: the evaluated datapoints (a scaling policy reads them)


ActionHandler = Callable[[str, StateChange], Awaitable[None] | None]


@dataclass
class _Known:
    token: tuple
    state: str
    updated: datetime
    reason: str
    reason_data: str
    last_period: int = -1  # index of the last period evaluated


class _MetricIndex:
    """One region's datapoints, filed by metric, read incrementally from moto, and their periods.

    Periods are filed as the datapoints arrive, once per period length (and unit) some alarm asks
    for, so an evaluation reads finished periods instead of scanning the datapoints again, and
    alarms on the same metric share them.
    """

    def __init__(self) -> None:
        self.cursor = 0
        self.series: dict[tuple, deque] = {}
        # series key -> {(period length, unit or None): {period index: PeriodData}}
        self._views: dict[tuple, dict[tuple[float, str | None], dict[int, PeriodData]]] = {}

    def ingest(self, region: str) -> None:
        data, self.cursor = moto_bridge.metric_data_since(region, self.cursor)
        for namespace, name, dims, stamp, values, unit in data:
            key, entry = (namespace, name, dims), (stamp.timestamp(), values, unit)
            self.series.setdefault(key, deque()).append(entry)
            for (length, only_unit), buckets in self._views.get(key, {}).items():
                _file(buckets, entry, length, only_unit)

    def prune(self, cutoff: float) -> None:
        for series in self.series.values():
            while series and series[0][0] < cutoff:
                series.popleft()
        for views in self._views.values():
            for (length, _), buckets in views.items():
                oldest = math.floor(cutoff / length)
                for index in [index for index in buckets if index < oldest]:
                    del buckets[index]

    def periods(self, key: tuple, first: int, last: int, length: float, unit: str | None) -> dict[int, PeriodData]:
        """The datapoints of periods ``first``..``last``; with ``unit``, only those published in it
        (an alarm with a Unit looks at that unit only; without one, at every unit, as on AWS)."""
        views = self._views.setdefault(key, {})
        buckets = views.get((length, unit))
        if buckets is None:
            buckets = views[(length, unit)] = {}
            for entry in self.series.get(key, ()):
                _file(buckets, entry, length, unit)
        return {index: buckets[index] for index in range(first, last + 1) if index in buckets}


def _file(buckets: dict[int, PeriodData], entry: tuple, length: float, only_unit: str | None) -> None:
    stamp, values, unit = entry
    if only_unit is not None and unit != only_unit:
        return
    bucket = buckets.setdefault(math.floor(stamp / length), PeriodData())
    if isinstance(values, tuple):
        bucket.add_set(*values)
    else:
        bucket.add_value(values)


class AlarmEvaluator:
    def __init__(self, time_scale: float = 1.0, regions: Callable[[], list[str]] = moto_bridge.cloudwatch_regions):
        self.time_scale = time_scale
        self.history = AlarmHistory()
        self._regions = regions
        self._known: dict[tuple[str, str], _Known] = {}
        self._indexes: dict[str, _MetricIndex] = {}
        self._handlers: dict[str, ActionHandler] = {}
        self._reported: set[tuple[str, str, tuple]] = set()
        self._task: asyncio.Task | None = None
        self._lock: asyncio.Lock | None = None  # the loop and request handlers reconcile one at a time

    # -- action handlers ------------------------------------------------------------------------

    def register_action_handler(self, arn_prefix: str, handler: ActionHandler) -> None:
        """Run ``handler(action_arn, change)`` for alarm actions whose ARN starts with ``arn_prefix``
        (e.g. Application Auto Scaling policy ARNs). SNS topics are handled here already."""
        self._handlers[arn_prefix] = handler

    def _handler_for(self, arn: str) -> ActionHandler | None:
        return next((h for prefix, h in self._handlers.items() if arn.startswith(prefix)), None)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._lock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                delay = await self.tick(time.time())
            except Exception:  # an evaluation hiccup must not stop every later evaluation; say so loudly
                log.exception("evaluating CloudWatch alarms failed")
                delay = IDLE_TICK_SECONDS
            await asyncio.sleep(delay)

    # -- evaluation -----------------------------------------------------------------------------

    async def reconcile(self, region: str) -> None:
        """Take in alarm writes at once (called after moto answered PutMetricAlarm, SetAlarmState...)."""
        async with self._guard():
            await self.sync(region)

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def tick(self, now: float) -> float:
        """Evaluate every alarm whose period completed; return the seconds until the next one does."""
        async with self._guard():
            return await self._tick(now)

    async def _tick(self, now: float) -> float:
        next_due = now + IDLE_TICK_SECONDS
        for region in self._regions():
            alarms = await self.sync(region)
            if not alarms:
                continue
            index = self._indexes.setdefault(region, _MetricIndex())
            index.ingest(region)
            retention = MIN_RETENTION_SECONDS
            for alarm in alarms:
                length, rule = self.period_seconds(alarm), Rule(**_rule_fields(alarm))
                retention = max(retention, length * (rule.range_periods + 1))
                completed = math.floor((now - GRACE_SECONDS) / length) - 1
                known = self._known[(region, alarm["name"])]
                if completed > known.last_period:
                    known.last_period = completed
                    try:
                        await self._evaluate(region, alarm, rule, index, completed, length, now)
                    except Exception:  # one alarm we cannot evaluate must not stop the others
                        if (region, alarm["name"], alarm["token"]) not in self._reported:  # say so once
                            self._reported.add((region, alarm["name"], alarm["token"]))
                            log.exception("alarm %s in %s cannot be evaluated", alarm["name"], region)
                next_due = min(next_due, (completed + 2) * length + GRACE_SECONDS)
            index.prune(now - retention)
        return max(0.01, next_due - now)

    def period_seconds(self, alarm: dict[str, Any]) -> float:
        return float(alarm["period"] or 60) / self.time_scale

    async def _evaluate(self, region: str, alarm: dict[str, Any], rule: Rule, index: _MetricIndex, last: int,
                        length: float, now: float) -> None:
        first = last - rule.range_periods + 1
        key = (alarm["namespace"], alarm["metric_name"], tuple(sorted(alarm["dimensions"].items())))
        buckets = index.periods(key, first, last, length, alarm["unit"])
        datapoints = [Datapoint(_utc(i * length), statistic_value(buckets.get(i), rule.statistic,
                                                                   rule.extended_statistic))
                      for i in range(first, last + 1)]
        outcome = evaluate(rule, datapoints, alarm["state_value"], _utc(now))
        if outcome.state is not None and outcome.state != alarm["state_value"]:
            await self.change_state(region, alarm, outcome.state, outcome.reason, dumps(outcome.reason_data))
        elif outcome.state == "ALARM" == alarm["state_value"] and alarm["actions_enabled"]:
            await self._still_in_alarm(region, alarm, outcome.reason, dumps(outcome.reason_data))

    async def _still_in_alarm(self, region: str, alarm: dict[str, Any], reason: str, data: str) -> None:
        """An alarm that stays in ALARM invokes its scaling policies again at each evaluation, as
        Application Auto Scaling keeps acting while the alarm holds (SNS is notified on changes only)."""
        change = StateChange(region, alarm, "ALARM", "ALARM", reason, datetime.now(timezone.utc), data)
        for arn in alarm["alarm_actions"] or []:
            if self._handler_for(arn) is None:
                continue
            try:
                await self._call_handler(arn, change)
            except Exception as error:  # as for a first action: logged, never a crash of the evaluator
                log.warning("alarm %s: action %s failed: %s", alarm["name"], arn, error)

    # -- state, history, actions ----------------------------------------------------------------

    async def sync(self, region: str) -> list[dict[str, Any]]:
        """Reconcile what moto holds with what we know: new alarms start INSUFFICIENT_DATA, updated
        ones keep their state, a SetAlarmState is recorded (and its actions run). Returns the alarms."""
        alarms = moto_bridge.metric_alarms(region)
        names = {alarm["name"] for alarm in alarms}
        for key in [key for key in self._known if key[0] == region and key[1] not in names]:
            del self._known[key]
            data = {"version": "1.0", "type": "Delete", "deletedAlarm": {"alarmName": key[1]}}
            self.history.add(region, HistoryItem(key[1], datetime.now(timezone.utc), "ConfigurationUpdate",
                                                 f'Alarm "{key[1]}" deleted', dumps(data)))
        for alarm in alarms:
            known = self._known.get((region, alarm["name"]))
            if known is None:
                self._created(region, alarm)
            elif known.token != alarm["token"]:
                self._updated(region, alarm, known)
            elif (alarm["state_value"], alarm["state_updated"]) != (known.state, known.updated):
                old = {"stateValue": known.state, "stateReason": known.reason}
                self._remember(region, alarm)
                await self._after_change(region, alarm, old, alarm["state_reason"], alarm["state_reason_data"])
        return alarms

    def _created(self, region: str, alarm: dict[str, Any]) -> None:
        now = datetime.now(timezone.utc)
        moto_bridge.restore_alarm_state(region, alarm["name"], "INSUFFICIENT_DATA", INITIAL_REASON, "{}", now)
        alarm.update(state_value="INSUFFICIENT_DATA", state_reason=INITIAL_REASON, state_reason_data="{}",
                     state_updated=now)
        self._remember(region, alarm)
        self._configuration_item(region, alarm, "Create", f'Alarm "{alarm["name"]}" created')

    def _updated(self, region: str, alarm: dict[str, Any], known: _Known) -> None:
        moto_bridge.restore_alarm_state(region, alarm["name"], known.state, known.reason, known.reason_data,
                                        known.updated)
        alarm.update(state_value=known.state, state_reason=known.reason, state_reason_data=known.reason_data,
                     state_updated=known.updated)
        self._remember(region, alarm)
        self._configuration_item(region, alarm, "Update", f'Alarm "{alarm["name"]}" updated')

    def _remember(self, region: str, alarm: dict[str, Any]) -> None:
        previous = self._known.get((region, alarm["name"]))
        self._known[(region, alarm["name"])] = _Known(
            alarm["token"], alarm["state_value"], alarm["state_updated"], alarm["state_reason"],
            alarm["state_reason_data"], previous.last_period if previous else -1)

    async def change_state(self, region: str, alarm: dict[str, Any], state: str, reason: str, data: str) -> None:
        old = {"stateValue": alarm["state_value"], "stateReason": alarm["state_reason"]}
        if not moto_bridge.set_alarm_state(region, alarm["name"], state, reason, data):
            return
        fresh = moto_bridge.metric_alarm(region, alarm["name"])
        if fresh is None:
            return
        self._remember(region, fresh)
        await self._after_change(region, fresh, old, reason, data)

    async def _after_change(self, region: str, alarm: dict[str, Any], old_state: dict[str, str], reason: str,
                            data: str) -> None:
        old, new = old_state["stateValue"], alarm["state_value"]
        stamp = alarm["state_updated"]
        history_data = {"version": "1.0", "oldState": old_state,
                        "newState": {"stateValue": new, "stateReason": reason,
                                     **({"stateReasonData": json.loads(data)} if data and data != "{}" else {})}}
        self.history.add(region, HistoryItem(alarm["name"], stamp, "StateUpdate",
                                             f"Alarm updated from {old} to {new}", dumps(history_data)))
        if old == new or not alarm["actions_enabled"]:
            return
        actions = {"ALARM": alarm["alarm_actions"], "OK": alarm["ok_actions"],
                   "INSUFFICIENT_DATA": alarm["insufficient_data_actions"]}[new]
        change = StateChange(region, alarm, old, new, reason, stamp, data)
        for arn in actions or []:
            await self._run_action(arn, change)

    async def _run_action(self, arn: str, change: StateChange) -> None:
        try:
            if arn.startswith("arn:aws:sns:"):
                moto_bridge.publish(arn, json.dumps(notification(change)), subject=notification_subject(change))
            else:
                await self._call_handler(arn, change)
        except Exception as error:  # a failed action is history, as on AWS, not a crash
            log.warning("alarm %s: action %s failed: %s", change.alarm["name"], arn, error)
            self._action_item(change, arn, "Failed", f"Failed to execute action {arn}. Received error: {error}")
            return
        self._action_item(change, arn, "Succeeded", f"Successfully executed action {arn}")

    async def _call_handler(self, arn: str, change: StateChange) -> None:
        """The registered handler of a non-SNS action ARN (a scaling policy), sync or async."""
        handler = self._handler_for(arn)
        if handler is None:
            raise LookupError(f"no handler for alarm action {arn}")
        result = handler(arn, change)
        if inspect.isawaitable(result):
            await result

    def _action_item(self, change: StateChange, arn: str, state: str, summary: str) -> None:
        data = {"actionState": state, "stateUpdateTimestamp": int(change.timestamp.timestamp() * 1000),
                "notificationResource": arn}
        self.history.add(change.region, HistoryItem(change.alarm["name"], datetime.now(timezone.utc), "Action",
                                                    summary, dumps(data)))

    def _configuration_item(self, region: str, alarm: dict[str, Any], kind: str, summary: str) -> None:
        described = {"alarmName": alarm["name"], "alarmArn": alarm["arn"], "namespace": alarm["namespace"],
                     "metricName": alarm["metric_name"], "period": alarm["period"],
                     "evaluationPeriods": alarm["evaluation_periods"], "threshold": alarm["threshold"],
                     "comparisonOperator": alarm["comparison_operator"]}
        data = {"version": "1.0", "type": kind, ("createdAlarm" if kind == "Create" else "updatedAlarm"): described}
        self.history.add(region, HistoryItem(alarm["name"], datetime.now(timezone.utc), "ConfigurationUpdate",
                                             summary, dumps(data)))


def notification(change: StateChange) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an SNS topic when an alarm changes state."""
    alarm = change.alarm
    trigger: dict[str, Any] = {
        "MetricName": alarm["metric_name"], "Namespace": alarm["namespace"],
        "StatisticType": "ExtendedStatistic" if alarm["extended_statistic"] else "Statistic",
        "Statistic": alarm["extended_statistic"] or (alarm["statistic"] or "").upper(),
        "Unit": alarm["unit"],
        "Dimensions": [{"value": value, "name": name} for name, value in alarm["dimensions"].items()],
        "Period": alarm["period"], "EvaluationPeriods": alarm["evaluation_periods"],
        "DatapointsToAlarm": alarm["datapoints_to_alarm"] or alarm["evaluation_periods"],
        "ComparisonOperator": alarm["comparison_operator"], "Threshold": alarm["threshold"],
        "TreatMissingData": alarm["treat_missing_data"] or "missing", "EvaluateLowSampleCountPercentile": "",
    }
    return {
        "AlarmName": alarm["name"], "AlarmDescription": alarm["description"],
        "AWSAccountId": moto_bridge.ACCOUNT_ID,
        "AlarmConfigurationUpdatedTimestamp": _aws_iso(alarm["configuration_updated"]),
        "NewStateValue": change.new_state, "NewStateReason": change.reason,
        "StateChangeTime": _aws_iso(change.timestamp), "Region": REGION_NAMES.get(change.region, change.region),
        "AlarmArn": alarm["arn"], "OldStateValue": change.old_state,
        "OKActions": alarm["ok_actions"] or [], "AlarmActions": alarm["alarm_actions"] or [],
        "InsufficientDataActions": alarm["insufficient_data_actions"] or [], "Trigger": trigger,
    }


def notification_subject(change: StateChange) -> str:
    region = REGION_NAMES.get(change.region, change.region)
    return f'{change.new_state}: "{change.alarm["name"]}" in {region}'[:100]


def _rule_fields(alarm: dict[str, Any]) -> dict[str, Any]:
    return {"comparison_operator": alarm["comparison_operator"], "threshold": float(alarm["threshold"]),
            "evaluation_periods": int(alarm["evaluation_periods"]),
            "datapoints_to_alarm": int(alarm["datapoints_to_alarm"]) if alarm["datapoints_to_alarm"] else None,
            "treat_missing_data": alarm["treat_missing_data"], "statistic": alarm["statistic"],
            "extended_statistic": alarm["extended_statistic"], "period": int(alarm["period"] or 60)}


def _utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, timezone.utc)


def _aws_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"

