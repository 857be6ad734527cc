"""The runtime data path: ``POST /endpoints/{name}/invocations``.

Splits traffic over production variants by weight (or honours ``TargetVariant``), balances over the
variant's instances, proxies to the worker, maps container errors to ``ModelError`` and records the
endpoint metrics.
"""

from __future__ import annotations

import asyncio
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Mapping

import aiohttp

from sagemaker_emulator.config import INVOCATION_TIMEOUT_SECONDS, MAX_PAYLOAD_BYTES, Settings
from sagemaker_emulator.moto_bridge import ACCOUNT_ID
from sagemaker_emulator.runtime import multimodel
from sagemaker_emulator.runtime.capture import CaptureWriter
from sagemaker_emulator.runtime.fleet import VariantFleet
from sagemaker_emulator.runtime.instance import Instance
from sagemaker_emulator.runtime.multicontainer import TARGET_CONTAINER_HEADER, MultiContainerFleet
from sagemaker_emulator.runtime.serverless import ServerlessFleet
from sagemaker_emulator.runtime.telemetry import EndpointMetrics
from sagemaker_emulator.sagemaker.errors import (AwsError, InstanceLost, ModelError, RuntimeValidationError,
                                                 ServiceUnavailable)

# Request headers SageMaker forwards to the container (it strips everything not in the API).
FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes",
                     "X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-Target-Model")
# What the container sees when the caller sent no Content-Type or Accept.
DEFAULT_CONTENT_TYPE = "application/octet-stream"
DEFAULT_ACCEPT = "*/*"
WORKER_HOST = "127.0.0.1"  # workers listen on loopback (Instance.address)
# An asynchronous invocation may run for its InvocationTimeoutSeconds (up to an hour), not 60 s: the
# async queue sets this for the task that invokes rather than threading it through every call.
invocation_timeout: ContextVar[float | None] = ContextVar("invocation_timeout", default=None)


