"""One Inference Recommender load test: closed-model users invoking an endpoint, measured per window.

A *user* is what AWS calls "a system-generated actor that runs in a loop and invokes requests": it sends
the next sample payload as soon as its previous request is answered. Users invoke through the emulator's
own router (``Router.invoke``), the path every InvokeEndpoint takes, so a latency includes routing.

Each window of the traffic pattern (a stair, or a minute of a phase) is measured on its own, in real
seconds: invocations per minute are the requests answered in the window divided by its real length,
times 60. Only the window's *length* follows the emulator's time scale. CPU and memory are read from
/proc for the serving processes of the endpoint's instances.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence

from sagemaker_emulator.controllers.alarm_rules import percentile as nearest_rank
from sagemaker_emulator.sagemaker.recommendations import StoppingRules

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FLAT_GAIN = 0.05  # invocations grew by less than this from one window to the next: they have flattened
ERROR_PAUSE_SECONDS = 0.01  # a user whose request failed at once (throttled) waits this long before the next


@dataclass
class Window:
    """What one window of the load test measured."""

    users: int
    seconds: float = 0.0  # real seconds
    latencies_ms: list[float] = field(default_factory=list)  # answered requests
    errors: int = 0
    cpu_seconds: float = 0.0  # the instances' serving processes
    memory_bytes: int = 0  # their proportional set size at the window's end
    emulator_cpu_seconds: float = 0.0  # the emulator's own process: router and users

    @property
    def invocations_per_minute(self) -> float:
        return len(self.latencies_ms) / self.seconds * 60 if self.seconds > 0 else 0.0

    def latency_ms(self, percentile: str) -> float:
        """Nearest-rank percentile ("P95") of the answered requests' latencies."""
        value = nearest_rank(self.latencies_ms, float(percentile.lstrip("Pp")))
        return math.nan if value is None else value


def stop_reason(windows: Sequence[Window], rules: StoppingRules) -> str | None:
    """Why the load test stops after its latest window, or None to go on."""
    latest = windows[-1]
    if rules.latency_threshold_ms is not None and latest.latency_ms(rules.percentile) > rules.latency_threshold_ms:
        return (f"{rules.percentile} latency {latest.latency_ms(rules.percentile):.0f} ms exceeded the "
                f"{rules.latency_threshold_ms} ms threshold")
    if rules.max_invocations is not None and latest.invocations_per_minute >= rules.max_invocations:
        return f"reached MaxInvocations ({rules.max_invocations} per minute)"
    if rules.stop_when_flat and len(windows) > 1 and \
            latest.invocations_per_minute < windows[-2].invocations_per_minute * (1 + FLAT_GAIN):
        return "invocations flattened"
    return None


def chosen_window(windows: Sequence[Window], rules: StoppingRules, reason: str | None) -> Window:
    """The window the results are read at: where invocations first level out (the window before the flat
    one), else the most invocations among the windows within the latency threshold."""
    if reason == "invocations flattened":
        return windows[-2]
    eligible = [w for w in windows if w.latencies_ms]  # the caller has checked that one window has answers
    if rules.latency_threshold_ms is not None:
        eligible = [w for w in eligible if w.latency_ms(rules.percentile) <= rules.latency_threshold_ms] or eligible[:1]
    return max(eligible, key=lambda w: w.invocations_per_minute)


def process_cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User plus system CPU time of each live process, from /proc/<pid>/stat."""
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return found


Invoke = Callable[[bytes], Awaitable[None]]


class LoadTest:
    """Runs users against one endpoint window by window; ``pids()`` names its serving processes now."""

    def __init__(self, invoke: Invoke, payloads: Sequence[bytes], pids: Callable[[], list[int]],
                 memory_bytes: Callable[[list[int]], int]):
        self._invoke = invoke
        self._payloads = itertools.cycle(payloads)
        self._pids = pids
        self._memory_bytes = memory_bytes
        self._users: list[asyncio.Task] = []
        self._retired: list[asyncio.Task] = []
        self._window: Window | None = None
        self.first_error: str | None = None

    async def run_window(self, users: int, seconds: float, stopped: asyncio.Event) -> Window:
        """Hold ``users`` users for ``seconds`` real seconds (less if ``stopped`` is set) and measure."""
        window = Window(users)
        self._window = window
        self._set_users(users)
        pids = self._pids()
        cpu_before, own_before = process_cpu_seconds(pids), process_cpu_seconds([os.getpid()])
        started = time.perf_counter()
        try:
            await asyncio.wait_for(stopped.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        window.seconds = time.perf_counter() - started
        self._window = None  # requests answered from now on belong to the next window
        cpu_after = process_cpu_seconds(pids)
        window.cpu_seconds = sum(cpu_after[p] - cpu_before[p] for p in cpu_after if p in cpu_before)
        window.emulator_cpu_seconds = sum(process_cpu_seconds([os.getpid()]).values()) - sum(own_before.values())
        window.memory_bytes = self._memory_bytes(pids)
        return window

    def _set_users(self, count: int) -> None:
        while len(self._users) < count:
            self._users.append(asyncio.get_running_loop().create_task(self._user()))
        while len(self._users) > count:  # fewer users in a new phase: the last ones leave
            task = self._users.pop()
            task.cancel()
            self._retired.append(task)

    async def _user(self) -> None:
        while True:
            body = next(self._payloads)
            started = time.perf_counter()
            try:
                await self._invoke(body)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - an error is counted, and the user goes on
                self.first_error = self.first_error or f"{type(error).__name__}: {error}"
                if self._window is not None:
                    self._window.errors += 1
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            if self._window is not None:
                self._window.latencies_ms.append((time.perf_counter() - started) * 1000)

    async def close(self) -> None:
        tasks = self._users + self._retired
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._users, self._retired = [], []
