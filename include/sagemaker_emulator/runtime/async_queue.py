"""Asynchronous inference: ``POST /endpoints/{name}/async-invocations`` and the queue behind it.

InvokeEndpointAsync answers 202 at once with where the result will be; the request waits in a
per-endpoint queue until an instance has room (``MaxConcurrentInvocationsPerInstance``), then its
input is read from S3 (or taken from the inline ``Body``), the variant is invoked through the same
router and worker processes as real-time traffic, and the answer lands in
``<S3OutputPath>/<uuid>.out`` or the error in ``<S3FailurePath>/<uuid>-error.out``, with an
optional SNS notification in AWS's ``InferenceResult`` shape (below).

Durability: every waiting request is a JSON file under ``<workdir>/async-inference/`` until its
result is written, so an emulator restarted on the same ``--workdir`` after a crash delivers it (at
least once, as SageMaker's queue does). A request whose instance dies under it goes back to the head
of the queue and runs again when the fleet has replaced the instance, up to ``MAX_DELIVERIES``.

The notification, as AWS documents it (``async-inference-check-predictions``)::

    {"awsRegion": "us-east-1", "eventTime": "2022-01-25T22:46:00.608Z",
     "receivedTime": "2022-01-25T22:46:00.455Z", "invocationStatus": "Completed",
     "requestParameters": {"contentType": "text/csv", "endpointName": "...", "inputLocation": "s3://..."},
     "responseParameters": {"contentType": "text/csv; charset=utf-8", "outputLocation": "s3://.../x.out"},
     "inferenceId": "...", "eventVersion": "1.0", "eventSource": "aws:sagemaker",
     "eventName": "InferenceResult"}

A failure has ``"invocationStatus": "Failed"`` and a ``failureReason`` instead of
``responseParameters``. With ``IncludeInferenceResponseIn`` the topic's message also carries
``"responseBody": {"content": "<base64>", "encoding": "BASE64"}`` when the body is at most 128 KB.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.config import Settings
from sagemaker_emulator.moto_bridge import ACCOUNT_ID
from sagemaker_emulator.runtime.router import EndpointRoutes, InvokeResult, Router
from sagemaker_emulator.runtime.telemetry import NAMESPACE
from sagemaker_emulator.s3_uri import parse_s3_uri
from sagemaker_emulator.sagemaker.errors import (AwsError, InstanceLost, ModelError, RuntimeValidationError,
                                                 ServiceUnavailable)

log = logging.getLogger(__name__)

# InvokeEndpointAsync headers (botocore's sagemaker-runtime model).
INPUT_LOCATION = "X-Amzn-SageMaker-InputLocation"
CONTENT_TYPE = "X-Amzn-SageMaker-Content-Type"
ACCEPT = "X-Amzn-SageMaker-Accept"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
REQUEST_TTL = "X-Amzn-SageMaker-RequestTTLSeconds"
INVOCATION_TIMEOUT = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
OUTPUT_PATH_EXTENSION = "X-Amzn-SageMaker-S3OutputPathExtension"
FILENAME = "X-Amzn-SageMaker-Filename"

INLINE_BODY_MAX_BYTES = 128_000  # AsyncBodyBlob max
MAX_INPUT_BYTES = 1024 ** 3  # async payloads reach 1 GB
DEFAULT_REQUEST_TTL_SECONDS = 6 * 3600  # RequestTTLSeconds default (21,600 s)
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 15 * 60  # InvocationTimeoutSeconds default (900 s)
# "If no value is provided, SageMaker chooses an optimal value": a worker runs one prediction at a
# time, so more would only queue inside it.
DEFAULT_MAX_CONCURRENCY = 1
MAX_DELIVERIES = 3  # a request whose instance keeps dying under it fails after this many tries
NOTIFIED_BODY_MAX_BYTES = 128 * 1024  # IncludeInferenceResponseIn: "less than or equal to 128 KB"
CAPACITY_POLL_SECONDS = 0.05  # how soon a waiting request notices a replaced or added instance
RETRY_DELAY_SECONDS = 0.2

_INPUT_LOCATION_PATTERN = re.compile(r"^(https|s3)://([^/]+)/?(.*)$")
_EXTENSION_PATTERN = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")
_FILENAME_PATTERN = re.compile(r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$")


@dataclasses.dataclass
class AsyncRequest:
    """One accepted InvokeEndpointAsync call; also its journal record."""

    id: str  # names the output objects
    region: str
    endpoint: str
    inference_id: str
    received: float  # epoch seconds
    output_location: str
    failure_location: str | None
    input_location: str | None = None
    inline_body: str | None = None  # base64, when the caller sent Body instead of InputLocation
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    ttl_seconds: int = DEFAULT_REQUEST_TTL_SECONDS
    timeout_seconds: int = DEFAULT_INVOCATION_TIMEOUT_SECONDS
    success_topic: str | None = None
    error_topic: str | None = None
    include_response_in: list[str] = dataclasses.field(default_factory=list)
    deliveries: int = 0

    def response_headers(self) -> dict[str, str]:
        headers = {"X-Amzn-SageMaker-OutputLocation": self.output_location}
        if self.failure_location:
            headers["X-Amzn-SageMaker-FailureLocation"] = self.failure_location
        return headers


class Journal:
    """Waiting requests on disk, one JSON file each, replaced atomically."""

    def __init__(self, folder: Path):
        self.folder = folder

    def save(self, request: AsyncRequest) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f"{request.id}.json.partial"
        partial.write_text(json.dumps(dataclasses.asdict(request)))
        os.replace(partial, self.folder / f"{request.id}.json")

    def remove(self, request: AsyncRequest) -> None:
        (self.folder / f"{request.id}.json").unlink(missing_ok=True)

    def load(self) -> list[AsyncRequest]:
        requests = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                requests.append(AsyncRequest(**json.loads(path.read_text())))
            except (ValueError, TypeError) as error:
                log.error("skipping unreadable async inference request %s: %s", path, error)
        return sorted(requests, key=lambda request: request.received)


@dataclasses.dataclass
class _Backlog:
    """One endpoint's requests: waiting, and running on its instances."""

    pending: collections.deque[AsyncRequest] = dataclasses.field(default_factory=collections.deque)
    running: dict[asyncio.Task, AsyncRequest] = dataclasses.field(default_factory=dict)
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    dispatcher: asyncio.Task | None = None

    @property
    def size(self) -> int:
        return len(self.pending) + len(self.running)

    def oldest(self) -> float | None:
        received = [r.received for r in self.pending] + [r.received for r in self.running.values()]
        return min(received, default=None)


