"""Emulator settings. One documented time scale compresses AWS's waits for tests and demos."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def _default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / f"sagemaker-emulator-{os.getpid()}"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4566
    # AWS durations (invocation timeout, container stop grace, ...) are divided by this factor.
    # Request parameters stay exactly what AWS accepts; only the emulator's clock runs faster.
    time_scale: float = 1.0
    metrics_flush_seconds: float = 1.0
    # Real process start and model load take real time, so start-up is not scaled.
    startup_timeout_seconds: float = 240.0
    # A serverless worker idle this long is stopped: the variant scales to zero (AWS seconds, scaled
    # like the others). AWS does not publish its figure; users observe minutes.
    serverless_idle_seconds: float = 300.0
    # Data capture is buffered and written to S3 this often (AWS seconds, scaled; AWS says delivery
    # "can require a couple of minutes"), and at once when the endpoint is updated or deleted.
    capture_flush_seconds: float = 60.0
    workdir: Path = field(default_factory=_default_workdir)
    # A workdir the user chose survives shutdown (queued async requests resume on the next start);
    # the default temporary one is removed.
    keep_workdir: bool = False

    def scaled(self, aws_seconds: float) -> float:
        return aws_seconds / self.time_scale

    @property
    def public_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def url(self) -> str:
        return f"http://{self.public_host}:{self.port}"


INVOCATION_TIMEOUT_SECONDS = 60  # containers must answer /invocations within 60 s
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint body limit (BodyBlob max 6291456)
CONTAINER_STOP_GRACE_SECONDS = 30  # SIGTERM, then SIGKILL 30 s later
# Multi-model endpoints: the memory, in MiB, an instance's model cache may fill before least recently
# used models are unloaded. Default: the instance type's memory (catalog.py) minus the worker's own
# resident memory. Read from the model container's Environment, else from the emulator's; set it small
# to watch eviction happen on a laptop (e.g. 200 for three 64 MiB models).
MME_MEMORY_ENV = "SAGEMAKER_EMULATOR_MME_MEMORY_MIB"
