"""One address for every service: our SageMaker (control plane and runtime) and moto for the rest."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import shutil

from aiohttp import web

from sagemaker_emulator.autoscaling.api import AutoscalingApi
from sagemaker_emulator.config import MAX_PAYLOAD_BYTES, Settings
from sagemaker_emulator.controllers.alarm_evaluator import AlarmEvaluator
from sagemaker_emulator.controllers.alarm_history import cloudwatch_operation, handle_describe_alarm_history
from sagemaker_emulator.controllers.autoscaler import POLICY_ARN_PREFIX, Autoscaler
from sagemaker_emulator.controllers.deployment import DeploymentController
from sagemaker_emulator.controllers.faults import FaultInjector
from sagemaker_emulator.controllers.monitoring_scheduler import MonitoringScheduler
from sagemaker_emulator.controllers.processing import ProcessingController
from sagemaker_emulator.controllers.recommender import RecommenderController
from sagemaker_emulator.moto_bridge import ACCOUNT_ID, MotoGateway
from sagemaker_emulator.runtime.async_queue import AsyncInferenceQueue
from sagemaker_emulator.runtime.router import Router
from sagemaker_emulator.runtime.telemetry import EndpointMetrics
from sagemaker_emulator.sagemaker import responses
from sagemaker_emulator.sagemaker.errors import AwsError
from sagemaker_emulator.sagemaker.models import SageMakerBackend
from sagemaker_emulator.sagemaker.monitoring_schedules import Monitoring
from sagemaker_emulator.sagemaker.processing import ProcessingJobs
from sagemaker_emulator.sagemaker.recommendations import InferenceRecommendations

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def request_region(request: web.Request) -> str:
    """The region a SigV4-signed request was signed for (signatures themselves are not checked)."""
    match = _CREDENTIAL_SCOPE.search(request.headers.get("Authorization", ""))
    return match.group(1) if match else DEFAULT_REGION


class HeapFreezer:
    """Keeps garbage-collection pauses short by moving long-lived objects out of the collector's way.

    Once moto and botocore's service models are loaded the emulator holds ~170k long-lived
    objects, and a full (generation 2) collection walks all of them: ~100 ms on a 2-core machine,
    during which every request in flight waits (the p99 spikes of ``bench/router_overhead.py``).
    ``gc.freeze()`` after start-up, and again shortly after each full collection (CPython runs one
    only when the heap has grown by a quarter, and it has just thrown away the garbage), moves the
    survivors to a generation the collector skips, so the next full collection only looks at what
    was allocated since. The price: a frozen object that later becomes part of a garbage cycle is
    never reclaimed, a small, bounded leak for a development service.
    """

    def __init__(self, check_seconds: float = 1.0):
        self.check_seconds = check_seconds
        self._full_collection_ran = False
        self._task: asyncio.Task | None = None

    def _on_gc(self, phase: str, info: dict) -> None:
        # Runs inside the collector, on whatever thread triggered it: only set a flag here.
        if phase == "stop" and info["generation"] == 2:
            self._full_collection_ran = True

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._refreeze())

    async def _refreeze(self) -> None:
        while True:
            await asyncio.sleep(self.check_seconds)
            if self._full_collection_ran:
                self._full_collection_ran = False
                gc.freeze()

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()


class Emulator:
    """Owns the per-region SageMaker backends, the runtime router and moto."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = EndpointMetrics(settings.metrics_flush_seconds)
        self.router = Router(settings, self.metrics)
        self.async_queue = AsyncInferenceQueue(settings, self.router)
        self.moto = MotoGateway()
        self._backends: dict[str, SageMakerBackend] = {}
        self._controllers: dict[str, DeploymentController] = {}
        self._processing: dict[str, ProcessingController] = {}
        self._monitoring: dict[str, Monitoring] = {}
        self._recommenders: dict[str, RecommenderController] = {}
        self.faults = FaultInjector()  # test-only: POST /_emulator/faults
        self.scheduler = MonitoringScheduler(lambda: list(self._monitoring.values()))
        self.heap = HeapFreezer()
        self.alarms = AlarmEvaluator(settings.time_scale)  # evaluates the alarms moto stores
        self.autoscaler = Autoscaler(settings, self.backend)  # acts on moto's Application Auto Scaling
        self.alarms.register_action_handler(POLICY_ARN_PREFIX, self.autoscaler.on_alarm)
        self.autoscaling = AutoscalingApi(self.autoscaler, self.alarms)

    def backend(self, region: str) -> SageMakerBackend:
        if region not in self._backends:
            controller = DeploymentController(self.settings, self.router, ACCOUNT_ID, region, self.faults)
            backend = controller.backend
            self._controllers[region] = controller
            self._backends[region] = backend
            self._add_monitoring(region, backend)
            self._add_recommender(region, backend)
        return self._backends[region]

    def _add_monitoring(self, region: str, backend: SageMakerBackend) -> None:
        runner = ProcessingController(self.settings, region)
        processing = ProcessingJobs(backend._arn, runner)
        monitoring = Monitoring(backend._arn, processing,
                                lambda name: backend.get_endpoint(name).features.get("DataCaptureConfig"))
        backend.services += [processing, monitoring]
        self._processing[region], self._monitoring[region] = runner, monitoring

    def _add_recommender(self, region: str, backend: SageMakerBackend) -> None:
        """Inference Recommender: its load tests run on temporary endpoints of this backend."""
        runner = RecommenderController(self.settings, self.router, backend)
        backend.services.append(InferenceRecommendations(backend._arn, backend.get_model, runner, os.cpu_count() or 1))
        self._recommenders[region] = runner

    # -- HTTP handlers ----------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        target = request.headers.get("X-Amz-Target", "")
        if target.startswith("SageMaker."):
            return await self._sagemaker(request, target)
        if target.startswith("AnyScaleFrontendService."):
            return await self.autoscaling.dispatch(request, request_region(request), target.split(".", 1)[1],
                                                   self.moto)
        if request.method == "POST" and request.path == "/":
            cloudwatch = cloudwatch_operation(target, request.content_type, await request.read())
            if cloudwatch is not None:
                return await self._cloudwatch(request, *cloudwatch)
        return await self.moto(request)

    async def _sagemaker(self, request: web.Request, target: str) -> web.Response:
        """SageMaker's control plane; an update that would break an auto-scaled variant is refused and a
        deleted endpoint's scalable targets are deregistered (autoscaling/api.py)."""
        region, operation, raw = request_region(request), target.split(".", 1)[1], await request.read()
        refusal = self.autoscaling.refuse_endpoint_update(region, operation, raw)
        if refusal is not None:
            return web.Response(status=400, body=refusal, content_type=responses.JSON_CONTENT_TYPE)
        status, body = responses.handle(self.backend(region), target, raw)
        if status == 200:
            await self.autoscaling.endpoint_deleted(region, operation, raw)
        return web.Response(status=status, body=body, content_type=responses.JSON_CONTENT_TYPE)

    async def _cloudwatch(self, request: web.Request, operation: str, protocol: str) -> web.StreamResponse:
        """moto lacks DescribeAlarmHistory; alarm writes are reconciled at once (a new alarm reads
        INSUFFICIENT_DATA, a SetAlarmState is recorded and its actions run)."""
        region = request_region(request)
        if operation == "DescribeAlarmHistory":
            status, headers, body = handle_describe_alarm_history(self.alarms.history, region, protocol,
                                                                  await request.read())
            return web.Response(status=status, headers=headers, body=body)
        response = await self.moto(request)
        if operation in ("PutMetricAlarm", "SetAlarmState", "DeleteAlarms") and response.status == 200:
            await self.alarms.reconcile(region)
        return response

    async def invoke(self, request: web.Request) -> web.Response:
        try:
            if (request.content_length or 0) > MAX_PAYLOAD_BYTES:
                raise AwsError("", f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes.", status=413)
            result = await self.router.invoke(request_region(request), request.match_info["name"],
                                              request.headers, await request.read())
        except AwsError as error:
            return runtime_error(error)
        return web.Response(status=result.status, body=result.body, headers=result.headers)

    async def invoke_async(self, request: web.Request) -> web.Response:
        try:
            accepted = self.async_queue.submit(request_region(request), request.match_info["name"],
                                               request.headers, await request.read())
        except AwsError as error:
            return runtime_error(error)
        return web.json_response({"InferenceId": accepted.inference_id}, status=202,
                                 headers=accepted.response_headers())

    async def run_monitoring_schedule(self, request: web.Request) -> web.Response:
        """Test control: run a monitoring schedule now, as if its cron time had come."""
        region = request.query.get("region", DEFAULT_REGION)
        self.backend(region)
        try:
            execution = self.scheduler.fire_now(self._monitoring[region], request.match_info["name"])
        except AwsError as error:
            return web.json_response({"__type": error.code, "message": error.message}, status=error.status)
        return web.json_response(execution.summary(), status=201)

    async def inject_fault(self, request: web.Request) -> web.Response:
        """Test control: the named stage of an endpoint's next task raises (see controllers/faults.py)."""
        try:
            fault = await request.json()
            self.faults.arm(fault.get("stage", ""), request.query.get("region", DEFAULT_REGION),
                            fault.get("endpoint", ""), fault.get("message", ""))
        except (ValueError, AttributeError) as error:
            return web.json_response({"message": str(error)}, status=400)
        return web.json_response(fault, status=201)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "running", "services": ["sagemaker", "sagemaker-runtime", "moto"]})

    # -- lifecycle --------------------------------------------------------------------------------

    async def on_startup(self, app: web.Application) -> None:
        self.settings.workdir.mkdir(parents=True, exist_ok=True)
        self.metrics.start()
        self.async_queue.start()
        self.scheduler.start()
        self.alarms.start()
        self.autoscaler.start()
        self.heap.start()

    async def on_cleanup(self, app: web.Application) -> None:
        await self.async_queue.stop()  # before the fleets go: unfinished requests stay journaled
        await self.scheduler.stop()
        await self.alarms.stop()
        await self.autoscaler.stop()
        for runner in self._processing.values():
            await runner.close()
        for recommender in self._recommenders.values():  # before the endpoints they benchmark go
            await recommender.close()
        for controller in self._controllers.values():
            await controller.close()
        await asyncio.gather(*(self._close_routes(key) for key in list(self.router.routes)))
        await self.router.close()
        await self.metrics.stop()
        self.heap.stop()
        self.moto.close()
        if not self.settings.keep_workdir:
            shutil.rmtree(self.settings.workdir, ignore_errors=True)

    async def _close_routes(self, key: tuple[str, str]) -> None:
        routes = self.router.routes.pop(key)
        await asyncio.gather(*(fleet.close() for fleet in routes.fleets.values()), return_exceptions=True)
        if routes.capture is not None:  # what was captured since the last flush
            await routes.capture.close()


