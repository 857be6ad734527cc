"""The monitoring scheduler: fires each Scheduled monitoring schedule at its cron hours, and one-time
(``NOW``) schedules at once, by starting an execution (a processing job over the captured data).

Cron hours are real UTC hours, as on AWS (the time scale compresses waits, not the calendar); AWS's
0-20 minute start delay is left out. ``fire_now`` is the test control behind
``POST /_emulator/monitoring-schedules/{name}/executions``: run the schedule as if it fired now.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from sagemaker_emulator.sagemaker.monitoring_schedules import Execution, Monitoring, MonitoringSchedule

log = logging.getLogger(__name__)


class MonitoringScheduler:
    def __init__(self, monitors: Callable[[], Iterable[Monitoring]], tick_seconds: float = 5.0):
        self._monitors = monitors
        self.tick_seconds = tick_seconds
        # Keyed by ARN and time: a schedule deleted and created again under its name starts afresh.
        self._next_fire: dict[tuple[str, float], datetime] = {}
        self._fired_once: set[tuple[str, float]] = set()  # one-time schedules that have run
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                self.tick(datetime.now(timezone.utc))
            except Exception:  # one broken schedule must not stop the others'
                log.exception("monitoring scheduler tick failed")
            await asyncio.sleep(self.tick_seconds)

    def tick(self, now: datetime) -> None:
        for monitoring in self._monitors():
            for schedule in list(monitoring.schedules.values()):
                if schedule.status == "Scheduled":
                    self._maybe_fire(monitoring, schedule, now)

    def _maybe_fire(self, monitoring: Monitoring, schedule: MonitoringSchedule, now: datetime) -> None:
        key = (schedule.arn, schedule.created)
        if schedule.schedule.one_time:
            if key not in self._fired_once:
                self._fired_once.add(key)
                self._start(monitoring, schedule, now)
            return
        # An update, stop or start (a new LastModifiedTime) recomputes the next fire time.
        version = (schedule.arn, schedule.modified)
        due = self._next_fire.setdefault(version, schedule.schedule.next_after(now))
        if now >= due:
            self._next_fire[version] = schedule.schedule.next_after(now)
            self._start(monitoring, schedule, due)

    def _start(self, monitoring: Monitoring, schedule: MonitoringSchedule, scheduled_time: datetime) -> Execution | None:
        try:
            return monitoring.start_execution(schedule, scheduled_time)
        except Exception as error:  # e.g. the endpoint was deleted: the schedule says so instead of running
            schedule.status = "Failed"
            schedule.failure_reason = str(getattr(error, "message", error))
            log.warning("monitoring schedule %s failed: %s", schedule.name, schedule.failure_reason)
            return None

    def fire_now(self, monitoring: Monitoring, name: str) -> Execution:
        schedule = monitoring.get_schedule(name)
        # Whole seconds, as the window's ISO bounds are: rounding up keeps this second's records in it.
        now = datetime.now(timezone.utc)
        return monitoring.start_execution(schedule, now.replace(microsecond=0) + timedelta(seconds=1))
