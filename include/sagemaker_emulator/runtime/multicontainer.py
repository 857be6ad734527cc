"""Multi-container variants: up to 15 containers per instance, invoked Direct or as a Serial pipeline.

Each container of a variant is its own fleet of worker processes (one process per container per
instance). Direct mode sends a request only to ``TargetContainerHostname``; Serial mode sends it to
the first container and each response on as the next container's request.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Mapping

from sagemaker_emulator.runtime.fleet import VariantFleet
from sagemaker_emulator.runtime.instance import Instance
from sagemaker_emulator.sagemaker.errors import RuntimeValidationError

TARGET_CONTAINER_HEADER = "X-Amzn-SageMaker-Target-Container-Hostname"

# (status, model latency µs, body, headers) from one container, as Router._call_fleet returns it.
ContainerAnswer = tuple[int, float, bytes, Mapping[str, str]]
CallContainer = Callable[[VariantFleet, Mapping[str, str], bytes], Awaitable[ContainerAnswer]]


class MultiContainerFleet:
    """The containers of one production variant, in the model's order."""

    def __init__(self, mode: str, containers: dict[str, VariantFleet]):
        self.mode = mode  # "Direct" or "Serial"
        self.containers = containers
        first = next(iter(containers.values()))
        self.endpoint, self.variant, self.logs = first.endpoint, first.variant, first.logs

    @property
    def ready(self) -> list[Instance]:
        """An instance serves when every one of its containers does: count the scarcest container."""
        return min((fleet.ready for fleet in self.containers.values()), key=len)

    async def scale_to(self, count: int) -> None:
        await asyncio.gather(*(fleet.scale_to(count) for fleet in self.containers.values()))

    async def close(self) -> None:
        await asyncio.gather(*(fleet.close() for fleet in self.containers.values()))

    async def serve(self, call: CallContainer, headers: Mapping[str, str], body: bytes) -> ContainerAnswer:
        target = headers.get(TARGET_CONTAINER_HEADER)
        if self.mode == "Direct":
            return await call(self._direct_target(target), headers, body)
        if target is not None:
            raise RuntimeValidationError(
                f"Endpoint {self.endpoint} is not configured for direct invocation and does not support "
                f"the target container hostname header.")
        return await self._serial(call, headers, body)

    def _direct_target(self, hostname: str | None) -> VariantFleet:
        if hostname is None:
            raise RuntimeValidationError(
                f"Endpoint {self.endpoint} is configured for direct invocation: specify a "
                f"TargetContainerHostname ({', '.join(self.containers)}).")
        if hostname not in self.containers:
            raise RuntimeValidationError(
                f"Target container hostname {hostname} does not exist in endpoint {self.endpoint}. "
                f"Containers: {', '.join(self.containers)}.")
        return self.containers[hostname]

    async def _serial(self, call: CallContainer, headers: Mapping[str, str], body: bytes) -> ContainerAnswer:
        """Run the pipeline; the first failing container's answer ends it."""
        stage_headers, total_latency = dict(headers), 0.0
        for fleet in self.containers.values():
            status, latency, body, answer_headers = await call(fleet, stage_headers, body)
            total_latency += latency
            if status >= 400:
                return status, total_latency, body, answer_headers
            # Each container's output is the next one's input, with the content type it declared.
            stage_headers["Content-Type"] = answer_headers.get("Content-Type", "application/json")
        return status, total_latency, body, answer_headers
