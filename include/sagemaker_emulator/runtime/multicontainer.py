"""Multi-container variants: up to 15 containers per instance, invoked Direct or as a Serial pipeline.

Each container of a variant is its own fleet of worker processes (one process per container per
instance). Direct mode sends a request only to ``TargetContainerHostname``; Serial mode sends it to
the first container and each response on as the next container's request.
"""

from __future__ import annotations

import asyncio
from typing import Mapping

from sagemaker_emulator.runtime.fleet import TARGET_CONTAINER_HEADER, VariantFleet, refuse_routing_headers
from sagemaker_emulator.runtime.instance import Instance
from sagemaker_emulator.runtime.instance_client import Answer, Invocation
from sagemaker_emulator.sagemaker.errors import RuntimeValidationError


class MultiContainerFleet:
    """The containers of one production variant, in the model's order (a ``Fleet``)."""

    def __init__(self, mode: str, containers: dict[str, VariantFleet]):
        self.mode = mode  # "Direct" or "Serial"
        self.containers = containers
        first = next(iter(containers.values()))
        self.endpoint, self.variant = first.endpoint, first.variant

    @property
    def ready(self) -> list[Instance]:
        """An instance serves when every one of its containers does: count the scarcest container."""
        return min((fleet.ready for fleet in self.containers.values()), key=len)

    async def scale_to(self, count: int) -> None:
        await asyncio.gather(*(fleet.scale_to(count) for fleet in self.containers.values()))

    async def close(self) -> None:
        await asyncio.gather(*(fleet.close() for fleet in self.containers.values()))

    async def serve(self, invocation: Invocation) -> Answer:
        refuse_routing_headers(self.endpoint, invocation.headers, target_container=False)
        target = invocation.headers.get(TARGET_CONTAINER_HEADER)
        if self.mode == "Direct":
            return await self._direct_target(target).call(invocation)
        if target is not None:
            refuse_routing_headers(self.endpoint, invocation.headers)
        return await self._serial(invocation)

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

    async def _serial(self, invocation: Invocation) -> Answer:
        """Run the pipeline; the first failing container's answer ends it."""
        stage, total_latency = invocation, 0.0
        for fleet in self.containers.values():
            answer = await fleet.call(stage)
            total_latency += answer.model_latency_us
            if answer.status >= 400:
                break
            # Each container's output is the next one's input, with the content type it declared.
            headers: Mapping[str, str] = {**stage.headers,
                                          "Content-Type": answer.headers.get("Content-Type", "application/json")}
            stage = stage.with_headers(headers, answer.body)
        return Answer(answer.status, total_latency, answer.body, answer.headers)
