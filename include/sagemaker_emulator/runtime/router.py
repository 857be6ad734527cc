"""The runtime data path: ``POST /endpoints/{name}/invocations``.

Splits traffic over production variants by weight (or honours ``TargetVariant``), balances over the
variant's instances, proxies to the worker, maps container errors to ``ModelError`` and records the
endpoint metrics.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Mapping

from sagemaker_emulator.config import INVOCATION_TIMEOUT_SECONDS, MAX_PAYLOAD_BYTES, Settings
from sagemaker_emulator.moto_bridge import ACCOUNT_ID
from sagemaker_emulator.runtime.capture import CaptureWriter
from sagemaker_emulator.runtime.fleet import Fleet
from sagemaker_emulator.runtime.instance_client import InstanceClient, Invocation, model_error
from sagemaker_emulator.runtime.shadow import ShadowRoute
from sagemaker_emulator.runtime.telemetry import EndpointMetrics
from sagemaker_emulator.sagemaker.errors import (AwsError, RuntimeValidationError, ServiceUnavailable,
                                                 ThrottlingException)
from sagemaker_emulator.sagemaker.typed_requests import AsyncInferenceConfig
from sagemaker_emulator.sagemaker.unsupported import refuse_unsupported_headers

log = logging.getLogger(__name__)

# Refused before any container saw the request: not an invocation, so no metrics.
REFUSED = (RuntimeValidationError, ThrottlingException)
TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"


@dataclass
class EndpointRoutes:
    """The live routing table of one endpoint: variant fleets and their traffic weights."""

    name: str
    config_name: str
    fleets: dict[str, Fleet]
    weights: dict[str, float]
    capture: CaptureWriter | None = None  # DataCaptureConfig, when it captures
    async_inference: AsyncInferenceConfig | None = None  # InvokeEndpointAsync only
    shadow: ShadowRoute | None = None  # ShadowProductionVariants: gets a copy of a share of the requests
    # During a guarded deployment: the new config's routes and the share of requests they get.
    green: EndpointRoutes | None = None
    green_share: float = 0.0

    def serving(self) -> EndpointRoutes:
        """This endpoint's routes, or its green routes for their share of requests during a deployment."""
        green = self.green
        if green is not None and (self.green_share >= 1.0 or random.random() < self.green_share):
            return green
        return self

    def shift(self, green: EndpointRoutes | None, share: float) -> None:
        """Send ``share`` of the traffic to ``green`` (None: all traffic back here); one assignment each,
        so a request sees either the old split or the new one."""
        self.green_share = share if green is not None else 0.0
        self.green = green

    def choose_variant(self, target: str | None) -> Fleet:
        if target is not None:
            fleet = self.fleets.get(target)
            if fleet is None:
                raise RuntimeValidationError(
                    f"The variant {target} does not exist for endpoint {self.name}. "
                    f"Existing variants: {', '.join(sorted(self.fleets))}.")
            return fleet
        if len(self.weights) == 1:  # the common case needs no random draw
            ((name, weight),) = self.weights.items()
            if weight > 0:
                return self.fleets[name]
        names = [n for n, w in self.weights.items() if w > 0]
        if not names:
            raise ServiceUnavailable(f"Endpoint {self.name} has no variant with a positive weight.")
        chosen = random.choices(names, weights=[self.weights[n] for n in names])[0]
        return self.fleets[chosen]


