"""The deployment engine: turns CreateEndpoint, UpdateEndpoint and DeleteEndpoint into running fleets.

Create provisions every variant's instances and publishes the routes once all serve. Update is
blue/green, all at once (what SageMaker does when no DeploymentConfig is given): the new fleet is
provisioned while the old one keeps serving, traffic flips in one step, then the old fleet drains
and stops. If the new fleet cannot start, the endpoint stays on its old config with a FailureReason.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from functools import cached_property

from sagemaker_emulator.config import CONTAINER_STOP_GRACE_SECONDS, Settings
from sagemaker_emulator.runtime import multimodel
from sagemaker_emulator.runtime.capture import capture_writer
from sagemaker_emulator.runtime.serverless import ServerlessFleet, serverless_fleet
from sagemaker_emulator.runtime.fleet import VariantFleet
from sagemaker_emulator.runtime.instance import ContainerSpec, WorkerStartError
from sagemaker_emulator.runtime.multicontainer import MultiContainerFleet
from sagemaker_emulator.runtime.router import EndpointRoutes, Router
from sagemaker_emulator.runtime.telemetry import LogSink
from sagemaker_emulator.s3_uri import parse_s3_uri
from sagemaker_emulator.sagemaker.models import Endpoint, EndpointConfig, Model, SageMakerBackend, desired_variants

log = logging.getLogger(__name__)


class DeploymentController:
    """Implements the backend's ``Provisioner`` protocol for one region."""

    def __init__(self, settings: Settings, router: Router, region: str):
        self.settings = settings
        self.router = router
        self.region = region
        self.backend: SageMakerBackend | None = None  # set by the owner once both exist
        self._tasks: dict[int, asyncio.Task] = {}  # endpoint identity -> in-flight provisioning

    # -- Provisioner ------------------------------------------------------------------------------

    def create(self, endpoint: Endpoint, config: EndpointConfig, models: dict[str, Model]) -> None:
        self._run(endpoint, self._create(endpoint, config, models))

    def update(self, endpoint: Endpoint, config: EndpointConfig, models: dict[str, Model]) -> None:
        self._run(endpoint, self._update(endpoint, config, models))

    def delete(self, endpoint: Endpoint) -> None:
        pending = self._tasks.pop(id(endpoint), None)
        if pending is not None:
            pending.cancel()
        asyncio.get_running_loop().create_task(self._delete(endpoint, pending))

    def reweigh(self, endpoint: Endpoint, changes: dict[str, dict]) -> None:
        self._run(endpoint, self._reweigh(endpoint, changes))

    # -- work -------------------------------------------------------------------------------------

    def _run(self, endpoint: Endpoint, work) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[id(endpoint)] = task
        task.add_done_callback(lambda t: self._tasks.pop(id(endpoint), None) if self._tasks.get(id(endpoint)) is t else None)

    async def _create(self, endpoint: Endpoint, config: EndpointConfig, models: dict[str, Model]) -> None:
        try:
            routes = await self._provision(endpoint.name, config, models)
        except WorkerStartError as error:
            self.backend.endpoint_create_failed(endpoint, error.reason)
            return
        self.router.publish(self.region, routes)
        self.backend.endpoint_created(endpoint, desired_variants(config, models, live=True))

    async def _update(self, endpoint: Endpoint, config: EndpointConfig, models: dict[str, Model]) -> None:
        try:
            green = await self._provision(endpoint.name, config, models)
        except WorkerStartError as error:
            self.backend.endpoint_update_failed(endpoint, error.reason)
            return
        blue = self.router.withdraw(self.region, endpoint.name)
        self.router.publish(self.region, green)  # the traffic flip: one dictionary assignment
        self.backend.endpoint_updated(endpoint, config.name, desired_variants(config, models, live=True))
        if blue is not None:
            await _close(blue)

    async def _reweigh(self, endpoint: Endpoint, changes: dict[str, dict]) -> None:
        """Scale variants first (new instances serve before weights move), then shift weights at once."""
        routes = self.router.routes.get((self.region, endpoint.name.lower()))
        try:
            await asyncio.gather(*(routes.fleets[name].scale_to(int(change["DesiredInstanceCount"]))
                                   for name, change in changes.items() if "DesiredInstanceCount" in change),
                                 *(routes.fleets[name].reconfigure(change["ServerlessUpdateConfig"])
                                   for name, change in changes.items() if "ServerlessUpdateConfig" in change))
        except WorkerStartError as error:
            self.backend.endpoint_reweigh_failed(endpoint, error.reason)
            return
        routes.weights = {**routes.weights, **{name: float(change["DesiredWeight"])
                                               for name, change in changes.items() if "DesiredWeight" in change}}
        self.backend.endpoint_reweighed(endpoint)

    async def _delete(self, endpoint: Endpoint, pending: asyncio.Task | None) -> None:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        routes = self.router.withdraw(self.region, endpoint.name)
        if routes is not None:
            await _close(routes)
        self.backend.endpoint_deleted(endpoint)

    async def _provision(self, endpoint_name: str, config: EndpointConfig, models: dict[str, Model]) -> EndpointRoutes:
        """Start every variant's instances; on any failure stop them all and re-raise."""
        logs = LogSink(self.region, endpoint_name)
        fleets = {v["VariantName"]: self._fleet(endpoint_name, v, models[v["ModelName"]], logs)
                  for v in config.variants}
        counts = {v["VariantName"]: int(v.get("InitialInstanceCount", 1)) for v in config.variants}
        try:
            await asyncio.gather(*(fleet.scale_to(counts[name]) for name, fleet in fleets.items()))
        except BaseException:
            await asyncio.gather(*(fleet.close() for fleet in fleets.values()), return_exceptions=True)
            raise
        weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in config.variants}
        capture = capture_writer(endpoint_name, config.spec, self.settings.scaled(self.settings.capture_flush_seconds))
        return EndpointRoutes(name=endpoint_name, config_name=config.name, fleets=fleets, weights=weights,
                              capture=capture, async_inference=config.spec.get("AsyncInferenceConfig"))

    def _fleet(self, endpoint_name: str, variant: dict, model: Model,
               logs: LogSink) -> VariantFleet | MultiContainerFleet | ServerlessFleet:
        if variant.get("ServerlessConfig"):
            return serverless_fleet(self.settings, self.router.metrics, self.region, endpoint_name, variant,
                                    self._container_spec(model), logs)
        if len(model.containers) == 1:
            return self._container_fleet(endpoint_name, variant, model, logs)
        mode = (model.spec.get("InferenceExecutionConfig") or {}).get("Mode", "Serial")
        return MultiContainerFleet(mode, {
            container.get("ContainerHostname") or f"container_{index + 1}":
                self._container_fleet(endpoint_name, variant, model, logs, index)
            for index, container in enumerate(model.containers)})

    def _container_fleet(self, endpoint_name: str, variant: dict, model: Model, logs: LogSink,
                         index: int = 0) -> VariantFleet:
        spec = self._container_spec(model, index)
        fleet = VariantFleet(
            endpoint=endpoint_name, variant=variant["VariantName"], spec=spec,
            workdir=Path(self.settings.workdir) / endpoint_name / variant["VariantName"] / spec.container_name,
            logs=logs,
            startup_timeout=float(variant.get("ContainerStartupHealthCheckTimeoutInSeconds")
                                  or self.settings.startup_timeout_seconds),
            stop_grace=self.settings.scaled(CONTAINER_STOP_GRACE_SECONDS),
        )
        fleet.multi_model = multimodel.host_for(model.containers[index], variant, self._http_url)
        return fleet

    def _container_spec(self, model: Model, index: int = 0) -> ContainerSpec:
        container = model.containers[index]
        s3_uri = container.get("ModelDataUrl")
        return ContainerSpec(
            image=container.get("Image", ""),
            environment=multimodel.container_environment(container),
            model_data_s3_uri=s3_uri,
            # A multi-model container's ModelDataUrl is a prefix: its models are loaded on demand.
            model_data_url=self._http_url(s3_uri) if s3_uri and not multimodel.is_multi_model(container) else None,
            container_name=container.get("ContainerHostname") or f"container_{index + 1}",
        )

    def _http_url(self, s3_uri: str) -> str:
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


async def _close(routes: EndpointRoutes) -> None:
    if routes.capture is not None:  # deliver the capture before the old fleet goes away...
        await routes.capture.flush()
    await asyncio.gather(*(fleet.close() for fleet in routes.fleets.values()), return_exceptions=True)
    if routes.capture is not None:  # ...and what its draining requests added
        await routes.capture.close()