EMULATOR = web.AppKey("emulator", Emulator)  # the Emulator behind an application


def runtime_error(error: AwsError) -> web.Response:
    """A sagemaker-runtime (rest-json) error: the code travels in ``x-amzn-ErrorType``."""
    headers = {"x-amzn-ErrorType": error.code} if error.code else {}
    body = {"message": error.message, "Message": error.message, **error.fields}
    return web.Response(status=error.status, headers=headers, body=json.dumps(body).encode(),
                        content_type="application/json")


def create_app(settings: Settings) -> web.Application:
    emulator = Emulator(settings)
    # Large S3 uploads (model archives) pass through here; the runtime enforces its own 6 MB limit.
    app = web.Application(client_max_size=5 * 1024 ** 3)
    app[EMULATOR] = emulator
    app.router.add_get("/_emulator/health", emulator.health)
    app.router.add_post("/_emulator/faults", emulator.inject_fault)
    app.router.add_post("/_emulator/monitoring-schedules/{name}/executions", emulator.run_monitoring_schedule)
    app.router.add_post("/endpoints/{name}/invocations", emulator.invoke)
    app.router.add_post("/endpoints/{name}/async-invocations", emulator.invoke_async)
    app.router.add_route("*", "/{tail:.*}", emulator.dispatch)
    app.on_startup.append(emulator.on_startup)
    app.on_cleanup.append(emulator.on_cleanup)
    return app
