"""UpdateEndpoint with a DeploymentConfig: blue/green with traffic shifting, baking and auto-rollback.

The green fleets (the new config's real worker processes) start while blue serves. Then the plan's steps
(sagemaker/guardrails.py) move a share of the traffic to green in the router and bake; during every bake
the AutoRollbackConfiguration alarms are polled. An alarm in ALARM, or MaximumExecutionTimeoutInSeconds
passing, sends all traffic back to blue in one assignment, stops green, and leaves the endpoint InService
on its old config with a FailureReason saying why. Blue serves throughout and stops only after success.
RollingUpdatePolicy (``RollingDeployment``) replaces the fleet batch by batch instead of starting it whole.

Decisions where AWS is silent (README, "Deployment guardrails"): the timeout rolls back (it does not
fail the endpoint); alarms are polled every ``ALARM_POLL_SECONDS`` of real time, whatever the time scale.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING, Awaitable, Callable

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.runtime.router import EndpointRoutes
from sagemaker_emulator.sagemaker.guardrails import DeploymentPlan, RollingPlan, Step
from sagemaker_emulator.sagemaker.models import Endpoint, EndpointConfig, Model, desired_variants

if TYPE_CHECKING:
    from sagemaker_emulator.controllers.deployment import DeploymentController

log = logging.getLogger(__name__)

ALARM_POLL_SECONDS = 0.1  # real seconds: rollback starts well within a second of an alarm changing state


class RolledBack(Exception):
    """The deployment stopped on purpose; ``reason`` becomes the endpoint's FailureReason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class GuardedDeployment:
    def __init__(self, controller: DeploymentController, endpoint: Endpoint, config: EndpointConfig,
                 models: dict[str, Model], plan: DeploymentPlan,
                 close: Callable[[EndpointRoutes], Awaitable[None]]):
        self.controller = controller
        self.endpoint = endpoint
        self.config = config
        self.models = models
        self.plan = plan
        self.close = close
        self.old_config = endpoint.config_name
        self.deadline: float | None = None

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def run(self) -> None:
        settings, backend = self.controller.settings, self.controller.backend
        if self.plan.timeout_seconds is not None:
            self.deadline = self._loop.time() + settings.scaled(self.plan.timeout_seconds)
        pending = self.endpoint.pending
        pending.progress("Creating", f"Launching {self.plan.green_total} instance(s).", provisioned=False)
        try:
            green = await self._before_deadline(
                self.controller.provision(self.endpoint.name, self.config, self.models, "update"))
        except RolledBack as rollback:
            backend.endpoint_update_failed(self.endpoint, rollback.reason)
            return
        blue = self.controller.router.routes[(self.controller.region, self.endpoint.name.lower())]
        try:
            for step in self.plan.steps:
                await self._step(blue, green, step)
        except BaseException as error:
            blue.shift(None, 0.0)  # all traffic back to blue at once, whatever stopped the deployment
            await self.close(green)
            if not isinstance(error, RolledBack):
                raise
            log.warning("Deployment of endpoint %s rolled back: %s", self.endpoint.name, error.reason)
            backend.endpoint_update_failed(self.endpoint, error.reason)
            return
        self.controller.router.publish(self.controller.region, green)  # green alone, then blue stops
        blue.shift(None, 0.0)
        backend.endpoint_updated(self.endpoint, self.config.name, desired_variants(self.config, self.models, True))
        await self.close(blue)

    async def _step(self, blue: EndpointRoutes, green: EndpointRoutes, step: Step) -> None:
        pending = self.endpoint.pending
        capacity = "full capacity" if step.green_share >= 1.0 else (
            "canary capacity" if self.plan.mode == "CANARY" else "capacity")
        pending.progress("ActivatingTraffic", f"Activating traffic on {capacity} of {step.green_active} instance(s).")
        blue.shift(green, step.green_share)
        wait_name = "TerminationWaitInSeconds" if step.final else "WaitIntervalInSeconds"
        pending.progress("Baking", f"Baking for {step.bake_seconds} seconds ({wait_name}) with traffic enabled on "
                                   f"{capacity} of {step.green_active} instance(s).")
        await self._bake(self.controller.settings.scaled(step.bake_seconds))

    async def _bake(self, seconds: float) -> None:
        """Wait ``seconds`` (already scaled), polling the alarms; at least one poll even for a zero bake."""
        end = self._loop.time() + seconds
        while True:
            self._check_alarms()
            self._check_deadline()
            left = end - self._loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(ALARM_POLL_SECONDS, left))

    def _check_alarms(self) -> None:
        if not self.plan.alarms:
            return
        states = moto_bridge.alarm_states(self.controller.region, list(self.plan.alarms))
        firing = [name for name in self.plan.alarms if states.get(name) == "ALARM"]
        if firing:
            raise RolledBack(
                f"Deployment of endpoint configuration {self.config.name} was rolled back because CloudWatch "
                f"alarm(s) {', '.join(firing)} went into ALARM. All traffic is served by endpoint configuration "
                f"{self.old_config} again.")

    def _check_deadline(self) -> None:
        if self.deadline is not None and self._loop.time() >= self.deadline:
            raise RolledBack(self._timeout_reason())

    def _timeout_reason(self) -> str:
        return (f"Deployment of endpoint configuration {self.config.name} was rolled back because it exceeded "
                f"MaximumExecutionTimeoutInSeconds ({self.plan.timeout_seconds} seconds). All traffic is served by "
                f"endpoint configuration {self.old_config} again.")

    async def _before_deadline(self, work: Awaitable[EndpointRoutes]) -> EndpointRoutes:
        if self.deadline is None:
            return await work
        try:
            return await asyncio.wait_for(work, max(self.deadline - self._loop.time(), 0))
        except asyncio.TimeoutError:  # provisioning stopped its fleets on cancellation
            raise RolledBack(self._timeout_reason()) from None


