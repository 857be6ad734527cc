"""Deploy an endpoint and change its variants in place, converging from whatever state it is in.

Each operator describes the endpoint, decides the next step (:mod:`sagemaker_ops.endpoint_plan`,
:mod:`sagemaker_ops.variant_weights`), makes one call and waits with the waiters of
``sagemaker_ops/waiters/sagemaker.json``: in the worker, or deferred to the triggerer with the same
waiter name. A re-run after success does nothing; a re-run after a failure picks up where the
endpoint is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowException
from sagemaker_ops.endpoint_plan import TRANSITIONAL_STATUSES, Action, plan_next_step
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook, is_already_exists
from sagemaker_ops.operators.base import WaitingOperator, check_waiter_arguments, store_arguments
from sagemaker_ops.specs import aws_tags, check_resource_name, check_tags
from sagemaker_ops.triggers.sagemaker import (
    ENDPOINT_STATUS_QUERIES,
    EndpointDeletedTrigger,
    EndpointSettledTrigger,
)
from sagemaker_ops.variant_weights import (
    WeightUpdate,
    check_targets,
    current_weights,
    next_update,
    traffic_shares,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class EndpointDeploymentError(AirflowException):
    """The endpoint did not end InService on the target config."""


class _EndpointWaitingOperator(WaitingOperator[SageMakerOpsHook]):
    """
    Waits on one endpoint with the waiters of ``sagemaker_ops/waiters/sagemaker.json``: in the
    worker, or deferred to the triggerer (the same waiter name on both paths). The deferred path
    resumes in ``execute_complete`` with the ``actions_taken`` it carried.
    """

    aws_hook_class = SageMakerOpsHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name")
    # A guard against something else changing the endpoint under us forever.
    max_steps = 12

    @store_arguments
    def __init__(self, *, endpoint_name: str, wait_for_completion: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        return self._converge(actions_taken=[], wait_error=None)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after a deferred wait: judge the endpoint's state again and carry on converging."""
        event = validate_execute_complete_event(event)
        deployment = event.get("deployment") or {}
        wait_error = None if event.get("status") == "success" else str(event.get("message", event))
        self._validate()
        return self._converge(actions_taken=list(deployment.get("actions_taken", [])), wait_error=wait_error)

    def _validate(self) -> None:
        """Check every argument before any AWS call."""
        check_resource_name("endpoint_name", self.endpoint_name)
        self._validate_change()
        check_waiter_arguments(self)

    def _validate_change(self) -> None:
        """Check the arguments that say what to change."""
        raise NotImplementedError

    def _converge(self, actions_taken: list[str], wait_error: str | None) -> dict[str, Any]:
        """Take the next step toward the target state, waiting (or deferring) between steps."""
        raise NotImplementedError

    def _defer(self, deleting: bool, actions_taken: list[str]) -> None:
        trigger_class = EndpointDeletedTrigger if deleting else EndpointSettledTrigger
        self.defer(
            trigger=trigger_class(endpoint_name=self.endpoint_name, actions_taken=actions_taken,
                                  **self.trigger_arguments()),
            method_name="execute_complete",
        )

    def _wait(self, waiter_name: str) -> str | None:
        """Wait synchronously; return None on success, else the waiter's error (judged by the next plan)."""
        try:
            self.hook.wait_with_logging(waiter_name, {"EndpointName": self.endpoint_name},
                                        f"endpoint {self.endpoint_name}", ENDPOINT_STATUS_QUERIES,
                                        self.waiter_delay, self.waiter_max_attempts)
        except AirflowException as error:
            return str(error)
        return None