@dataclass
class EndpointRoutes:
    """The live routing table of one endpoint: variant fleets and their traffic weights."""

    name: str
    config_name: str
    fleets: dict[str, VariantFleet]
    weights: dict[str, float]
    capture: CaptureWriter | None = None  # DataCaptureConfig, when it captures
    async_inference: dict | None = None  # AsyncInferenceConfig: InvokeEndpointAsync only

    def choose_variant(self, target: str | None) -> VariantFleet:
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
        self.routes: dict[tuple[str, str], EndpointRoutes] = {}
        self._timeout = aiohttp.ClientTimeout(total=settings.scaled(INVOCATION_TIMEOUT_SECONDS))
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """Keep-alive connections to the workers, at most 64 open per instance.

        Idle connections close after 30 s, before the worker's own 75 s keep-alive limit could close
        one under a request. No default headers: the worker sees only what SageMaker forwards.
        """
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=64, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def publish(self, region: str, routes: EndpointRoutes) -> None:
        self.routes[(region, routes.name.lower())] = routes

    def withdraw(self, region: str, name: str) -> EndpointRoutes | None:
        return self.routes.pop((region, name.lower()), None)

    async def invoke(self, region: str, endpoint_name: str, headers: Mapping[str, str], body: bytes, *,
                     asynchronous: bool = False) -> InvokeResult:
        """``asynchronous``: called by the async queue, which enforces its own limits and metrics."""
        started = time.perf_counter()
        routes = self.routes.get((region, endpoint_name.lower()))
        # Invoking needs the exact case of the name, as on AWS.
        if routes is None or routes.name != endpoint_name:
            raise RuntimeValidationError(f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found.")
        if routes.async_inference is not None and not asynchronous:
            raise RuntimeValidationError(
                f"Endpoint {endpoint_name} of account {ACCOUNT_ID} is an asynchronous inference endpoint: "
                "invoke it with InvokeEndpointAsync.")
        if len(body) > MAX_PAYLOAD_BYTES and not asynchronous:
            raise AwsError("", f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes.", status=413)
        fleet = routes.choose_variant(headers.get("X-Amzn-SageMaker-Target-Variant"))
        target_model = multimodel.target_model(endpoint_name, fleet, headers)  # None unless multi-model
        if isinstance(fleet, ServerlessFleet):
            fleet.admit()  # a throttled request never reaches the model and is not an invocation
        status, model_latency, reached_model = 500, None, True
        try:
            if target_model is None:
                status, model_latency, payload, upstream_headers = await self._serve(fleet, headers, body)
            else:
                status, model_latency, payload, upstream_headers = await fleet.multi_model.invoke(
                    self, region, fleet, target_model, headers, body)
        except RuntimeValidationError:
            reached_model = False  # refused before any container saw it: not an invocation
            raise
        finally:
            if reached_model:
                self._record(region, endpoint_name, fleet, started, model_latency, status, asynchronous)
        if status >= 400:
            raise self._model_error(region, fleet, status, payload)
        out_headers = {"Content-Type": upstream_headers.get("Content-Type", "application/json"),
                       "x-Amzn-Invoked-Production-Variant": fleet.variant}
        custom_attributes = upstream_headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if custom_attributes is not None:
            out_headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        if routes.capture is not None:
            routes.capture.record(fleet.variant, headers, body, out_headers["Content-Type"], payload)
        return InvokeResult(200, payload, out_headers)

    def _record(self, region: str, endpoint_name: str, fleet, started: float, model_latency: float | None,
                status: int, asynchronous: bool) -> None:
        if asynchronous:
            self.metrics.record_async_invocation(region, endpoint_name, fleet.variant,
                                                 model_latency_us=model_latency, status=status)
            return
        overhead_us = (time.perf_counter() - started) * 1e6 - (model_latency or 0)
        self.metrics.record_invocation(region, endpoint_name, fleet.variant, instances=len(fleet.ready),
                                       model_latency_us=model_latency, overhead_us=overhead_us, status=status)

    async def _serve(self, fleet: VariantFleet | MultiContainerFleet, headers: Mapping[str, str],
                     body: bytes) -> tuple[int, float, bytes, Mapping[str, str]]:
        if isinstance(fleet, MultiContainerFleet):
            return await fleet.serve(self._call_fleet, headers, body)
        if TARGET_CONTAINER_HEADER in headers:
            raise RuntimeValidationError(
                f"Endpoint {fleet.endpoint} is not configured for direct invocation and does not support "
                f"the target container hostname header.")
        if isinstance(fleet, ServerlessFleet):
            return await fleet.serve(self._call_instance, headers, body)
        return await self._call_fleet(fleet, headers, body)

    async def _call_fleet(self, fleet: VariantFleet, headers: Mapping[str, str],
                          body: bytes) -> tuple[int, float, bytes, Mapping[str, str]]:
        """Call one instance; if its connection breaks (it died), retry once on another one."""
        tried: set[str] = set()
        while True:
            instance = fleet.pick(exclude=tried)
            if instance is None:
                raise ServiceUnavailable(
                    f"No healthy instance is serving variant {fleet.variant} of endpoint {fleet.endpoint}.")
            tried.add(instance.id)
            try:
                return await self._call_instance(fleet, instance, headers, body)
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
                if len(tried) >= 2 or not fleet.ready:
                    raise InstanceLost(f'Received server error (500) from primary with message "{error}".',
                                       original_status=500, original_message=str(error),
                                       log_stream_arn=self._log_group_arn(instance.logs.region, fleet)) from None

    async def _call_instance(self, fleet: VariantFleet, instance: Instance, headers: Mapping[str, str],
                             body: bytes, path: str = "/invocations") -> tuple[int, float, bytes, Mapping[str, str]]:
        """POST to the worker; return (status, model latency in µs, body, headers)."""
        forwarded = [(name, value) for name in FORWARDED_HEADERS if (value := headers.get(name)) is not None]
        if "Content-Type" not in headers:
            forwarded.append(("Content-Type", DEFAULT_CONTENT_TYPE))
        if "Accept" not in headers:
            forwarded.append(("Accept", DEFAULT_ACCEPT))
        limit = invocation_timeout.get()
        timeout = self._timeout if limit is None else aiohttp.ClientTimeout(total=limit)
        instance.inflight += 1
        sent = time.perf_counter()
        try:
            async with self.session.post(f"http://{WORKER_HOST}:{instance.port}{path}", data=body,
                                         headers=forwarded, timeout=timeout) as response:
                payload = await response.read()
                return response.status, (time.perf_counter() - sent) * 1e6, payload, response.headers
        except asyncio.TimeoutError:
            raise ModelError(
                "Your invocation timed out while waiting for a response from container primary. Review the "
                "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.",
                log_stream_arn=self._log_group_arn(instance.logs.region, fleet)) from None
        finally:
            instance.inflight -= 1

    def _model_error(self, region: str, fleet: VariantFleet, status: int, payload: bytes) -> ModelError:
        kind = "client" if status < 500 else "server"
        text = payload.decode(errors="replace")
        console = (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                   f"#logEventViewer:group=/aws/sagemaker/Endpoints/{fleet.endpoint}")
        return ModelError(
            f'Received {kind} error ({status}) from primary with message "{text}". '
            f"See {console} in account {ACCOUNT_ID} for more information.",
            original_status=status, original_message=text, log_stream_arn=self._log_group_arn(region, fleet))

    @staticmethod
    def _log_group_arn(region: str, fleet: VariantFleet) -> str:
        return (f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:"
                f"/aws/sagemaker/Endpoints/{fleet.endpoint}")