class RollbackFailed(Exception):
    """A rolling rollback could not restore the old fleet: the endpoint is UpdateRollbackFailed."""


class RollingDeployment(GuardedDeployment):
    """RollingUpdatePolicy: a batch of new instances starts, takes its share of traffic and bakes, then the
    same capacity of old instances stops; repeated until the new fleet is whole. A rollback restores the
    old fleet in batches of RollbackMaximumBatchSize; if that fails, the endpoint is UpdateRollbackFailed
    with both fleets serving."""

    plan: RollingPlan

    async def run(self) -> None:
        plan, backend = self.plan, self.controller.backend
        if plan.timeout_seconds is not None:
            self.deadline = self._loop.time() + self.controller.settings.scaled(plan.timeout_seconds)
        first = copy.deepcopy(self.config)
        first.variants[0].initial_instance_count = plan.batch  # the new fleet grows batch by batch
        self.endpoint.pending.progress("Creating", f"Launching {plan.batch} instance(s).", provisioned=False)
        try:
            green = await self._before_deadline(
                self.controller.provision(self.endpoint.name, first, self.models, "update"))
        except RolledBack as rollback:
            backend.endpoint_update_failed(self.endpoint, rollback.reason)
            return
        blue = self.controller.router.routes[(self.controller.region, self.endpoint.name.lower())]
        self.blue_count = len(blue.fleets[plan.variant].ready)  # what a rollback restores
        try:
            await self._roll_forward(blue, green)
        except RolledBack as rollback:
            await self._roll_back(blue, green, rollback.reason)
            return
        except BaseException:
            blue.shift(None, 0.0)
            await self.close(green)
            raise
        self.controller.router.publish(self.controller.region, green)
        blue.shift(None, 0.0)
        backend.endpoint_updated(self.endpoint, self.config.name, desired_variants(self.config, self.models, True))
        await self.close(blue)

    async def _roll_forward(self, blue: EndpointRoutes, green: EndpointRoutes) -> None:
        plan, pending = self.plan, self.endpoint.pending
        old, new = blue.fleets[plan.variant], green.fleets[plan.variant]
        while True:
            active_new, active_old = len(new.ready), len(old.ready)
            pending.progress("ActivatingTraffic", f"Activating traffic on {active_new} instance(s).")
            blue.shift(green, active_new / (active_new + active_old))
            pending.progress("Baking", f"Baking for {plan.wait_seconds} seconds (WaitIntervalInSeconds) with "
                                       f"traffic enabled on {active_new} instance(s).")
            await self._bake(self.controller.settings.scaled(plan.wait_seconds))
            remaining_old = max(active_old - plan.batch, 0) if active_new < plan.count else 0
            blue.shift(green, active_new / (active_new + remaining_old))  # no traffic to what stops next
            await old.scale_to(remaining_old)
            if active_new >= plan.count:
                return
            adding = min(plan.batch, plan.count - active_new)
            pending.progress("Creating", f"Launching {adding} instance(s).")
            await self._before_deadline(new.scale_to(active_new + adding))

    async def _roll_back(self, blue: EndpointRoutes, green: EndpointRoutes, reason: str) -> None:
        plan, backend = self.plan, self.controller.backend
        old, new = blue.fleets[plan.variant], green.fleets[plan.variant]
        try:
            while len(old.ready) < self.blue_count:
                await old.scale_to(min(len(old.ready) + plan.rollback_batch, self.blue_count))
                self.controller.faults.check("rollback", self.controller.region, self.endpoint.name)
                blue.shift(green, len(new.ready) / (len(new.ready) + len(old.ready)))
        except Exception as error:  # noqa: BLE001 - the endpoint reports it; both fleets keep serving
            detail = getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
            log.warning("Rollback of endpoint %s failed: %s", self.endpoint.name, detail)
            backend.endpoint_rollback_failed(self.endpoint, f"{reason} The rollback failed too: {detail}. The "
                                                            "endpoint serves with both endpoint configurations.")
            return
        blue.shift(None, 0.0)
        await self.close(green)
        backend.endpoint_update_failed(self.endpoint, reason)
