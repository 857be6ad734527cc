"""Decide the next step that moves an endpoint towards "InService on the target config".

Pure logic, shared by the synchronous and the deferred path of ``DeployEndpointOperator``: the
operator describes the endpoint, asks :func:`plan_next_step`, performs the step, waits, and asks
again until the plan says ``DONE`` or ``FAIL``. Because the decision only depends on what AWS
reports (plus the last action this task took), a re-run converges from any state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Action(str, Enum):
    DONE = "done"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    WAIT_SETTLED = "wait_settled"
    WAIT_DELETED = "wait_deleted"
    FAIL = "fail"


# Statuses that end on their own; anything we do now would be rejected ("Cannot update in-progress endpoint").
TRANSITIONAL_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
# Actions after which the endpoint's next settled state is the verdict on our own deployment.
OWN_DEPLOYMENTS = frozenset({Action.CREATE.value, Action.UPDATE.value})
# A task takes at most delete -> create, or update; more means something else keeps changing the endpoint.
MAX_ACTIONS = 4


@dataclass(frozen=True)
class Step:
    """What to do next and why (the reason is logged, or raised for ``FAIL``)."""

    action: Action
    reason: str


def plan_next_step(
    endpoint: dict[str, Any] | None,
    *,
    endpoint_name: str,
    target_config: str,
    replace_failed: bool,
    actions_taken: list[str],
) -> Step:
    """
    Return the next step for ``endpoint`` (a DescribeEndpoint response, or None if it does not exist).

    :param endpoint_name: the endpoint's name (for messages).
    :param target_config: the EndpointConfigName the endpoint must serve.
    :param replace_failed: delete and re-create an endpoint found ``Failed`` (the only operation AWS
        allows on a failed endpoint is DeleteEndpoint).
    :param actions_taken: actions this task already performed, oldest first.
    """
    if len(actions_taken) >= MAX_ACTIONS:
        return Step(Action.FAIL, f"Endpoint {endpoint_name} did not converge after {actions_taken}.")
    if endpoint is None:
        return Step(Action.CREATE, f"Endpoint {endpoint_name} does not exist; creating it on {target_config}.")

    status = endpoint["EndpointStatus"]
    current_config = endpoint.get("EndpointConfigName")
    reason = endpoint.get("FailureReason") or "no FailureReason given"
    own_deployment = bool(actions_taken) and actions_taken[-1] in OWN_DEPLOYMENTS

    if status in TRANSITIONAL_STATUSES:
        return Step(Action.WAIT_SETTLED, f"Endpoint {endpoint_name} is {status}; waiting for it to settle.")
    if status == "Deleting":
        return Step(Action.WAIT_DELETED, f"Endpoint {endpoint_name} is Deleting; waiting until it is gone.")
    if status == "InService" and current_config == target_config:
        return Step(Action.DONE, f"Endpoint {endpoint_name} is InService on {target_config}.")
    if own_deployment:
        return Step(Action.FAIL, _own_deployment_failure(endpoint_name, status, current_config, target_config, reason))
    if status == "Failed":
        if replace_failed:
            return Step(
                Action.DELETE,
                f"Endpoint {endpoint_name} is Failed ({reason}); AWS only allows deleting a failed endpoint, "
                f"so deleting it and creating it again on {target_config}.",
            )
        return Step(
            Action.FAIL,
            f"Endpoint {endpoint_name} is Failed: {reason}. Delete it, or set replace_failed=True "
            "to let the operator delete and re-create it.",
        )
    if status in {"InService", "UpdateRollbackFailed"}:
        return Step(
            Action.UPDATE,
            f"Endpoint {endpoint_name} is {status} on {current_config}; updating it to {target_config}.",
        )
    return Step(
        Action.FAIL,
        f"Endpoint {endpoint_name} is {status} ({reason}); the operator cannot deploy {target_config} "
        "from this state. Investigate the endpoint, then delete it or re-run.",
    )


def _own_deployment_failure(name: str, status: str, current: str | None, target: str, reason: str) -> str:
    if status == "InService":
        return (
            f"Endpoint {name} is InService on {current}, not on the target {target}: the update was rolled "
            f"back ({reason})."
        )
    return f"Endpoint {name} ended {status} while deploying {target}: {reason}"
