"""The one way the emulator talks to worker processes over HTTP: the narrow client every fleet uses.

Fleets hand it an ``Instance`` and an ``Invocation``; it forwards only the headers SageMaker forwards,
enforces the invocation's time limit, and counts the instance's requests in flight (the fleets
balance on that count). A broken connection (the worker died) is ``ConnectionBroken``, so fleets
decide about retries without knowing the transport.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

from sagemaker_emulator.moto_bridge import ACCOUNT_ID
from sagemaker_emulator.runtime.instance import Instance
from sagemaker_emulator.runtime.worker_client import WorkerClient, WorkerConnectionError
from sagemaker_emulator.sagemaker.errors import ModelError

# Request headers SageMaker forwards to the container (it strips everything not in the API).
FORWARDED_HEADERS = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes",
                     "X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-Target-Model")
# What the container sees when the caller sent no Content-Type or Accept.
DEFAULT_CONTENT_TYPE = "application/octet-stream"
DEFAULT_ACCEPT = "*/*"
WORKER_HOST = "127.0.0.1"  # workers listen on loopback


@dataclass(frozen=True)
class Invocation:
    """One request as the fleets see it: the caller's headers, the body, and its time limit (seconds)."""

    headers: Mapping[str, str]
    body: bytes
    timeout: float

    def with_headers(self, headers: Mapping[str, str], body: bytes | None = None) -> "Invocation":
        return Invocation(headers, self.body if body is None else body, self.timeout)


@dataclass(frozen=True)
class Answer:
    """A container's answer: HTTP status, model latency (µs), body and headers."""

    status: int
    model_latency_us: float
    body: bytes
    headers: Mapping[str, str]


class ConnectionBroken(Exception):
    """The worker's connection broke mid-request: its process died or was killed."""


def log_group_arn(region: str, endpoint: str) -> str:
    return f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{endpoint}"


def model_error(region: str, endpoint: str, status: int, payload: bytes) -> ModelError:
    """A container's 4xx/5xx answer, as SageMaker reports it to the caller."""
    kind = "client" if status < 500 else "server"
    text = payload.decode(errors="replace")
    console = (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
               f"#logEventViewer:group=/aws/sagemaker/Endpoints/{endpoint}")
    return ModelError(
        f'Received {kind} error ({status}) from primary with message "{text}". '
        f"See {console} in account {ACCOUNT_ID} for more information.",
        original_status=status, original_message=text, log_stream_arn=log_group_arn(region, endpoint))


def timed_out(region: str, endpoint: str) -> ModelError:
    return ModelError(
        "Your invocation timed out while waiting for a response from container primary. Review the "
        "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.",
        log_stream_arn=log_group_arn(region, endpoint))


class InstanceClient:
    """Keep-alive HTTP to the workers, shared by every fleet of the emulator (the transport is
    ``worker_client.WorkerClient``). No default headers: the worker sees only what SageMaker forwards."""

    def __init__(self) -> None:
        self.workers = WorkerClient(WORKER_HOST)

    async def invoke(self, instance: Instance, invocation: Invocation, path: str = "/invocations") -> Answer:
        """POST the invocation to the worker; ``ModelError`` when it does not answer in time."""
        headers = invocation.headers
        forwarded = [(name, value) for name in FORWARDED_HEADERS if (value := headers.get(name)) is not None]
        if "Content-Type" not in headers:
            forwarded.append(("Content-Type", DEFAULT_CONTENT_TYPE))
        if "Accept" not in headers:
            forwarded.append(("Accept", DEFAULT_ACCEPT))
        instance.inflight += 1
        sent = time.perf_counter()
        try:
            response = await self.workers.request(instance.port, "POST", path, forwarded, invocation.body,
                                                  invocation.timeout)
            return Answer(response.status, (time.perf_counter() - sent) * 1e6, response.body, response.headers)
        except asyncio.TimeoutError:
            raise timed_out(instance.logs.region, instance.logs.endpoint) from None
        except WorkerConnectionError as error:
            raise ConnectionBroken(str(error)) from None
        finally:
            instance.inflight -= 1

    async def post_json(self, instance: Instance, path: str, document: Any, timeout: float) -> tuple[int, bytes]:
        return await self._request("POST", instance, path, timeout, json.dumps(document).encode(),
                                   [("Content-Type", "application/json")])

    async def delete(self, instance: Instance, path: str, timeout: float) -> tuple[int, bytes]:
        return await self._request("DELETE", instance, path, timeout)

    async def _request(self, method: str, instance: Instance, path: str, timeout: float, body: bytes = b"",
                       headers: list[tuple[str, str]] | None = None) -> tuple[int, bytes]:
        try:
            response = await self.workers.request(instance.port, method, path, headers or [], body, timeout)
        except WorkerConnectionError as error:
            raise ConnectionBroken(str(error)) from None
        return response.status, response.body

    async def close(self) -> None:
        await self.workers.close()
