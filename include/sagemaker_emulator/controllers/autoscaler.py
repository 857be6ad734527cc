"""Application Auto Scaling for SageMaker variants: acts on the policies, alarms and scheduled actions
moto stores, on the emulator's time scale.

Triggers. The alarm evaluator runs a policy when one of its alarms enters ALARM and again at each
evaluation while it stays there (``register_action_handler``), handing over the evaluated datapoints.
A loop runs scheduled actions and the zero-traffic rule below.

Decisions (AWS's documented rules; see autoscaling/policy_math.py for the arithmetic):
- target tracking scales out to ``ceil(capacity x metric / target)`` when its AlarmHigh is in ALARM;
  it scales in only when every target tracking policy of the target agrees (each one's AlarmLow in
  ALARM), to the largest capacity they ask for; DisableScaleIn policies have no AlarmLow and no vote.
  "If a variant's traffic becomes zero, SageMaker scales in to the minimum": the emulator publishes
  no InvocationsPerInstance without traffic, so an AlarmLow on it that finds no datapoint in its whole
  window (INSUFFICIENT_DATA after evaluation) counts as a metric of 0;
- step scaling applies the step that holds ``aggregate(datapoints) - threshold``;
- cooldowns (ScaleOutCooldown / ScaleInCooldown / Cooldown, default 300 s, scaled): during a scale-out
  cooldown a new scale-out is computed from the capacity before the last one, so the capacity it added
  counts; no scale-in during a scale-in cooldown; a scale-out ends the scale-in cooldown; scheduled
  actions ignore cooldowns;
- SuspendedState: DynamicScalingOut/InSuspended stop policies, ScheduledScalingSuspended the schedules.
Each change goes through UpdateEndpointWeightsAndCapacities, as on AWS: the endpoint is Updating,
DesiredInstanceCount moves at once and CurrentInstanceCount once the instances serve; an endpoint
that is not InService is left alone and the decision is taken again at the next evaluation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.autoscaling import policy_math
from sagemaker_emulator.autoscaling.activities import (IN_PROGRESS, Activity, ActivityLog, alarm_cause,
                                                       scheduled_cause)
from sagemaker_emulator.autoscaling.schedules import EmulatedClock, Schedule, parse_schedule
from sagemaker_emulator.autoscaling.tracking import is_high_alarm
from sagemaker_emulator.autoscaling.validation import parse_resource_id
from sagemaker_emulator.config import Settings
from sagemaker_emulator.controllers.alarm_evaluator import StateChange
from sagemaker_emulator.sagemaker.errors import AwsError
from sagemaker_emulator.sagemaker.models import SageMakerBackend, Status
from sagemaker_emulator.sagemaker.typed_requests import UpdateEndpointWeightsAndCapacitiesRequest
from sagemaker_rules.scaling_rules import DEFAULT_COOLDOWN_SECONDS, PROVISIONED_CONCURRENCY

log = logging.getLogger(__name__)

TICK_SECONDS = 0.2
POLICY_ARN_PREFIX = "arn:aws:autoscaling:"
ZERO_TRAFFIC_METRIC = ("AWS/SageMaker", "InvocationsPerInstance")


@dataclass
class _Cooldowns:
    scaled_out_at: float | None = None
    before_out: int = 0
    scaled_in_at: float | None = None


@dataclass
class _Scheduled:
    token: tuple
    schedule: Schedule
    clock: EmulatedClock
    last_run: Any  # emulated datetime of the last run, or the clock's start


class Autoscaler:
    def __init__(self, settings: Settings, backend: Callable[[str], SageMakerBackend]):
        self.settings = settings
        self.backend = backend
        self.activities = ActivityLog()
        self.regions: set[str] = set()
        self._cooldowns: dict[tuple[str, str, str], _Cooldowns] = {}
        self._busy: dict[tuple[str, str, str], Activity] = {}
        self._metric: dict[tuple[str, str], float] = {}  # (region, alarm) -> last evaluated value
        self._scheduled: dict[tuple[str, str], _Scheduled] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.Task | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        for task in [self._loop, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._loop, *self._tasks] if t), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for region in list(self.regions):
                try:
                    await self.tick(region, time.time())
                except Exception:  # one bad tick must not stop scaling for good; say so loudly
                    log.exception("autoscaling tick in %s failed", region)

    async def tick(self, region: str, now: float) -> None:
        for action in moto_bridge.scheduled_actions(region):
            await self._maybe_run_scheduled(region, action, now)
        for policy in moto_bridge.scaling_policies(region):
            if policy["type"] == "TargetTrackingScaling":
                await self._zero_traffic(region, policy)

    # -- alarm actions ----------------------------------------------------------------------------

    async def on_alarm(self, arn: str, change: StateChange) -> None:
        """The alarm evaluator's action handler for scaling-policy ARNs."""
        region = change.region
        policy = next((p for p in moto_bridge.scaling_policies(region) if p["arn"] == arn), None)
        if policy is None:
            raise LookupError(f"no scaling policy {arn}")
        if change.new_state != "ALARM":
            return
        data = json.loads(change.reason_data or "{}")
        if policy["type"] == "TargetTrackingScaling":
            # The most recent period only: an alarm holding ALARM on older datapoints (nothing new was
            # published) must not scale the capacity again from them.
            latest = (data.get("evaluatedDatapoints") or [{}])[0].get("value")
            if latest is None:
                return
            self._metric[(region, change.alarm["name"])] = float(latest)
            await self._track(region, policy, change.alarm["name"], float(latest))
        else:
            await self._step(region, policy, change.alarm, data.get("recentDatapoints") or [])

    async def _track(self, region: str, policy: dict[str, Any], alarm: str, value: float) -> None:
        target = moto_bridge.scalable_target(region, policy["resource_id"], policy["dimension"])
        current = self._current(region, policy) if target else None
        if target is None or current is None:
            return
        config = policy["config"]
        cause = alarm_cause(alarm, "ALARM", policy["name"])
        if is_high_alarm(alarm):
            cooldown = self.settings.scaled(config.get("ScaleOutCooldown", DEFAULT_COOLDOWN_SECONDS))
            base = self._out_base(region, policy, current, cooldown)
            wanted = policy_math.tracking_capacity(base, value, float(config["TargetValue"]))
            await self._scale_out(region, target, current, wanted, cause)
            return
        await self._track_in(region, target, current, cause)

    async def _track_in(self, region: str, target: dict[str, Any], current: int, cause: str) -> None:
        """Scale in only when every target tracking policy with a scale-in alarm agrees; largest wins."""
        wanted = 0
        policies = self._tracking_policies(region, target)
        for policy in policies:
            low = next((name for name in policy["alarms"] if not is_high_alarm(name)), None)
            if low is None:
                continue  # DisableScaleIn: no vote
            if moto_bridge.alarm_states(region, [low]).get(low) != "ALARM" and not self._no_traffic(region, low):
                return
            value = self._metric.get((region, low), 0.0)
            wanted = max(wanted, policy_math.tracking_capacity(current, value, float(policy["config"]["TargetValue"])))
        cooldown = max((self.settings.scaled(p["config"].get("ScaleInCooldown", DEFAULT_COOLDOWN_SECONDS))
                        for p in policies), default=0.0)
        await self._scale_in(region, target, current, wanted, cause, cooldown)

    async def _zero_traffic(self, region: str, policy: dict[str, Any]) -> None:
        """An AlarmLow on InvocationsPerInstance with no datapoint in its window: traffic is zero."""
        low = next((name for name in policy["alarms"] if not is_high_alarm(name)), None)
        if low is None or not self._no_traffic(region, low):
            return
        target = moto_bridge.scalable_target(region, policy["resource_id"], policy["dimension"])
        current = self._current(region, policy) if target else None
        if target is None or current is None or current <= target["min"]:
            return
        self._metric[(region, low)] = 0.0
        await self._track_in(region, target, current, alarm_cause(low, "INSUFFICIENT_DATA", policy["name"]))

    def _no_traffic(self, region: str, alarm_name: str) -> bool:
        alarm = moto_bridge.metric_alarm(region, alarm_name)
        return (alarm is not None and (alarm["namespace"], alarm["metric_name"]) == ZERO_TRAFFIC_METRIC
                and alarm["state_value"] == "INSUFFICIENT_DATA"
                and (alarm["state_reason"] or "").startswith("Insufficient Data"))

    async def _step(self, region: str, policy: dict[str, Any], alarm: dict[str, Any], values: list) -> None:
        config = policy["config"]
        value = policy_math.aggregate(values, config.get("MetricAggregationType"))
        target = moto_bridge.scalable_target(region, policy["resource_id"], policy["dimension"])
        current = self._current(region, policy) if target else None
        if value is None or target is None or current is None:
            return
        step = policy_math.matching_step([policy_math.Step.of(s) for s in config.get("StepAdjustments", [])],
                                         value - float(alarm["threshold"]))
        if step is None:
            return
        cooldown = self.settings.scaled(config.get("Cooldown", DEFAULT_COOLDOWN_SECONDS))
        kind, magnitude = config.get("AdjustmentType", "ChangeInCapacity"), config.get("MinAdjustmentMagnitude")
        cause = alarm_cause(alarm["name"], "ALARM", policy["name"])
        if (step.adjustment > current) if kind == "ExactCapacity" else (step.adjustment > 0):
            base = self._out_base(region, policy, current, cooldown)  # what the last scale-out added counts
            wanted = policy_math.stepped_capacity(base, kind, step.adjustment, magnitude)
            await self._scale_out(region, target, current, wanted, cause)
        else:
            wanted = policy_math.stepped_capacity(current, kind, step.adjustment, magnitude)
            await self._scale_in(region, target, current, wanted, cause, cooldown)

    # -- applying decisions -----------------------------------------------------------------------

    async def _scale_out(self, region: str, target: dict[str, Any], current: int, wanted: int, cause: str) -> None:
        desired = policy_math.clamp(wanted, target["min"], target["max"])
        if desired <= current or target["suspended"].get("DynamicScalingOutSuspended"):
            return
        if await self.set_capacity(region, target, desired, cause):
            state = self._cooldown(region, target)
            state.scaled_out_at, state.before_out, state.scaled_in_at = time.time(), current, None

    async def _scale_in(self, region: str, target: dict[str, Any], current: int, wanted: int, cause: str,
                        cooldown: float) -> None:
        desired = policy_math.clamp(wanted, target["min"], target["max"])
        state = self._cooldown(region, target)
        if desired >= current or target["suspended"].get("DynamicScalingInSuspended"):
            return
        if state.scaled_in_at is not None and time.time() - state.scaled_in_at < cooldown:
            return
        if await self.set_capacity(region, target, desired, cause):
            state.scaled_in_at = time.time()

    def _out_base(self, region: str, policy: dict[str, Any], current: int, cooldown: float) -> int:
        state = self._cooldowns.get((region, policy["resource_id"], policy["dimension"]))
        if state is not None and state.scaled_out_at is not None and time.time() - state.scaled_out_at < cooldown:
            return min(current, state.before_out)
        return current

    def _cooldown(self, region: str, target: dict[str, Any]) -> _Cooldowns:
        return self._cooldowns.setdefault((region, target["resource_id"], target["dimension"]), _Cooldowns())

    async def set_capacity(self, region: str, target: dict[str, Any], desired: int, cause: str) -> bool:
        """Start changing the variant's capacity (an activity records it); False if it cannot start now."""
        key = (region, target["resource_id"], target["dimension"])
        endpoint_name, variant = parse_resource_id(target["resource_id"])
        backend = self.backend(region)
        try:
            endpoint = backend.get_endpoint(endpoint_name)
        except AwsError:
            return False
        if endpoint.status != Status.IN_SERVICE or key in self._busy:
            return False  # decided again at the next evaluation, as AWS waits out an update
        change: dict[str, Any] = {"VariantName": variant}
        if target["dimension"] == PROVISIONED_CONCURRENCY:
            change["ServerlessUpdateConfig"] = {"ProvisionedConcurrency": desired}
        else:
            change["DesiredInstanceCount"] = desired
        activity = self.activities.add(region, Activity(target["resource_id"], target["dimension"], desired, cause))
        try:
            backend.update_endpoint_weights_and_capacities(UpdateEndpointWeightsAndCapacitiesRequest.from_aws(
                {"EndpointName": endpoint_name, "DesiredWeightsAndCapacities": [change]}))
        except AwsError as error:
            activity.failed(f"{error.message} (Error Code: {error.code})")
            return False
        activity.status = IN_PROGRESS
        self._busy[key] = activity
        self._spawn(self._follow(key, endpoint, activity))
        return True

    async def _follow(self, key: tuple[str, str, str], endpoint: Any, activity: Activity) -> None:
        """The activity ends when the endpoint does: Successful once InService, else Failed with its reason.

        Cooldowns count from the end of the activity, when the new capacity serves (as an Auto Scaling
        group's do): datapoints from before it are not taken for the new capacity's."""
        try:
            while endpoint.status == Status.UPDATING:
                await asyncio.sleep(0.05)
            if endpoint.status == Status.IN_SERVICE and not endpoint.failure_reason:
                activity.succeeded()
            else:
                activity.failed(endpoint.failure_reason or f"The endpoint is {endpoint.status}.")
        finally:
            self._busy.pop(key, None)
            state = self._cooldowns.get(key)
            if state is not None and state.scaled_out_at is not None and state.scaled_out_at >= activity.started:
                state.scaled_out_at = time.time()
            if state is not None and state.scaled_in_at is not None and state.scaled_in_at >= activity.started:
                state.scaled_in_at = time.time()

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _current(self, region: str, policy_or_target: dict[str, Any]) -> int | None:
        """The variant's desired capacity now (what Application Auto Scaling reads from SageMaker)."""
        endpoint_name, variant_name = parse_resource_id(policy_or_target["resource_id"])
        try:
            endpoint = self.backend(region).get_endpoint(endpoint_name)
        except AwsError:
            return None
        variant = next((v for v in endpoint.variants if v.name == variant_name), None)
        if variant is None:
            return None
        if policy_or_target["dimension"] == PROVISIONED_CONCURRENCY:
            return int((variant.desired_serverless or {}).get("ProvisionedConcurrency") or 0)
        return variant.desired_count

    def _tracking_policies(self, region: str, target: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in moto_bridge.scaling_policies(region) if p["type"] == "TargetTrackingScaling"
                and (p["resource_id"], p["dimension"]) == (target["resource_id"], target["dimension"])]

    # -- bounds and scheduled actions --------------------------------------------------------------

    async def enforce_bounds(self, region: str, target: dict[str, Any], cause_of: Callable[[str, int], str]) -> bool:
        """Move the capacity into [min, max] (a scheduled action or a new registration); ignores cooldowns.
        False if the endpoint could not take the change now."""
        current = self._current(region, target)
        if current is None:
            return True
        if current < target["min"]:
            return await self.set_capacity(region, target, target["min"], cause_of("minimum", target["min"]))
        if current > target["max"]:
            return await self.set_capacity(region, target, target["max"], cause_of("maximum", target["max"]))
        return True

    async def _maybe_run_scheduled(self, region: str, action: dict[str, Any], now: float) -> None:
        entry = self.scheduled(region, action, now)
        moment = entry.schedule.next_after(entry.last_run, entry.clock.emulated(entry.clock.started))
        if moment is None or entry.clock.real(moment) > now:
            return
        if action["end"] is not None and moment > _aware(action["end"]):
            return
        if action["start"] is not None and moment < _aware(action["start"]):
            entry.last_run = moment  # not yet active: this run is skipped
            return
        target = moto_bridge.scalable_target(region, action["resource_id"], action["dimension"])
        if target is None or target["suspended"].get("ScheduledScalingSuspended"):
            entry.last_run = moment
            return
        bounds = action["action"]
        moto_bridge.set_target_capacity_bounds(region, target["resource_id"], target["dimension"],
                                               bounds.get("MinCapacity"), bounds.get("MaxCapacity"))
        target = moto_bridge.scalable_target(region, target["resource_id"], target["dimension"]) or target
        if await self.enforce_bounds(region, target, lambda kind, value: scheduled_cause(action["name"])):
            entry.last_run = moment  # else (endpoint updating) the run is retried at the next tick

    def scheduled(self, region: str, action: dict[str, Any], now: float) -> _Scheduled:
        """The action's schedule and clock; a changed action starts a new clock at its change."""
        token = (action["schedule"], action["timezone"], str(action["start"]), str(action["end"]))
        entry = self._scheduled.get((region, action["arn"]))
        if entry is None or entry.token != token:
            clock = EmulatedClock(now, self.settings.time_scale)
            entry = _Scheduled(token, parse_schedule(action["schedule"], action["timezone"]), clock,
                               clock.emulated(now))
            self._scheduled[(region, action["arn"])] = entry
        return entry

    def forget_schedule(self, region: str, arn: str) -> None:
        """A deleted action's clock and last run go with it: one put again under the same name (the same
        ARN, moto's has no random part) starts afresh."""
        self._scheduled.pop((region, arn), None)

    # -- endpoints going away ---------------------------------------------------------------------

    def forget_target(self, region: str, resource_id: str, dimension: str) -> None:
        """Deregistration: the target's policies (and their alarms) and scheduled actions go with it."""
        for policy in moto_bridge.scaling_policies(region):
            if (policy["resource_id"], policy["dimension"]) == (resource_id, dimension):
                moto_bridge.delete_scaling_policy(region, policy["name"], resource_id, dimension)
        for action in moto_bridge.scheduled_actions(region):
            if (action["resource_id"], action["dimension"]) == (resource_id, dimension):
                self.forget_schedule(region, action["arn"])
        moto_bridge.delete_scheduled_actions(region, resource_id, dimension)
        moto_bridge.deregister_scalable_target(region, resource_id, dimension)
        self._cooldowns.pop((region, resource_id, dimension), None)


def _aware(moment: Any) -> Any:
    """moto keeps StartTime/EndTime as the client sent them: epoch seconds or an ISO string."""
    from datetime import datetime, timezone

    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(moment, timezone.utc)
    if isinstance(moment, str):
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
