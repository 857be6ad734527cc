"""Guarded promotion of a new endpoint config: the alarms it watches, and the UpdateEndpoint it makes.

:class:`EnsurePromotionAlarmsOperator` writes the CloudWatch alarms of a promotion (only those that
are missing or differ); :class:`PromoteEndpointOperator` runs UpdateEndpoint with a DeploymentConfig
(all-at-once, canary, linear or rolling, with AutoRollbackConfiguration) and judges the outcome: only
``InService`` on the target config is a success. An auto-rollback fails the task, naming the alarms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowFailException
from sagemaker_ops.hooks.cloudwatch import CloudWatchHook
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook
from sagemaker_ops.operators.base import SageMakerOpsOperator, store_arguments
from sagemaker_ops.operators.sagemaker_endpoint import _EndpointWaitingOperator
from sagemaker_ops.pipeline.promotion_section import parse_alarms, parse_promotion
from sagemaker_ops.promotion import alarm_requests, deployment_config, judge, rollback_message
from sagemaker_ops.specs import check_resource_name

if TYPE_CHECKING:
    from airflow.sdk import Context


PREVIOUS_MARK = "previous:"  # an actions_taken entry naming the config served before this task's update


class PromotionFailed(AirflowFailException):
    """A promotion did not end InService on its target config (a rollback, or a broken endpoint).

    A fail exception: retrying would only deploy the same version into the same alarms again."""


def variant_names_of(hook: SageMakerOpsHook, endpoint_name: str) -> list[str]:
    """The production variants the endpoint serves now (the alarms watch each of them)."""
    endpoint = hook.describe_or_none("endpoint", endpoint_name)
    if endpoint is None:
        raise PromotionFailed(f"Endpoint {endpoint_name} does not exist; a promotion's alarms watch a live endpoint.")
    return [variant["VariantName"] for variant in endpoint.get("ProductionVariants", [])]


class EnsurePromotionAlarmsOperator(SageMakerOpsOperator[CloudWatchHook]):
    """
    Ensure the CloudWatch alarms a promotion watches exist as specified: missing ones are created,
    changed ones updated in place (PutMetricAlarm), equal ones left alone, so a re-run changes nothing.

    ``AWS/SageMaker`` metrics are watched per variant of the endpoint; ``fleet: green`` alarms add the
    ``EndpointConfigName`` dimension of ``endpoint_config_name`` (the new fleet's metrics only).

    Returns ``{"endpoint_name", "alarm_names", "created", "updated", "unchanged"}``.

    :param endpoint_name: the endpoint being promoted.
    :param alarms: alarm specs, as under ``promotion.alarms`` in a pipeline file.
    :param endpoint_config_name: the config being promoted (needed by ``fleet: green`` alarms).
    :param variant_names: the variants to watch; default: the endpoint's current variants.
    """

    aws_hook_class = CloudWatchHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "alarms", "endpoint_config_name",
                                                         "variant_names")
    template_fields_renderers: ClassVar[dict] = {"alarms": "json"}
    ui_color = "#fff3e0"

    @store_arguments
    def __init__(self, *, endpoint_name: str, alarms: list[dict[str, Any]], endpoint_config_name: str | None = None,
                 variant_names: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        check_resource_name("endpoint_name", self.endpoint_name)
        if self.endpoint_config_name is not None:
            check_resource_name("endpoint_config_name", self.endpoint_config_name)
        specs = parse_alarms(self.alarms)
        variants = list(self.variant_names or variant_names_of(SageMakerOpsHook(**self._hook_parameters),
                                                               self.endpoint_name))
        requests = alarm_requests(specs, self.endpoint_name, variants, self.endpoint_config_name)
        outcome = self.hook.ensure_alarms(requests)
        self.log.info("Promotion alarms of %s: %s", self.endpoint_name,
                      ", ".join(f"{len(names)} {what}" for what, names in outcome.items()))
        return {"endpoint_name": self.endpoint_name, "alarm_names": [request["AlarmName"] for request in requests],
                **outcome}


class PromoteEndpointOperator(_EndpointWaitingOperator):
    """
    Promote an endpoint to a new endpoint config with a guarded UpdateEndpoint, and judge the outcome.

    The DeploymentConfig comes from ``promotion`` (the ``promotion:`` section of a pipeline file:
    ``all_at_once``, ``canary``, ``linear`` or ``rolling``, its sizes and waits), with
    ``AutoRollbackConfiguration`` listing ``alarm_names``. The task then waits, in the worker or deferred
    (the ``EndpointSettled`` waiter on both paths), and decides from DescribeEndpoint:

    * ``InService`` on ``endpoint_config_name``: success;
    * ``InService`` on another config after our update: SageMaker rolled back; the task fails naming the
      alarm(s), their StateReason and the config the endpoint serves (never a success);
    * ``UpdateRollbackFailed``, ``Failed``: fails loudly with the FailureReason.

    Idempotent: an endpoint already on the target config is left alone (``changed: false``); an update
    already in progress is waited for, not started again.

    Returns ``{"endpoint_name", "endpoint_config_name", "previous_endpoint_config_name", "strategy",
    "deployment_config", "alarm_names", "endpoint_status", "actions_taken", "changed"}``.

    :param endpoint_name: the live endpoint.
    :param endpoint_config_name: the config to promote.
    :param promotion: the promotion section, as a dict (``strategy``, ``canary_size``, ..., ``alarms``).
    :param alarm_names: the AutoRollbackConfiguration alarms; default: the names
        :class:`EnsurePromotionAlarmsOperator` gives the promotion's alarms.
    :param retain_variant_properties: RetainAllVariantProperties: the variants keep their live instance counts
        and weights (an autoscaled count survives the promotion) instead of the new config's.
    :param wait_for_completion: wait for the deployment and judge it (else return once it started).
    :param waiter_delay: seconds between two DescribeEndpoint calls while waiting.
    :param waiter_max_attempts: how many DescribeEndpoint calls before giving up.
    :param deferrable: wait in the triggerer instead of the worker.
    """

    template_fields: Sequence[str] = aws_template_fields(
        *_EndpointWaitingOperator.template_fields, "endpoint_config_name", "promotion", "alarm_names")
    template_fields_renderers: ClassVar[dict] = {"promotion": "json"}
    ui_color = "#b2dfdb"

    @store_arguments
    def __init__(self, *, endpoint_config_name: str, promotion: dict[str, Any], alarm_names: list[str] | None = None,
                 retain_variant_properties: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def _validate_change(self) -> None:
        check_resource_name("endpoint_config_name", self.endpoint_config_name)
        self._promotion = parse_promotion(self.promotion)
        waited = self.waiter_delay * self.waiter_max_attempts
        if self.wait_for_completion and waited < self._promotion.max_execution_timeout_seconds:
            # Giving up first would leave the deployment running unjudged.
            raise ValueError(f"waiter_delay x waiter_max_attempts ({waited} s) must cover the deployment's "
                             f"max_execution_timeout_seconds ({self._promotion.max_execution_timeout_seconds} s); "
                             "raise waiter_max_attempts.")

    def _converge(self, actions_taken: list[str], wait_error: str | None) -> dict[str, Any]:
        previous = None
        for _ in range(self.max_steps):
            endpoint = self.hook.describe_or_none("endpoint", self.endpoint_name)
            verdict = judge(endpoint, self.endpoint_config_name)
            self.log.info(verdict.reason)
            if verdict.action == "done":
                return self._result(endpoint, previous, actions_taken)
            if verdict.action == "fail":
                raise PromotionFailed(self._with_alarms(verdict.reason, endpoint))
            if verdict.action == "update" and {"update", "joined"} & set(actions_taken):
                raise PromotionFailed(rollback_message(endpoint, self.endpoint_config_name, self._alarm_states()))
            if verdict.action == "wait":
                if wait_error:
                    raise PromotionFailed(f"{verdict.reason} Gave up waiting: {wait_error}")
                pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
                if pending == self.endpoint_config_name and "update" not in actions_taken:
                    actions_taken.append("joined")  # an earlier try's deployment: its outcome is ours
            else:
                previous = endpoint.get("EndpointConfigName")
                if not self._update(actions_taken):
                    continue
                # Carried through a deferral (the trigger hands actions_taken back) for the result.
                actions_taken.append(f"{PREVIOUS_MARK}{previous}")
                if not self.wait_for_completion:
                    return self._result(self.hook.describe_or_none("endpoint", self.endpoint_name), previous,
                                        actions_taken)
            if self.deferrable:
                self._defer(False, actions_taken)
            wait_error = self._wait("EndpointSettled")
        raise PromotionFailed(f"Endpoint {self.endpoint_name} did not settle in {self.max_steps} steps "
                              f"(actions {actions_taken}).")

    def _update(self, actions_taken: list[str]) -> bool:
        """UpdateEndpoint with the DeploymentConfig; False when the endpoint started changing under us."""
        request = deployment_config(self._promotion, self._alarm_names())
        self.log.info("UpdateEndpoint %s -> %s with %s", self.endpoint_name, self.endpoint_config_name, request)
        try:
            self.hook.conn.update_endpoint(EndpointName=self.endpoint_name,
                                           EndpointConfigName=self.endpoint_config_name, DeploymentConfig=request,
                                           RetainAllVariantProperties=self.retain_variant_properties)
        except ClientError as error:
            if "in-progress" in error.response.get("Error", {}).get("Message", ""):
                return False
            raise
        actions_taken.append("update")
        return True

    def _alarm_names(self) -> list[str]:
        if self.alarm_names is not None:
            return list(self.alarm_names)
        variants = variant_names_of(self.hook, self.endpoint_name)
        requests = alarm_requests(self._promotion.alarms, self.endpoint_name, variants, self.endpoint_config_name)
        return [request["AlarmName"] for request in requests]

    def _alarm_states(self) -> list[dict[str, Any]]:
        return CloudWatchHook(**self._hook_parameters).describe_alarms(self._alarm_names())

    def _with_alarms(self, reason: str, endpoint: dict[str, Any] | None) -> str:
        if endpoint is None or endpoint.get("EndpointStatus") != "UpdateRollbackFailed":
            return reason
        fired = [f"Alarm {a['AlarmName']} is {a['StateValue']}: {a.get('StateReason')}" for a in self._alarm_states()
                 if a.get("StateValue") == "ALARM"]
        return "\n".join([reason, *fired])

    def _result(self, endpoint: dict[str, Any] | None, previous: str | None, actions_taken: list[str]) -> dict:
        endpoint = endpoint or {}
        marks = [action.removeprefix(PREVIOUS_MARK) for action in actions_taken if action.startswith(PREVIOUS_MARK)]
        previous = previous or (marks[-1] if marks else None)
        actions_taken = [action for action in actions_taken if not action.startswith(PREVIOUS_MARK)]
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_config_name": endpoint.get("EndpointConfigName"),
            "previous_endpoint_config_name": previous,
            "strategy": self._promotion.strategy,
            "deployment_config": deployment_config(self._promotion, []),
            "alarm_names": self._alarm_names() if actions_taken else [],
            "endpoint_status": endpoint.get("EndpointStatus"),
            "actions_taken": list(actions_taken),
            "changed": "update" in actions_taken,
        }


class ShiftTrafficOperator(_EndpointWaitingOperator):
    """
    Shift traffic from one live variant to another in steps, checking alarms while each step bakes.

    Each step sets the weights to ``{to_variant: p, from_variant: 100 - p}`` with
    UpdateEndpointWeightsAndCapacities (no redeployment), waits until the endpoint is ``InService``
    (``EndpointSettled``), then bakes ``bake_seconds`` looking at ``alarm_names`` every
    ``alarm_check_seconds``. An alarm in ``ALARM`` restores the weights the endpoint had before the
    task, waits for them, and fails the task naming the alarms and their StateReason. A re-run skips
    the steps already behind the endpoint's current weights.

    Returns ``{"endpoint_name", "weights", "steps_done", "alarm_names", "changed"}``.

    :param endpoint_name: the live endpoint with both variants.
    :param from_variant: the variant that gives up traffic.
    :param to_variant: the variant that takes it.
    :param steps: the percentages of traffic ``to_variant`` gets, ascending, e.g. ``[10, 50, 100]``.
    :param bake_seconds: how long each step serves before the next (alarms checked throughout).
    :param alarm_names: CloudWatch alarms that stop and roll back the shift.
    :param alarm_check_seconds: seconds between two DescribeAlarms calls while baking.
    """

    template_fields: Sequence[str] = aws_template_fields(
        *_EndpointWaitingOperator.template_fields, "from_variant", "to_variant", "steps", "bake_seconds", "alarm_names")
    ui_color = "#ffe0b2"

    @store_arguments
    def __init__(self, *, from_variant: str, to_variant: str, steps: list[int], bake_seconds: int = 60,
                 alarm_names: list[str] | None = None, alarm_check_seconds: int = 5, **kwargs: Any) -> None:
        kwargs.setdefault("deferrable", False)  # the bake polls alarms between steps: it runs in the worker
        super().__init__(**kwargs)

    def _validate_change(self) -> None:
        check_resource_name("from_variant", self.from_variant)
        check_resource_name("to_variant", self.to_variant)
        if self.from_variant == self.to_variant:
            raise ValueError("from_variant and to_variant must differ.")
        steps = list(self.steps or [])
        if not steps or any(not isinstance(s, int) or isinstance(s, bool) or not 1 <= s <= 100 for s in steps) \
                or steps != sorted(set(steps)):
            raise ValueError(f"steps must be ascending integer percentages from 1 to 100, got {self.steps!r}.")
        if not isinstance(self.bake_seconds, int) or self.bake_seconds < 0:
            raise ValueError(f"bake_seconds must be an integer >= 0, got {self.bake_seconds!r}.")

    def _converge(self, actions_taken: list[str], wait_error: str | None) -> dict[str, Any]:
        endpoint = self._settled()
        weights = {v["VariantName"]: float(v["CurrentWeight"]) for v in endpoint["ProductionVariants"]}
        for variant in (self.from_variant, self.to_variant):
            if variant not in weights:
                raise PromotionFailed(f"Endpoint {self.endpoint_name} has no variant {variant} "
                                      f"(it has {', '.join(weights)}).")
        original = dict(weights)
        total = weights[self.from_variant] + weights[self.to_variant]
        share = 100 * weights[self.to_variant] / total if total else 0
        cloudwatch = CloudWatchHook(**self._hook_parameters)
        done = []
        for step in self.steps:
            if step <= share + 1e-9:
                continue  # an earlier try got this far
            self._set_weights({self.to_variant: float(step), self.from_variant: float(100 - step)})
            actions_taken.append(f"shift to {step}%")
            fired = self._bake(cloudwatch)
            if fired:
                self.log.warning("Alarm(s) fired at %s%%: restoring weights %s", step, original)
                self._set_weights(original)
                raise PromotionFailed("\n".join([
                    f"Traffic shift of endpoint {self.endpoint_name} to {self.to_variant} stopped at {step}% and was "
                    f"rolled back to weights {original}.",
                    *(f"Alarm {a['AlarmName']} is ALARM: {a.get('StateReason')}" for a in fired)]))
            done.append(step)
        final = self._settled()
        return {"endpoint_name": self.endpoint_name,
                "weights": {v["VariantName"]: float(v["CurrentWeight"]) for v in final["ProductionVariants"]},
                "steps_done": done, "alarm_names": list(self.alarm_names or []), "changed": bool(done)}

    def _settled(self) -> dict[str, Any]:
        error = self._wait("EndpointSettled")
        endpoint = self.hook.describe_or_none("endpoint", self.endpoint_name)
        if error or endpoint is None or endpoint["EndpointStatus"] != "InService":
            raise PromotionFailed(f"Endpoint {self.endpoint_name} is not InService: "
                                  f"{error or (endpoint or {}).get('FailureReason')}")
        return endpoint

    def _set_weights(self, weights: dict[str, float]) -> None:
        self.hook.conn.update_endpoint_weights_and_capacities(
            EndpointName=self.endpoint_name,
            DesiredWeightsAndCapacities=[{"VariantName": name, "DesiredWeight": weight}
                                         for name, weight in weights.items()])
        self._settled()

    def _bake(self, cloudwatch: CloudWatchHook) -> list[dict[str, Any]]:
        """Serve ``bake_seconds``, looking at the alarms; the alarms in ALARM as soon as there is one."""
        import time

        deadline = time.monotonic() + self.bake_seconds
        while True:
            if self.alarm_names:
                fired = [a for a in cloudwatch.describe_alarms(list(self.alarm_names)) if a["StateValue"] == "ALARM"]
                if fired:
                    return fired
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(self.alarm_check_seconds, remaining))
