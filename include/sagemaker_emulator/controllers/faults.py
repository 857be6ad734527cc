"""Test-only fault injection: make the next step of an endpoint's task raise, to prove that failures are
never silent (the endpoint ends with a FailureReason, nothing is left running).

Armed through ``POST /_emulator/faults`` (never through the AWS surface). A fault fires once, at the
named stage of the named endpoint's next task, after that task started its worker processes.
"""

from __future__ import annotations

# "rollback": a rolling update's rollback, after it restored a batch of the old fleet
STAGES = ("create", "update", "update_variants", "delete", "rollback")


class InjectedFault(RuntimeError):
    """What an armed fault raises: an unexpected error, as a bug or a broken host would cause."""


class FaultInjector:
    def __init__(self) -> None:
        self._armed: dict[tuple[str, str, str], str] = {}  # (stage, region, endpoint) -> message

    def arm(self, stage: str, region: str, endpoint: str, message: str) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        if not endpoint:
            raise ValueError("endpoint is required: the name of the endpoint whose task should fail")
        self._armed[(stage, region, endpoint.lower())] = message or f"injected fault at {stage}"

    def check(self, stage: str, region: str, endpoint: str) -> None:
        message = self._armed.pop((stage, region, endpoint.lower()), None)
        if message is not None:
            raise InjectedFault(message)
