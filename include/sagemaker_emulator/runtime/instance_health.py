"""How an instance's health is checked: ``GET /ping`` on every serving process, and its memory.

SageMaker documents the start-up side: a container must answer ``GET /ping`` with 200 within
``ContainerStartupHealthCheckTimeoutInSeconds`` (default 4 minutes), each ping timing out after 2 s.
It replaces instances that stop answering but does not publish how often it pings once the endpoint
is InService, so the emulator uses Kubernetes' liveness-probe defaults with SageMaker's ping timeout:

    every 10 s, a ping may take 2 s, 3 failures in a row -> the instance is killed and replaced

A hung instance is therefore replaced within about 36 s (3 x (10 + 2)). Like every AWS duration the
interval and timeout are divided by the emulator's time scale, but never below 0.5 s and 1 s: a
busy laptop must not fail a healthy worker (at the tests' scale of 20: every 0.5 s, 1 s timeout,
replaced within about 4.5 s).

Memory: an instance may use its instance type's memory. Each process runs under RLIMIT_DATA of that
size (an allocation beyond it raises MemoryError in the model), and each health check sums the
proportional set size (PSS: pages shared copy-on-write between the serving processes are counted
once, split among them) of the instance's processes; an instance over its type's memory is killed
and replaced ("out of memory"), as the kernel's OOM killer would end a container on AWS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

PING_TIMEOUT_SECONDS = 2.0  # SageMaker's documented /ping timeout
MIN_INTERVAL_SECONDS = 0.5
MIN_TIMEOUT_SECONDS = 1.0
PING_REQUEST = b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
WORKER_HOST = "127.0.0.1"


@dataclass(frozen=True)
class HealthCheck:
    """The liveness check of a started instance (AWS seconds unless made with ``at_time_scale``)."""

    interval: float = 10.0
    timeout: float = PING_TIMEOUT_SECONDS
    failures: int = 3  # consecutive failed pings of one process before the instance is replaced

    @classmethod
    def at_time_scale(cls, time_scale: float) -> "HealthCheck":
        """The defaults on the emulator's clock (``Settings.time_scale``), with floors for a busy host."""
        defaults = cls()
        return cls(interval=max(defaults.interval / time_scale, MIN_INTERVAL_SECONDS),
                   timeout=max(defaults.timeout / time_scale, MIN_TIMEOUT_SECONDS),
                   failures=defaults.failures)


async def ping(port: int, timeout: float) -> bool:
    """One ``GET /ping`` on a fresh connection (so it reaches the process that owns ``port``)."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(WORKER_HOST, port)
            writer.write(PING_REQUEST)
            status_line = await reader.readline()
            return status_line.split(b" ", 2)[1:2] == [b"200"]
    except (OSError, asyncio.TimeoutError, IndexError):
        return False
    finally:
        if writer is not None:
            writer.close()


def proportional_set_bytes(pid: int) -> int:
    """A process's PSS from /proc (its RSS where smaps_rollup is missing; 0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return 0
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            import resource

            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0
