"""The deployment engine: turns CreateEndpoint, UpdateEndpoint, UpdateEndpointWeightsAndCapacities and
DeleteEndpoint into running fleets.

Create provisions every variant's fleet and publishes the routes once all serve. Update is blue/green,
all at once (what SageMaker does when no DeploymentConfig is given): the new fleets are provisioned while
the old ones keep serving, traffic flips in one step, then the old fleets drain and stop. If the new
fleets cannot start, the endpoint stays on its old config with a FailureReason. An update with a
DeploymentConfig (canary, linear, baking, auto-rollback) runs in guarded_deployment.py.

Failures are never silent: every task runs under ``_run``, which turns any exception into the
resource's failure transition (with a FailureReason) and a log line; no task is left unreferenced.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cached_property
from pathlib import Path
from typing import Awaitable, Callable

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.config import CONTAINER_STOP_GRACE_SECONDS, Settings
from sagemaker_emulator.controllers.faults import FaultInjector
from sagemaker_emulator.controllers.guarded_deployment import GuardedDeployment, RollingDeployment
from sagemaker_emulator.runtime import multimodel
from sagemaker_emulator.runtime.capture import capture_writer
from sagemaker_emulator.runtime.fleet import Fleet, FleetSettings, VariantFleet
from sagemaker_emulator.runtime.instance import ContainerSpec, WorkerStartError, cataloged_instance_type
from sagemaker_emulator.runtime.instance_health import HealthCheck
from sagemaker_emulator.runtime.multicontainer import MultiContainerFleet
from sagemaker_emulator.runtime.router import EndpointRoutes, Router
from sagemaker_emulator.runtime.serverless import ServerlessFleet, ServerlessLimits
from sagemaker_emulator.runtime.shadow import ShadowRoute
from sagemaker_emulator.runtime.telemetry import LogSink
from sagemaker_emulator.s3_uri import parse_s3_uri
from sagemaker_emulator.sagemaker.guardrails import DeploymentPlan, RollingPlan
from sagemaker_emulator.sagemaker.models import Endpoint, EndpointConfig, Model, SageMakerBackend, desired_variants
from sagemaker_emulator.sagemaker.shadows import copy_share, shadow_variants
from sagemaker_emulator.sagemaker.typed_requests import DesiredWeightAndCapacity, ProductionVariant

log = logging.getLogger(__name__)

Failure = Callable[[Endpoint, str], None]  # the backend's *_failed transition for the task's operation


class DeploymentController:
    """Implements the backend's ``Provisioner`` protocol for one region, and owns that region's backend."""

    def __init__(self, settings: Settings, router: Router, account_id: str, region: str, faults: FaultInjector):
        self.settings = settings
        self.router = router
        self.region = region
        self.faults = faults
        self.backend = SageMakerBackend(account_id, region, self)
        self._tasks: dict[int, asyncio.Task] = {}  # endpoint identity -> its in-flight task

    # -- Provisioner ------------------------------------------------------------------------------

    def create(self, endpoint: Endpoint, config: EndpointConfig, models: dict[str, Model]) -> None:
        self._run(endpoint, "creating", self._create(endpoint, config, models), self.backend.endpoint_create_failed)

    def update(self, endpoint: Endpoint, config: EndpointConfig, models: dict[str, Model],
               plan: DeploymentPlan | RollingPlan | None = None) -> None:
        if plan is None:
            work = self._update(endpoint, config, models)
        else:
            kind = RollingDeployment if isinstance(plan, RollingPlan) else GuardedDeployment
            work = kind(self, endpoint, config, models, plan, _close).run()
        self._run(endpoint, "updating", work, self.backend.endpoint_update_failed)

    def existing_alarms(self, names: list[str]) -> set[str]:
        return set(moto_bridge.alarm_states(self.region, names))

    def update_variants(self, endpoint: Endpoint, changes: dict[str, DesiredWeightAndCapacity]) -> None:
        self._run(endpoint, "updating the weights and capacities of", self._update_variants(endpoint, changes),
                  self.backend.endpoint_variants_update_failed)

    def delete(self, endpoint: Endpoint) -> None:
        pending = self._tasks.pop(id(endpoint), None)
        if pending is not None:
            pending.cancel()
        self._run(endpoint, "deleting", self._delete(endpoint, pending), self.backend.endpoint_delete_failed)

    def serving_counts(self, endpoint: Endpoint) -> dict[str, int]:
        """How many instances of each variant serve right now (instances die and are replaced)."""
        routes = self.router.routes.get((self.region, endpoint.name.lower()))
        if routes is None or routes.config_name != endpoint.config_name:
            return {}
        return {name: len(fleet.ready) for name, fleet in routes.fleets.items()}

    # -- running tasks ----------------------------------------------------------------------------

    def _run(self, endpoint: Endpoint, doing: str, work: Awaitable[None], fail: Failure) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(endpoint, doing, work, fail))
        self._tasks[id(endpoint)] = task
        task.add_done_callback(lambda done: self._forget(endpoint, done))

    async def _guarded(self, endpoint: Endpoint, doing: str, work: Awaitable[None], fail: Failure) -> None:
        """Run one task; any failure becomes the endpoint's FailureReason and a log line."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except WorkerStartError as error:
            log.warning("%s endpoint %s failed: %s", doing.capitalize(), endpoint.name, error.reason)
            self._report(endpoint, fail, error.reason)
        except Exception as error:  # noqa: BLE001 - whatever broke, the endpoint must not hang in progress
            log.exception("%s endpoint %s failed unexpectedly", doing.capitalize(), endpoint.name)
            self._report(endpoint, fail, f"An internal error occurred while {doing} the endpoint: "
                                         f"{type(error).__name__}: {error}. Retry the request.")

    @staticmethod
    def _report(endpoint: Endpoint, fail: Failure, reason: str) -> None:
        try:
            fail(endpoint, reason)
        except Exception:  # noqa: BLE001 - e.g. the endpoint moved on meanwhile; say so, never hide it
            log.exception("could not record the failure of endpoint %s (%s)", endpoint.name, reason)

    def _forget(self, endpoint: Endpoint, task: asyncio.Task) -> None:
        if self._tasks.get(id(endpoint)) is task:
            del self._tasks[id(endpoint)]

    # -- work -------------------------------------------------------------------------------------

    async def _create(self, endpoint: Endpoint, config: EndpointConfig, models: dict[str, Model]) -> None:
        routes = await self.provision(endpoint.name, config, models, "create")
        self.router.publish(self.region, routes)
        self.backend.endpoint_created(endpoint, desired_variants(config, models, live=True))

    async def _update(self, endpoint: Endpoint, config: EndpointConfig, models: dict[str, Model]) -> None:
        green = await self.provision(endpoint.name, config, models, "update")
        blue = self.router.withdraw(self.region, endpoint.name)
        self.router.publish(self.region, green)  # the traffic flip: one dictionary assignment
        self.backend.endpoint_updated(endpoint, config.name, desired_variants(config, models, live=True))
        if blue is not None:
            await _close(blue)

    async def _update_variants(self, endpoint: Endpoint, changes: dict[str, DesiredWeightAndCapacity]) -> None:
        """Scale variants first (new instances serve before weights move), then shift weights at once.

        If anything fails, the variants go back to the counts that served before."""
        routes = self.router.routes[(self.region, endpoint.name.lower())]
        before = {name: len(routes.fleets[name].ready) for name in changes}
        try:
            await asyncio.gather(*(routes.fleets[name].scale_to(change.desired_instance_count)
                                   for name, change in changes.items() if change.desired_instance_count is not None),
                                 *(_serverless(routes.fleets[name]).reconfigure(change.serverless_update_config)
                                   for name, change in changes.items() if change.serverless_update_config))
            self.faults.check("update_variants", self.region, endpoint.name)
        except BaseException:
            await asyncio.gather(*(routes.fleets[name].scale_to(count) for name, count in before.items()
                                   if changes[name].desired_instance_count is not None), return_exceptions=True)
            raise
        routes.weights = {**routes.weights, **{name: float(change.desired_weight) for name, change in changes.items()
                                               if change.desired_weight is not None}}
        self.backend.endpoint_variants_updated(endpoint)

    async def _delete(self, endpoint: Endpoint, pending: asyncio.Task | None) -> None:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        self.faults.check("delete", self.region, endpoint.name)
        routes = self.router.withdraw(self.region, endpoint.name)
        if routes is not None:
            await _close(routes)
        self.backend.endpoint_deleted(endpoint)

    async def provision(self, endpoint_name: str, config: EndpointConfig, models: dict[str, Model],
                         stage: str) -> EndpointRoutes:
        """Start every variant's fleet; on any failure stop them all and re-raise."""
        logs = LogSink(self.region, endpoint_name)
        fleets: dict[str, Fleet] = {}
        shadows = shadow_variants(config.spec)
        try:
            for variant in (*config.variants, *shadows):
                fleets[variant.variant_name] = self._fleet(endpoint_name, variant, models[variant.model_name], logs)
            await asyncio.gather(*(fleets[v.variant_name].scale_to(v.instance_count)
                                   for v in (*config.variants, *shadows)))
            self.faults.check(stage, self.region, endpoint_name)
        except BaseException:
            await asyncio.gather(*(fleet.close() for fleet in fleets.values()), return_exceptions=True)
            raise
        shadow = ShadowRoute(fleets.pop(shadows[0].variant_name), copy_share(config.spec)) if shadows else None
        weights = {v.variant_name: v.weight for v in config.variants}
        capture = capture_writer(endpoint_name, config.spec.data_capture_config,
                                 self.settings.scaled(self.settings.capture_flush_seconds))
        return EndpointRoutes(name=endpoint_name, config_name=config.name, fleets=fleets, weights=weights,
                              capture=capture, async_inference=config.spec.async_inference_config, shadow=shadow)

    # -- building fleets --------------------------------------------------------------------------

    def _fleet(self, endpoint_name: str, variant: ProductionVariant, model: Model, logs: LogSink) -> Fleet:
        """The fleet for one production variant: serverless, multi-container, multi-model or instances."""
        if variant.serverless_config:
            return ServerlessFleet(self._fleet_settings(endpoint_name, variant, logs, 0), self._container_spec(model),
                                   ServerlessLimits.of(variant.serverless_config), metrics=self.router.metrics,
                                   idle_seconds=self.settings.scaled(self.settings.serverless_idle_seconds))
        if len(model.containers) > 1:
            return MultiContainerFleet(model.spec.execution_mode, {
                self._container_spec(model, index).container_name: self._instance_fleet(
                    endpoint_name, variant, model, logs, index) for index in range(len(model.containers))})
        fleet = self._instance_fleet(endpoint_name, variant, model, logs)
        if model.containers[0].is_multi_model:
            return multimodel.multi_model_fleet(fleet, model.containers[0], variant.instance_type,
                                                self._presigned_url, self.router.metrics)
        return fleet

    def _instance_fleet(self, endpoint_name: str, variant: ProductionVariant, model: Model, logs: LogSink,
                        index: int = 0) -> VariantFleet:
        return VariantFleet(self._fleet_settings(endpoint_name, variant, logs, index), self._container_spec(model, index))

    def _fleet_settings(self, endpoint_name: str, variant: ProductionVariant, logs: LogSink,
                        index: int) -> FleetSettings:
        name = variant.variant_name
        return FleetSettings(
            endpoint=endpoint_name, variant=name,
            workdir=Path(self.settings.workdir) / endpoint_name / name / f"container_{index + 1}",
            logs=logs, client=self.router.client,
            startup_timeout=float(variant.container_startup_health_check_timeout_in_seconds
                                  or self.settings.startup_timeout_seconds),
            stop_grace=self.settings.scaled(CONTAINER_STOP_GRACE_SECONDS),
            instance_type=cataloged_instance_type(variant.instance_type),
            download_timeout=float(variant.model_data_download_timeout_in_seconds or 0) or None,
            health=HealthCheck.at_time_scale(self.settings.time_scale))

    def _container_spec(self, model: Model, index: int = 0) -> ContainerSpec:
        container = model.containers[index]
        s3_uri = container.model_data_url
        return ContainerSpec(
            image=container.image or "",
            environment=multimodel.container_environment(container),
            model_data_s3_uri=s3_uri,
            # A multi-model container's ModelDataUrl is a prefix: its models are loaded on demand.
            model_data_presigned_url=(self._presigned_url(s3_uri)
                                      if s3_uri and not container.is_multi_model else None),
            container_name=container.name(index),
        )

    def _presigned_url(self, s3_uri: str) -> str:
        """A pre-signed GET on the emulator's own S3: the worker downloads as the execution role would."""
        bucket, key = parse_s3_uri(s3_uri)
        return self._s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                               ExpiresIn=3600)

    @cached_property
    def _s3(self):
        import boto3
        from botocore.config import Config

        # Internal credentials for the emulator's own S3; moto accepts any key pair.
        return boto3.client("s3", endpoint_url=self.settings.url, region_name=self.region,
                            aws_access_key_id="emulator", aws_secret_access_key="emulator",
                            config=Config(s3={"addressing_style": "path"}))

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


def _serverless(fleet: Fleet) -> ServerlessFleet:
    """ServerlessUpdateConfig is validated to name serverless variants only."""
    assert isinstance(fleet, ServerlessFleet), fleet
    return fleet


async def _close(routes: EndpointRoutes) -> None:
    if routes.green is not None:  # an endpoint left serving two configs (UpdateRollbackFailed)
        await _close(routes.green)
    if routes.capture is not None:  # deliver the capture before the old fleet goes away...
        await routes.capture.flush()
    await asyncio.gather(*(fleet.close() for fleet in routes.fleets.values()),
                         *([routes.shadow.close()] if routes.shadow else ()), return_exceptions=True)
    if routes.capture is not None:  # ...and what its draining requests (and shadow copies) added
        await routes.capture.close()