class _Failure(Exception):
    """Why a request failed: ``reason`` for the notification, ``body`` for the failure object."""

    def __init__(self, reason: str, body: bytes | None = None):
        super().__init__(reason)
        self.reason = reason
        self.body = body if body is not None else reason.encode()


class AsyncInferenceQueue:
    """The emulator's asynchronous inference service (all regions); started and stopped with it."""

    def __init__(self, settings: Settings, router: Router):
        self.settings = settings
        self.router = router
        self.journal = Journal(Path(settings.workdir) / "async-inference")
        self._backlogs: dict[tuple[str, str], _Backlog] = {}
        self._outcomes: dict[tuple[str, str], dict[str, list[float]]] = {}  # metric -> [count, sum, min, max]
        self._publisher: asyncio.Task | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        for request in self.journal.load():  # what a previous run on this workdir left waiting
            self._enqueue(request)
        self._publisher = asyncio.get_running_loop().create_task(self._publish_forever())

    async def stop(self) -> None:
        """Stop dispatching; requests not finished stay in the journal."""
        tasks = [t for t in (self._publisher,) if t is not None]
        for backlog in self._backlogs.values():
            tasks += [t for t in (backlog.dispatcher,) if t is not None] + list(backlog.running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- InvokeEndpointAsync ----------------------------------------------------------------------

    def submit(self, region: str, endpoint_name: str, headers: Mapping[str, str], body: bytes) -> AsyncRequest:
        """Validate and enqueue; the caller answers 202 with the request's locations at once."""
        routes = self.router.find(region, endpoint_name)
        if routes.async_inference is None:
            raise RuntimeValidationError(
                f"Endpoint {endpoint_name} of account {ACCOUNT_ID} is not an asynchronous inference endpoint: "
                "invoke it with InvokeEndpoint.")
        request = _new_request(region, routes, headers, body)
        self.journal.save(request)
        self._enqueue(request)
        return request

    def _enqueue(self, request: AsyncRequest, first: bool = False) -> None:
        key = (request.region, request.endpoint.lower())
        backlog = self._backlogs.setdefault(key, _Backlog())
        if first:
            backlog.pending.appendleft(request)
        else:
            backlog.pending.append(request)
        backlog.wake.set()
        if backlog.dispatcher is None or backlog.dispatcher.done():
            backlog.dispatcher = asyncio.get_running_loop().create_task(self._dispatch(key, backlog))

    # -- the queue --------------------------------------------------------------------------------

    async def _dispatch(self, key: tuple[str, str], backlog: _Backlog) -> None:
        """Start waiting requests while the endpoint's instances have room; exit when all are done."""
        while backlog.pending or backlog.running:
            backlog.wake.clear()
            self._expire(backlog)
            room = self._capacity(key) - len(backlog.running)
            while backlog.pending and room > 0:
                request = backlog.pending.popleft()
                task = asyncio.get_running_loop().create_task(self._deliver(request))
                backlog.running[task] = request
                task.add_done_callback(lambda done: (backlog.running.pop(done, None), backlog.wake.set()))
                room -= 1
            try:
                await asyncio.wait_for(backlog.wake.wait(), CAPACITY_POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
        if self._backlogs.get(key) is backlog:  # drained: forget it (a new request starts a new one)
            del self._backlogs[key]

    def _capacity(self, key: tuple[str, str]) -> int:
        """How many requests the endpoint's instances may run at once (0 while it has none)."""
        routes = self.router.routes.get(key)
        if routes is None or routes.async_inference is None:
            return 0  # deleted, or updated to a real-time config: requests wait until they expire
        client = routes.async_inference.client_config
        per_instance = client.max_concurrent_invocations_per_instance if client else None
        return (per_instance or DEFAULT_MAX_CONCURRENCY) * _instances(routes)

    def _expire(self, backlog: _Backlog) -> None:
        now = time.time()
        for request in [r for r in backlog.pending if now - r.received > self.settings.scaled(r.ttl_seconds)]:
            backlog.pending.remove(request)
            self._count(request, "ExpiredRequests")
            task = asyncio.get_running_loop().create_task(self._fail(request, _Failure(
                f"ClientError: The request expired: it waited in the queue for longer than its "
                f"RequestTTLSeconds ({request.ttl_seconds} s).")))
            backlog.running[task] = request
            task.add_done_callback(lambda done: (backlog.running.pop(done, None), backlog.wake.set()))

    async def _deliver(self, request: AsyncRequest) -> None:
        request.deliveries += 1
        self.journal.save(request)
        if request.deliveries == 1:
            self._record(request, "TimeInBacklog", (time.time() - request.received) * 1000)
        try:
            result = await self._invoke(request, await self._read_input(request))
            await self._write(request.output_location, result.body, result.headers.get("Content-Type"))
        except _Retry as retry:
            log.warning("async inference %s on %s: %s; retrying", request.id, request.endpoint, retry)
            await asyncio.sleep(RETRY_DELAY_SECONDS)  # let the fleet notice the dead instance first
            self._enqueue(request, first=True)
            return
        except _Failure as failure:
            await self._fail(request, failure)
            return
        self._count(request, "InvocationsProcessed")
        await self._notify(request, request.success_topic, "SUCCESS_NOTIFICATION_TOPIC", "Completed",
                           body=result.body, content_type=result.headers.get("Content-Type"))
        self._finish(request)

    def _finish(self, request: AsyncRequest) -> None:
        self._record(request, "TotalProcessingTime", (time.time() - request.received) * 1000)
        self.journal.remove(request)

    async def _read_input(self, request: AsyncRequest) -> bytes:
        if request.inline_body is not None:
            return base64.b64decode(request.inline_body)
        bucket, key = parse_s3_uri(request.input_location)
        try:
            return await asyncio.to_thread(_get_object, bucket, key)
        except Exception as error:  # noqa: BLE001 - any S3 refusal is the request's failure
            self._count(request, "RequestDownloadFailures")
            raise _Failure(f"ClientError: Failed to download the request payload from "
                           f"{request.input_location}: {error}") from None

    async def _invoke(self, request: AsyncRequest, body: bytes) -> InvokeResult:
        headers = {name: value for name, value in (
            ("Content-Type", request.content_type), ("Accept", request.accept),
            ("X-Amzn-SageMaker-Custom-Attributes", request.custom_attributes),
            ("X-Amzn-SageMaker-Inference-Id", request.inference_id)) if value is not None}
        try:
            return await self.router.invoke(request.region, request.endpoint, headers, body, asynchronous=True,
                                            timeout=self.settings.scaled(request.timeout_seconds))
        except ServiceUnavailable as error:  # no instance was reached: this delivery does not count
            request.deliveries -= 1
            raise _Retry(error.message) from None
        except InstanceLost as error:
            if request.deliveries < MAX_DELIVERIES:
                raise _Retry(f"{error.message} (delivery {request.deliveries} of {MAX_DELIVERIES})") from None
            raise _Failure(f"ClientError: {error.message}") from None
        except ModelError as error:
            original = error.fields.get("OriginalMessage")
            raise _Failure(f"ClientError: {error.message}",
                           original.encode() if isinstance(original, str) else None) from None
        except AwsError as error:
            raise _Failure(f"ClientError: {error.message}") from None

    async def _write(self, location: str, body: bytes, content_type: str | None) -> None:
        try:
            await asyncio.to_thread(moto_bridge.put_object, *parse_s3_uri(location), body, content_type)
        except Exception as error:  # noqa: BLE001 - e.g. the output bucket does not exist
            raise _Failure(f"ServerError: Failed to upload the inference result to {location}: {error}") from None

    async def _fail(self, request: AsyncRequest, failure: _Failure) -> None:
        self._count(request, "InvocationFailures")
        if request.failure_location:
            try:
                await self._write(request.failure_location, failure.body, "text/plain")
            except _Failure as unwritable:
                log.error("async inference %s on %s: %s", request.id, request.endpoint, unwritable.reason)
        await self._notify(request, request.error_topic, "ERROR_NOTIFICATION_TOPIC", "Failed",
                           body=failure.body, failure_reason=failure.reason)
        self._finish(request)

    # -- notifications ----------------------------------------------------------------------------

    async def _notify(self, request: AsyncRequest, topic: str | None, kind: str, status: str, *, body: bytes,
                      content_type: str | None = None, failure_reason: str | None = None) -> None:
        if not topic:
            return
        message = notification(request, status, content_type=content_type, failure_reason=failure_reason,
                               body=body if kind in request.include_response_in else None)
        try:
            await asyncio.to_thread(moto_bridge.publish, topic, json.dumps(message))
        except Exception as error:  # noqa: BLE001 - a lost notification must not lose the result
            self._count(request, "NotificationFailures")
            log.error("async inference %s: could not notify %s: %s", request.id, topic, error)

    # -- metrics ----------------------------------------------------------------------------------

    def _count(self, request: AsyncRequest, metric: str) -> None:
        self._record(request, metric, 1.0)

    def _record(self, request: AsyncRequest, metric: str, value: float) -> None:
        stats = self._outcomes.setdefault((request.region, request.endpoint), {})
        stat = stats.get(metric)
        if stat is None:
            stats[metric] = [1, value, value, value]
        else:
            stat[0] += 1
            stat[1] += value
            stat[2] = min(stat[2], value)
            stat[3] = max(stat[3], value)

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metrics_flush_seconds)
            try:
                self.publish_metrics()
            except Exception:  # noqa: BLE001 - metrics must never stop the queue; say so loudly
                log.exception("publishing async inference metrics failed")

    def publish_metrics(self) -> None:
        """The async endpoint metrics (``AWS/SageMaker``, dimension ``EndpointName``)."""
        by_region: dict[str, list[dict]] = collections.defaultdict(list)
        for (region, _), routes in list(self.router.routes.items()):
            if routes.async_inference is not None:
                by_region[region] += self._backlog_data(region, routes.name, _instances(routes))
        outcomes, self._outcomes = self._outcomes, {}
        for (region, endpoint), stats in outcomes.items():
            by_region[region] += [_datum(endpoint, metric, _UNITS.get(metric, "None"), *stat)
                                  for metric, stat in stats.items()]
        for region, data in by_region.items():
            moto_bridge.put_metric_data(region, NAMESPACE, data)

    def _backlog_data(self, region: str, endpoint: str, instances: int) -> list[dict]:
        backlog = self._backlogs.get((region, endpoint.lower())) or _Backlog()
        size, oldest = backlog.size, backlog.oldest()
        data = [_datum(endpoint, "ApproximateBacklogSize", "None", 1, size, size, size),
                _datum(endpoint, "HasBacklogWithoutCapacity", "None", 1, *[float(size > 0 and instances == 0)] * 3)]
        if instances:
            data.append(_datum(endpoint, "ApproximateBacklogSizePerInstance", "None", 1, *[size / instances] * 3))
        age = time.time() - oldest if oldest is not None else 0.0
        data.append(_datum(endpoint, "ApproximateAgeOfOldestRequest", "Seconds", 1, age, age, age))
        return data


class _Retry(Exception):
    """The request's instance went away: run it again once the fleet has room."""


_UNITS = {"TimeInBacklog": "Milliseconds", "TotalProcessingTime": "Milliseconds"}


def _datum(endpoint: str, metric: str, unit: str, count: int, total: float, low: float, high: float) -> dict:
    return {"MetricName": metric, "Dimensions": [{"Name": "EndpointName", "Value": endpoint}], "Unit": unit,
            "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high}}


def _instances(routes: EndpointRoutes) -> int:
    return sum(len(fleet.ready) for fleet in routes.fleets.values())


# -- request parsing ------------------------------------------------------------------------------

def _new_request(region: str, routes: EndpointRoutes, headers: Mapping[str, str], body: bytes) -> AsyncRequest:
    input_location = headers.get(INPUT_LOCATION)
    if (input_location is None) == (not body):
        raise RuntimeValidationError("Body and InputLocation are mutually exclusive. Provide exactly one of them.")
    if len(body) > INLINE_BODY_MAX_BYTES:
        raise _constraint("body", None, f"Member must have length less than or equal to {INLINE_BODY_MAX_BYTES}")
    if input_location is not None and not _INPUT_LOCATION_PATTERN.match(input_location):
        raise _constraint("inputLocation", input_location,
                          f"Member must satisfy regular expression pattern: {_INPUT_LOCATION_PATTERN.pattern}")
    inference_id = headers.get(INFERENCE_ID)
    if inference_id is not None and not (0 < len(inference_id) <= 64 and inference_id.isprintable()
                                         and not inference_id[0].isspace()):
        raise _constraint("inferenceId", inference_id, "Member must have length less than or equal to 64 "
                          "and consist of printable characters")
    request_id = str(uuid.uuid4())
    output = routes.async_inference.output_config
    notifications = routes.async_inference.notifications
    extension = _optional(headers, OUTPUT_PATH_EXTENSION, "s3OutputPathExtension", _EXTENSION_PATTERN)
    filename = _optional(headers, FILENAME, "filename", _FILENAME_PATTERN)
    return AsyncRequest(
        id=request_id, region=region, endpoint=routes.name,
        inference_id=inference_id or str(uuid.uuid4()), received=time.time(),
        output_location=_join(output.s3_output_path, extension, filename or f"{request_id}.out"),
        failure_location=(_join(output.s3_failure_path, extension, f"{request_id}-error.out")
                          if output.s3_failure_path else None),
        input_location=input_location,
        inline_body=base64.b64encode(body).decode("ascii") if body else None,
        content_type=headers.get(CONTENT_TYPE), accept=headers.get(ACCEPT),
        custom_attributes=headers.get(CUSTOM_ATTRIBUTES),
        ttl_seconds=_bounded(headers, REQUEST_TTL, "requestTTLSeconds", 60, 21600, DEFAULT_REQUEST_TTL_SECONDS),
        timeout_seconds=_bounded(headers, INVOCATION_TIMEOUT, "invocationTimeoutSeconds", 1, 3600,
                                 DEFAULT_INVOCATION_TIMEOUT_SECONDS),
        success_topic=notifications.success_topic, error_topic=notifications.error_topic,
        include_response_in=list(notifications.include_inference_response_in or []),
    )


def _constraint(member: str, value: str | None, rule: str) -> RuntimeValidationError:
    shown = f"Value '{value}' at '{member}'" if value is not None else f"Value at '{member}'"
    return RuntimeValidationError(f"1 validation error detected: {shown} failed to satisfy constraint: {rule}")


def _bounded(headers: Mapping[str, str], header: str, member: str, low: int, high: int, default: int) -> int:
    raw = headers.get(header)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _constraint(member, raw, "Member must be an integer") from None
    if value < low:
        raise _constraint(member, raw, f"Member must have value greater than or equal to {low}")
    if value > high:
        raise _constraint(member, raw, f"Member must have value less than or equal to {high}")
    return value


def _optional(headers: Mapping[str, str], header: str, member: str, pattern: re.Pattern) -> str | None:
    value = headers.get(header)
    if value is not None and not pattern.match(value):
        raise _constraint(member, value, f"Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


def _join(base: str, extension: str | None, name: str) -> str:
    parts = [base.rstrip("/")] + ([extension.strip("/")] if extension else []) + [name]
    return "/".join(parts)


def notification(request: AsyncRequest, status: str, *, content_type: str | None = None,
                 failure_reason: str | None = None, body: bytes | None = None) -> dict[str, Any]:
    """The SNS message of one finished request, in AWS's InferenceResult shape."""
    message: dict[str, Any] = {"awsRegion": request.region, "eventTime": _iso(time.time()),
                               "receivedTime": _iso(request.received), "invocationStatus": status}
    if failure_reason is not None:
        message["failureReason"] = failure_reason
    parameters = {"accept": request.accept, "contentType": request.content_type,
                  "customAttributes": request.custom_attributes, "endpointName": request.endpoint,
                  "inputLocation": request.input_location}
    message["requestParameters"] = {name: value for name, value in parameters.items() if value is not None}
    if status == "Completed":
        message["responseParameters"] = {"contentType": content_type or "application/octet-stream",
                                         "outputLocation": request.output_location}
    if body is not None and len(body) <= NOTIFIED_BODY_MAX_BYTES:
        message["responseBody"] = {"content": base64.b64encode(body).decode("ascii"), "encoding": "BASE64"}
    message.update({"inferenceId": request.inference_id, "eventVersion": "1.0", "eventSource": "aws:sagemaker",
                    "eventName": "InferenceResult"})
    return message


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


# -- S3, in-process (called in a thread: payloads reach 1 GB) -------------------------------------

def _get_object(bucket: str, key: str) -> bytes:
    size = moto_bridge.object_size(bucket, key)
    if size is None:
        raise LookupError(f"NoSuchKey: the object s3://{bucket}/{key} does not exist")
    if size > MAX_INPUT_BYTES:
        raise ValueError(f"the payload is {size} bytes; asynchronous inference accepts up to {MAX_INPUT_BYTES}")
    body = moto_bridge.get_object(bucket, key)
    if body is None:
        raise LookupError(f"NoSuchKey: the object s3://{bucket}/{key} does not exist")
    return body
