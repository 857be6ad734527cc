"""Deployment guardrails: UpdateEndpoint's DeploymentConfig checked as AWS does, and turned into a plan.

A plan is the list of traffic steps of a blue/green deployment: how much of the green (new) capacity is
active, the share of traffic that gives green, and how long to bake there. The controller walks it,
checking alarms; this module decides nothing at run time.

Traffic share of green = active green capacity / (active green + active blue capacity), summed over the
variants (sagemaker-api.md §1.5). CANARY keeps all of blue active while the canary bakes; LINEAR
deactivates blue in proportion to the green capacity it turns on, so each step moves a step's share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_emulator.sagemaker.typed_requests import CapacitySize, DeploymentConfig, ProductionVariant

CANARY_MAX_PERCENT = 50
LINEAR_MIN_PERCENT, LINEAR_MAX_PERCENT = 10, 50
ROLLING_MIN_PERCENT, ROLLING_MAX_PERCENT = 5, 50


@dataclass(frozen=True)
class Step:
    green_active: int  # green instances with traffic enabled (all variants)
    green_share: float  # fraction of requests routed to green
    bake_seconds: int  # AWS seconds, before the emulator's time scale
    final: bool  # the TerminationWaitInSeconds bake, at full green capacity


@dataclass(frozen=True)
class DeploymentPlan:
    mode: str
    steps: tuple[Step, ...]
    alarms: tuple[str, ...]
    timeout_seconds: int | None  # MaximumExecutionTimeoutInSeconds, AWS seconds
    green_total: int


@dataclass(frozen=True)
class RollingPlan:
    """RollingUpdatePolicy on a single-variant endpoint: batches of new instances replace old ones."""

    variant: str
    count: int  # the new config's instance count
    batch: int  # MaximumBatchSize, in instances
    rollback_batch: int  # RollbackMaximumBatchSize, in instances (default: the whole old fleet)
    wait_seconds: int
    alarms: tuple[str, ...]
    timeout_seconds: int | None


def plan_deployment(deployment: DeploymentConfig, blue: dict[str, int | None], green: list[ProductionVariant],
                    existing_alarms: Callable[[list[str]], set[str]]) -> DeploymentPlan | RollingPlan:
    """Validate ``deployment`` for moving from the ``blue`` variants (name -> serving instance count, None
    for a serverless variant) to the ``green`` ones; the plan, or a ValidationException naming the field."""
    policy, rolling = deployment.blue_green_update_policy, deployment.rolling_update_policy
    if policy is not None and rolling is not None:
        raise ValidationException("Only one update policy should be used in DeploymentConfig: give either "
                                  "BlueGreenUpdatePolicy or RollingUpdatePolicy, not both.")
    if policy is None and rolling is None:
        raise ValidationException("DeploymentConfig must contain BlueGreenUpdatePolicy or RollingUpdatePolicy.")
    _require_same_variants(blue, green)
    if None in blue.values() or any(v.serverless_config for v in green):
        raise ValidationException(
            "DeploymentConfig is not supported for serverless endpoints: deployment guardrails apply to real-time "
            "and asynchronous endpoints only. Update the endpoint without a DeploymentConfig.")
    _require_alarms(deployment.alarm_names, existing_alarms)
    if rolling is not None:
        return _rolling_plan(deployment, blue, green)
    routing = policy.traffic_routing_configuration
    counts = {v.variant_name: v.instance_count for v in green}
    blue_total = sum(blue.values())
    steps = _traffic_steps(routing.type, routing, counts, blue_total)
    termination_wait = policy.termination_wait_in_seconds or 0
    steps.append(Step(sum(counts.values()), 1.0, termination_wait, final=True))
    _check_timeout(policy.maximum_execution_timeout_in_seconds, steps, "BlueGreenUpdatePolicy")
    return DeploymentPlan(routing.type, tuple(steps), tuple(deployment.alarm_names),
                          policy.maximum_execution_timeout_in_seconds, sum(counts.values()))


def _require_alarms(alarms: list[str], existing_alarms: Callable[[list[str]], set[str]]) -> None:
    existing = existing_alarms(alarms) if alarms else set()
    missing = [name for name in alarms if name not in existing]
    if missing:
        raise ValidationException(
            f"DeploymentConfig.AutoRollbackConfiguration.Alarms names CloudWatch alarms that do not exist: "
            f"{', '.join(missing)}. Create them with PutMetricAlarm first.")


def _rolling_plan(deployment: DeploymentConfig, blue: dict[str, int | None],
                  green: list[ProductionVariant]) -> RollingPlan:
    rolling = deployment.rolling_update_policy
    if len(green) > 1:
        raise ValidationException(
            "RollingUpdatePolicy is not supported for endpoints with more than one production variant: use "
            "BlueGreenUpdatePolicy.")
    (variant,) = green
    name, count = variant.variant_name, variant.instance_count
    batch = _resolve(rolling.maximum_batch_size, "RollingUpdatePolicy.MaximumBatchSize", name, count,
                     ROLLING_MIN_PERCENT, ROLLING_MAX_PERCENT)
    old = blue[name]
    rollback = old if rolling.rollback_maximum_batch_size is None else _resolve(
        rolling.rollback_maximum_batch_size, "RollingUpdatePolicy.RollbackMaximumBatchSize", name, old, 0, 100)
    wait = rolling.wait_interval_in_seconds or 0
    bakes = [Step(0, 0.0, wait, final=False)] * math.ceil(count / batch)
    _check_timeout(rolling.maximum_execution_timeout_in_seconds, bakes, "RollingUpdatePolicy")
    return RollingPlan(name, count, batch, min(rollback, old), wait, tuple(deployment.alarm_names),
                       rolling.maximum_execution_timeout_in_seconds)


def _require_same_variants(blue: dict[str, int | None], green: list[ProductionVariant]) -> None:
    old, new = sorted(blue), sorted(v.variant_name for v in green)
    if old != new:
        raise ValidationException(
            f"Deployment guardrails need the same production variant names in the old and the new endpoint "
            f"configuration: the endpoint has {', '.join(old)}, the new configuration has {', '.join(new)}. "
            "Rename the variants, or update without a DeploymentConfig.")


def _traffic_steps(mode: str, routing, counts: dict[str, int], blue_total: int) -> list[Step]:
    """The steps before the final bake (which every mode ends with)."""
    green_total = sum(counts.values())
    wait = routing.wait_interval_in_seconds or 0
    field = "TrafficRoutingConfiguration"
    if mode != "CANARY" and routing.canary_size is not None:
        raise ValidationException(f"{field}.CanarySize is only used with Type CANARY (Type is {mode}).")
    if mode != "LINEAR" and routing.linear_step_size is not None:
        raise ValidationException(f"{field}.LinearStepSize is only used with Type LINEAR (Type is {mode}).")
    if mode == "ALL_AT_ONCE":
        return []
    if mode == "CANARY":
        if routing.canary_size is None:
            raise ValidationException(f"{field}.CanarySize is required when Type is CANARY.")
        canary = sum(_resolve(routing.canary_size, f"{field}.CanarySize", name, count, 0, CANARY_MAX_PERCENT)
                     for name, count in counts.items())
        if canary >= green_total:  # a canary as large as the fleet is the whole fleet
            return []
        return [Step(canary, canary / (canary + blue_total), wait, final=False)]
    if routing.linear_step_size is None:
        raise ValidationException(f"{field}.LinearStepSize is required when Type is LINEAR.")
    step = sum(_resolve(routing.linear_step_size, f"{field}.LinearStepSize", name, count, LINEAR_MIN_PERCENT,
                        LINEAR_MAX_PERCENT) for name, count in counts.items())
    steps, active = [], 0
    while active < green_total:
        active = min(active + step, green_total)
        steps.append(Step(active, active / green_total, wait, final=False))
    return steps


def _resolve(size: CapacitySize, field: str, variant: str, count: int, low: int, high: int) -> int:
    """A CapacitySize as instances of one variant, checked against [low, high] percent of its count."""
    if size.type == "INSTANCE_COUNT":
        percent = 100 * size.value / count
        shown = f"{size.value} instance(s)"
    else:
        percent = size.value
        shown = f"{size.value}%"
    if not low <= percent <= high:
        bounds = f"at most {high}%" if low == 0 else f"between {low}% and {high}%"
        raise ValidationException(
            f"{field} ({shown}) must be {bounds} of the instance count of variant {variant} "
            f"({count} instance(s)); it is {percent:g}%.")
    if size.type == "INSTANCE_COUNT":
        return size.value
    return max(1, math.floor(count * size.value / 100))  # at least one instance, as AWS resolves it


def _check_timeout(timeout: int | None, steps: list[Step], policy: str) -> None:
    total_wait = sum(step.bake_seconds for step in steps)
    if timeout is not None and timeout <= total_wait:
        raise ValidationException(
            f"{policy}.MaximumExecutionTimeoutInSeconds ({timeout}) must be larger than the total "
            f"waiting time of the deployment ({total_wait} seconds over {len(steps)} baking period(s)): raise it "
            "or shorten WaitIntervalInSeconds / TerminationWaitInSeconds.")