class DeployEndpointOperator(_EndpointWaitingOperator):
    """
    Make an endpoint serve a given endpoint config: create it, update it, or leave it alone.

    The operator converges from whatever state the endpoint is in:

    * missing: CreateEndpoint, wait;
    * ``Creating``/``Updating``/...: wait, then decide again;
    * ``InService`` on the target config: nothing to do;
    * ``InService`` (or ``UpdateRollbackFailed``) on another config: UpdateEndpoint, wait;
    * ``Failed``: AWS only allows DeleteEndpoint, so with ``replace_failed`` delete, wait until
      gone, create again.

    Success means ``InService`` on ``endpoint_config_name``; anything else fails with the
    endpoint's ``FailureReason`` (an update that was rolled back is a failure, not a success).
    The synchronous and the deferred path wait with the same waiters (``EndpointSettled``,
    ``EndpointDeletionComplete`` in ``sagemaker_ops/waiters/sagemaker.json``).

    Returns ``{"endpoint_name", "endpoint_arn", "endpoint_config_name", "endpoint_status",
    "actions_taken", "changed"}``.

    :param endpoint_name: the endpoint to deploy.
    :param endpoint_config_name: the config the endpoint must serve.
    :param replace_failed: delete and re-create an endpoint found ``Failed`` (logged).
    :param update_endpoint_kwargs: extra UpdateEndpoint arguments, e.g. ``DeploymentConfig`` or
        ``RetainAllVariantProperties``.
    :param tags: tags for a newly created endpoint.
    :param wait_for_completion: wait for the create/update this task starts. Waits that convergence
        needs before it can act (an endpoint already updating, a deletion) always happen.
    :param waiter_delay: seconds between two DescribeEndpoint calls while waiting.
    :param waiter_max_attempts: how many DescribeEndpoint calls before giving up.
    :param deferrable: wait in the triggerer instead of the worker.
    """

    template_fields: Sequence[str] = aws_template_fields(
        *_EndpointWaitingOperator.template_fields, "endpoint_config_name", "update_endpoint_kwargs", "tags"
    )
    template_fields_renderers: ClassVar[dict] = {"update_endpoint_kwargs": "json", "tags": "json"}
    ui_color = "#c8e6c9"

    @store_arguments
    def __init__(
        self,
        *,
        endpoint_config_name: str,
        replace_failed: bool = True,
        update_endpoint_kwargs: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def _validate_change(self) -> None:
        check_resource_name("endpoint_config_name", self.endpoint_config_name)
        if self.update_endpoint_kwargs is not None and not isinstance(self.update_endpoint_kwargs, Mapping):
            raise TypeError(f"update_endpoint_kwargs must be a dict, got {self.update_endpoint_kwargs!r}.")
        check_tags(self.tags)

    def _converge(self, actions_taken: list[str], wait_error: str | None) -> dict[str, Any]:
        """Describe, plan, act, wait; repeat until the plan says done (or fail)."""
        for _ in range(self.max_steps):
            endpoint = self.hook.describe_or_none("endpoint", self.endpoint_name)
            step = plan_next_step(
                endpoint,
                endpoint_name=self.endpoint_name,
                target_config=self.endpoint_config_name,
                replace_failed=self.replace_failed,
                actions_taken=actions_taken,
            )
            self.log.info(step.reason)
            if step.action is Action.DONE:
                return self._result(endpoint, actions_taken)
            if step.action is Action.FAIL:
                raise EndpointDeploymentError(self._with_rollback_alarms(step.reason, endpoint))
            if step.action in (Action.WAIT_SETTLED, Action.WAIT_DELETED) and wait_error:
                raise EndpointDeploymentError(f"{step.reason} Gave up waiting: {wait_error}")
            if not self._act(step.action, actions_taken):
                wait_error = None
                continue  # lost a race (already exists / in progress): look again
            if not self.wait_for_completion and step.action in (Action.CREATE, Action.UPDATE):
                return self._result(self.hook.describe_or_none("endpoint", self.endpoint_name), actions_taken)
            deleting = step.action in (Action.DELETE, Action.WAIT_DELETED)
            if self.deferrable:
                self._defer(deleting, actions_taken)
            wait_error = self._wait("EndpointDeletionComplete" if deleting else "EndpointSettled")
        raise EndpointDeploymentError(
            f"Endpoint {self.endpoint_name} did not converge in {self.max_steps} steps (actions {actions_taken})."
        )

    def _with_rollback_alarms(self, reason: str, endpoint: dict | None) -> str:
        """A guarded update that was rolled back (or whose rollback failed): the reason plus the rollback
        alarms that fired, with their StateReason and what the endpoint serves."""
        from sagemaker_ops.hooks.cloudwatch import CloudWatchHook
        from sagemaker_ops.promotion import rollback_message

        rollback = ((self.update_endpoint_kwargs or {}).get("DeploymentConfig") or {}).get(
            "AutoRollbackConfiguration") or {}
        names = [alarm["AlarmName"] for alarm in rollback.get("Alarms", [])]
        rolled_back = endpoint is not None and (endpoint.get("EndpointStatus") == "UpdateRollbackFailed" or (
            endpoint.get("EndpointStatus") == "InService" and endpoint.get("EndpointConfigName") != self.endpoint_config_name))
        if not names or not rolled_back:
            return reason
        alarms = CloudWatchHook(**self._hook_parameters).describe_alarms(names)
        return f"{reason}\n{rollback_message(endpoint, self.endpoint_config_name, alarms)}"

    def _act(self, action: Action, actions_taken: list[str]) -> bool:
        """Start ``action`` (waits start nothing). Return False if AWS says someone else got there first."""
        if action in (Action.WAIT_SETTLED, Action.WAIT_DELETED):
            return True
        try:
            if action is Action.CREATE:
                self.hook.conn.create_endpoint(
                    EndpointName=self.endpoint_name,
                    EndpointConfigName=self.endpoint_config_name,
                    Tags=aws_tags(self.tags),
                )
            elif action is Action.UPDATE:
                self.hook.conn.update_endpoint(
                    EndpointName=self.endpoint_name,
                    EndpointConfigName=self.endpoint_config_name,
                    **dict(self.update_endpoint_kwargs or {}),
                )
            elif action is Action.DELETE:
                self.hook.delete_endpoint(self.endpoint_name)
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if is_already_exists(error) or "in-progress" in message:
                self.log.info("%s raced with another change (%s); describing again.", action.value, message)
                return False
            raise
        actions_taken.append(action.value)
        return True

    def _result(self, endpoint: dict | None, actions_taken: list[str]) -> dict[str, Any]:
        endpoint = endpoint or {}
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_arn": endpoint.get("EndpointArn"),
            "endpoint_config_name": endpoint.get("EndpointConfigName"),
            "endpoint_status": endpoint.get("EndpointStatus"),
            "actions_taken": list(actions_taken),
            "changed": bool(actions_taken),
        }


