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
    workdir: Path = field(default_factory=_default_workdir)

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