@dataclass
class InvokeResult:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Router:
    def __init__(self, settings: Settings, metrics: EndpointMetrics):
        self.settings = settings
        self.metrics = metrics
        self.client = InstanceClient()  # every fleet talks to its workers through this one
        self.routes: dict[tuple[str, str], EndpointRoutes] = {}
        self.invocation_timeout = settings.scaled(INVOCATION_TIMEOUT_SECONDS)

    async def close(self) -> None:
        await self.client.close()

    def publish(self, region: str, routes: EndpointRoutes) -> None:
        self.routes[(region, routes.name.lower())] = routes

    def withdraw(self, region: str, name: str) -> EndpointRoutes | None:
        return self.routes.pop((region, name.lower()), None)

    def find(self, region: str, endpoint_name: str) -> EndpointRoutes:
        routes = self.routes.get((region, endpoint_name.lower()))
        # Invoking needs the exact case of the name, as on AWS.
        if routes is None or routes.name != endpoint_name:
            raise RuntimeValidationError(f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found.")
        return routes

    async def invoke(self, region: str, endpoint_name: str, headers: Mapping[str, str], body: bytes, *,
                     timeout: float | None = None, asynchronous: bool = False) -> InvokeResult:
        """``asynchronous``: called by the async queue, which enforces its own limits and metrics and gives
        the request's own ``timeout`` (InvocationTimeoutSeconds, scaled)."""
        started = time.perf_counter()
        routes = self.find(region, endpoint_name)
        refuse_unsupported_headers(headers)
        if routes.async_inference is not None and not asynchronous:
            raise RuntimeValidationError(
                f"Endpoint {endpoint_name} of account {ACCOUNT_ID} is an asynchronous inference endpoint: "
                "invoke it with InvokeEndpointAsync.")
        if len(body) > MAX_PAYLOAD_BYTES and not asynchronous:
            raise AwsError("", f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes.", status=413)
        serving = routes.serving()
        fleet = serving.choose_variant(headers.get(TARGET_VARIANT_HEADER))
        green_config = serving.config_name if serving is not routes else ""
        invocation = Invocation(headers, body, self.invocation_timeout if timeout is None else timeout)
        if serving.shadow is not None and not asynchronous and serving.shadow.draws_copy():
            serving.shadow.start(self.serve_shadow_copy(region, serving, invocation))
        try:
            answer = await fleet.serve(invocation)
        except REFUSED:
            raise
        except BaseException:  # the container failed or went away: a 5XX invocation
            self._record(region, endpoint_name, fleet, started, None, 500, asynchronous, green_config)
            raise
        self._record(region, endpoint_name, fleet, started, answer.model_latency_us, answer.status, asynchronous,
                     green_config)
        if answer.status >= 400:
            raise model_error(region, endpoint_name, answer.status, answer.body)
        out_headers = {"Content-Type": answer.headers.get("Content-Type", "application/json"),
                       "x-Amzn-Invoked-Production-Variant": fleet.variant}
        custom_attributes = answer.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if custom_attributes is not None:
            out_headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        if serving.capture is not None:
            serving.capture.record(fleet.variant, headers, body, out_headers["Content-Type"], answer.body)
        return InvokeResult(200, answer.body, out_headers)

    async def serve_shadow_copy(self, region: str, routes: EndpointRoutes, invocation: Invocation) -> None:
        """Serve a copy on the shadow fleet: counted and captured under the shadow's name, never answered."""
        fleet = routes.shadow.fleet
        headers = {k: v for k, v in invocation.headers.items() if k != TARGET_VARIANT_HEADER}
        started = time.perf_counter()
        try:
            answer = await fleet.serve(invocation.with_headers(headers))
        except REFUSED as error:
            log.info("shadow variant %s of %s refused a copy: %s", fleet.variant, routes.name, error)
            return
        except Exception as error:  # noqa: BLE001 - the shadow's failure is its 5XX metric, never the caller's
            log.info("shadow variant %s of %s failed a copy: %s", fleet.variant, routes.name, error)
            self._record(region, routes.name, fleet, started, None, 500, False)
            return
        self._record(region, routes.name, fleet, started, answer.model_latency_us, answer.status, False)
        if answer.status < 400 and routes.capture is not None:
            routes.capture.record(fleet.variant, headers, invocation.body,
                                  answer.headers.get("Content-Type", "application/json"), answer.body)

    def _record(self, region: str, endpoint_name: str, fleet: Fleet, started: float, model_latency: float | None,
                status: int, asynchronous: bool, green_config: str = "") -> None:
        if asynchronous:
            self.metrics.record_async_invocation(region, endpoint_name, fleet.variant,
                                                 model_latency_us=model_latency, status=status)
            return
        overhead_us = (time.perf_counter() - started) * 1e6 - (model_latency or 0)
        self.metrics.record_invocation(region, endpoint_name, fleet.variant, instances=len(fleet.ready),
                                       model_latency_us=model_latency, overhead_us=overhead_us, status=status)
        if green_config:  # the green fleet's invocations also count under their config's dimension
            self.metrics.record_invocation(region, endpoint_name, fleet.variant, instances=len(fleet.ready),
                                           model_latency_us=model_latency, overhead_us=overhead_us, status=status,
                                           config_name=green_config)
