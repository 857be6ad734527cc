"""A client that keeps calling an endpoint from a background thread while something else happens.

Demos, benchmarks and tests use it to invoke an endpoint throughout a deployment, a promotion or a
scaling activity and count what the callers saw. (Load tests that measure capacity use the Locust
generator of this package instead.)
"""

from __future__ import annotations

import threading
import time
from typing import Any


class BackgroundCalls:
    """Runs ``self.call()`` over and over from a daemon thread while the ``with`` block lasts.

    Back to back by default; ``per_second`` paces the calls on a fixed timeline (a slow answer does not
    push the later calls back); ``pause_seconds`` waits between calls. An exception from ``call`` goes to
    ``failed`` (kept in ``errors`` unless a subclass says otherwise) and the calls go on, as a real
    client's would. Subclasses implement ``call`` and keep what they want of its answers.
    """

    def __init__(self, per_second: float | None = None, pause_seconds: float = 0.0):
        self.interval = 1.0 / per_second if per_second else None
        self.pause_seconds = pause_seconds
        self.errors: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def call(self) -> None:
        raise NotImplementedError

    def failed(self, error: Exception) -> None:
        self.errors.append(error)

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                self.call()
            except Exception as error:  # noqa: BLE001 - every failure is the caller's to count
                self.failed(error)
            if self.interval is not None:
                due += self.interval
                self._stop.wait(max(0.0, due - time.monotonic()))
            elif self.pause_seconds:
                self._stop.wait(self.pause_seconds)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