class VariantWeightsError(AirflowException):
    """The endpoint did not end InService at the wanted weights and instance counts."""


class UpdateVariantWeightsOperator(_EndpointWaitingOperator):
    """
    Set the traffic weights (and optionally instance counts) of an endpoint's variants in place.

    Calls UpdateEndpointWeightsAndCapacities (no new endpoint config, no redeployment), then waits
    until the endpoint is ``InService`` again with the same ``EndpointSettled`` waiter as
    :class:`DeployEndpointOperator`, in the worker or deferred. It converges: variants already at
    the wanted values are left out of the call, and an endpoint already there is left alone. AWS
    changes the weights of several variants, or the capacity of one, per call, so weight changes go
    in one call and each instance-count change in its own (see
    :mod:`sagemaker_ops.variant_weights`). An endpoint that is ``Updating`` is waited for first; a
    change that does not take effect fails with the endpoint's ``FailureReason``.

    Returns ``{"endpoint_name", "weights", "instance_counts", "traffic_shares", "actions_taken",
    "changed"}`` (weights, counts and shares are the endpoint's current ones, per variant).

    :param endpoint_name: the endpoint whose variants change.
    :param weights: variant name to weight (>= 0), e.g. ``{"Champion": 1, "Challenger": 9}``.
        Traffic share is weight over the sum of weights. Variants not named keep theirs.
    :param instance_counts: variant name to instance count (>= 1), for instance-based variants.
    :param wait_for_completion: wait until each change is in service.
    :param waiter_delay: seconds between two DescribeEndpoint calls while waiting.
    :param waiter_max_attempts: how many DescribeEndpoint calls before giving up.
    :param deferrable: wait in the triggerer instead of the worker.
    """

    template_fields: Sequence[str] = aws_template_fields(*_EndpointWaitingOperator.template_fields, "weights",
                                                         "instance_counts")
    template_fields_renderers: ClassVar[dict] = {"weights": "json", "instance_counts": "json"}
    ui_color = "#ffe0b2"

    # Weights take one call, instance counts one call each; more steps (max_steps) mean something else
    # is changing the endpoint.

    @store_arguments
    def __init__(
        self,
        *,
        weights: dict[str, float] | None = None,
        instance_counts: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def _validate_change(self) -> None:
        if not self.weights and not self.instance_counts:
            raise ValueError("Pass weights and/or instance_counts (variant name to value); both are empty.")
        for field, minimum in (("weights", 0), ("instance_counts", 1)):
            values = getattr(self, field) or {}
            if not isinstance(values, Mapping):
                raise TypeError(f"{field} must map variant names to numbers, got {values!r}.")
            for name, value in values.items():
                check_resource_name(f"{field} variant name", name)
                wanted_type = int if field == "instance_counts" else int | float
                if not isinstance(value, wanted_type) or isinstance(value, bool) or value < minimum:
                    kind = "an integer" if field == "instance_counts" else "a number"
                    raise ValueError(f"{field}[{name!r}] must be {kind} >= {minimum}, got {value!r}.")

    def _converge(self, actions_taken: list[str], wait_error: str | None) -> dict[str, Any]:
        """Describe, decide, call, wait; repeat until the endpoint serves the wanted weights."""
        for _ in range(self.max_steps):
            endpoint = self.hook.describe_or_none("endpoint", self.endpoint_name)
            if endpoint is None:
                raise VariantWeightsError(f"Endpoint {self.endpoint_name} does not exist; deploy it first.")
            status, reason = endpoint["EndpointStatus"], endpoint.get("FailureReason") or "no FailureReason given"
            if status in TRANSITIONAL_STATUSES:
                if wait_error:
                    raise VariantWeightsError(f"Endpoint {self.endpoint_name} is still {status}: {wait_error}")
                self.log.info("Endpoint %s is %s; waiting for it to settle.", self.endpoint_name, status)
                wait_error = self._settle(actions_taken)
                continue
            if status != "InService":
                raise VariantWeightsError(
                    f"Endpoint {self.endpoint_name} is {status} ({reason}); variant weights change only on an "
                    "InService endpoint."
                )
            check_targets(endpoint, self.weights, self.instance_counts)
            update = next_update(endpoint, self.weights, self.instance_counts)
            if update is None:
                self.log.info("Endpoint %s serves the wanted weights %s.", self.endpoint_name,
                              current_weights(endpoint))
                return self._result(endpoint, actions_taken)
            if actions_taken and actions_taken[-1] == update.description:
                raise VariantWeightsError(
                    f"UpdateEndpointWeightsAndCapacities ({update.description}) did not take effect on endpoint "
                    f"{self.endpoint_name}: {reason}."
                )
            if not self._call(update):
                continue  # the endpoint started updating under us: wait for it, then decide again
            actions_taken.append(update.description)
            if not self.wait_for_completion:
                return self._result(self.hook.describe_or_none("endpoint", self.endpoint_name) or {}, actions_taken)
            wait_error = self._settle(actions_taken)
        raise VariantWeightsError(
            f"Endpoint {self.endpoint_name} did not converge in {self.max_steps} steps (actions {actions_taken})."
        )

    def _call(self, update: WeightUpdate) -> bool:
        self.log.info("Endpoint %s: UpdateEndpointWeightsAndCapacities %s", self.endpoint_name, update.description)
        try:
            self.hook.conn.update_endpoint_weights_and_capacities(
                EndpointName=self.endpoint_name, DesiredWeightsAndCapacities=update.desired
            )
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if "in-progress" in message:
                self.log.info("Endpoint %s is being changed by someone else (%s).", self.endpoint_name, message)
                return False
            raise
        return True

    def _settle(self, actions_taken: list[str]) -> str | None:
        if self.deferrable:
            self._defer(False, actions_taken)
        return self._wait("EndpointSettled")

    def _result(self, endpoint: Mapping[str, Any], actions_taken: list[str]) -> dict[str, Any]:
        variants = endpoint.get("ProductionVariants", [])
        weights = current_weights(endpoint)
        return {
            "endpoint_name": self.endpoint_name,
            "weights": weights,
            "instance_counts": {v["VariantName"]: v["CurrentInstanceCount"] for v in variants
                                if "CurrentInstanceCount" in v},
            "traffic_shares": {name: round(share, 6) for name, share in traffic_shares(weights).items()},
            "actions_taken": list(actions_taken),
            "changed": bool(actions_taken),
        }
