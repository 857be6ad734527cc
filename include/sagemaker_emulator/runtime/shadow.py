"""A shadow variant's data path: a copy of a share of the requests, served off the caller's path.

The router answers the caller from the production variant only. For a drawn share of requests it also
starts a copy on the shadow fleet as a task of its own, so the caller's latency never includes the
shadow, and whatever the shadow answers (an error, a timeout) never reaches the caller. The copy's
invocation, latency and errors are counted under the shadow's variant name, and its answer captured
under that name when data capture is on (``Router.serve_shadow_copy``).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Coroutine

from sagemaker_emulator.runtime.fleet import Fleet


@dataclass
class ShadowRoute:
    """The shadow fleet of one endpoint and the share of requests copied to it (0..1)."""

    fleet: Fleet
    share: float
    _copies: set[asyncio.Task] = field(default_factory=set)

    def draws_copy(self) -> bool:
        return self.share >= 1.0 or random.random() < self.share

    def start(self, copy: Coroutine[None, None, None]) -> None:
        """Run one copy in the background; keep a reference so it is neither collected nor lost at close."""
        task = asyncio.get_running_loop().create_task(copy)
        self._copies.add(task)
        task.add_done_callback(self._copies.discard)

    async def close(self) -> None:
        """Stop the fleet once the copies in flight have been answered (or have failed)."""
        await asyncio.gather(*list(self._copies), return_exceptions=True)
        await self.fleet.close()
