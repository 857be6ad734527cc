"""Autoscaling of an endpoint's variants: apply a ``scaling:`` spec idempotently, and step aside for updates.

:class:`ApplyScalingOperator` converges each variant's scalable target, scaling policies, step alarms and
scheduled actions on the spec: it describes what exists and writes only what is missing or differs, so a
re-run makes no write at all. :class:`ReleaseScalingForUpdateOperator` deregisters the targets that an
UpdateEndpoint would be refused for (an instance-type change or a removed variant); the release applies
scaling again after the deploy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sagemaker_ops.hooks.application_autoscaling import ApplicationAutoScalingHook
from sagemaker_ops.hooks.cloudwatch import CloudWatchHook
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook
from sagemaker_ops.operators.base import SageMakerOpsOperator, check_positive, store_arguments
from sagemaker_ops.pipeline.fields import FieldReader, PipelineConfigError
from sagemaker_ops.pipeline.scaling_section import VariantScalingSpec, check_scaling_fits_endpoint, parse_scaling
from sagemaker_ops.promotion import alarm_differs
from sagemaker_ops.scaling import (
    policy_differs,
    policy_requests,
    register_request,
    scheduled_action_differs,
    scheduled_action_requests,
    step_alarm_prefix,
    step_alarm_requests,
    target_differs,
    target_key,
    variant_key,
    with_target_value,
)
from sagemaker_ops.specs import check_resource_name
from sagemaker_rules.scaling_rules import resource_id

if TYPE_CHECKING:
    from airflow.sdk import Context


class ScalingError(AirflowFailException):
    """The endpoint cannot be scaled as specified (missing, not serving the variants, or refused by AWS)."""


def live_endpoint(hook: SageMakerOpsHook, endpoint_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """DescribeEndpoint and DescribeEndpointConfig of the config it serves."""
    endpoint = hook.describe_or_none("endpoint", endpoint_name)
    if endpoint is None:
        raise ScalingError(f"Endpoint {endpoint_name} does not exist; deploy it before applying scaling.")
    config = hook.describe_or_none("endpoint_config", endpoint["EndpointConfigName"]) or {}
    return endpoint, config


def endpoint_view(config: dict[str, Any]) -> SimpleNamespace:
    """The live endpoint as the scaling section's cross-checks read a pipeline's ``endpoint:`` section."""
    variants = []
    for variant in config.get("ProductionVariants", []):
        serverless = variant.get("ServerlessConfig")
        variants.append(SimpleNamespace(
            name=variant["VariantName"], instance_count=None,  # the live count is the autoscaler's to change
            serverless=SimpleNamespace(max_concurrency=serverless["MaxConcurrency"],
                                       provisioned_concurrency=serverless.get("ProvisionedConcurrency"))
            if serverless else None))
    return SimpleNamespace(variants=variants, async_inference=config.get("AsyncInferenceConfig"))


class ApplyScalingOperator(SageMakerOpsOperator[ApplicationAutoScalingHook]):
    """
    Apply a ``scaling:`` spec (the pipeline file's section) to a live endpoint, idempotently.

    For each variant: RegisterScalableTarget (instances, or provisioned concurrency for a serverless
    variant) when min/max differ; PutScalingPolicy for each target-tracking and step policy that is
    missing or differs; PutMetricAlarm for each step policy's alarm (AlarmActions = the policy's ARN);
    PutScheduledAction likewise. Policies, step alarms and scheduled actions of the target that the spec
    no longer names are deleted, and (with ``deregister_unlisted``) variants the spec no longer names
    are deregistered. Identical items are not written again: a re-run makes no write call. (A scheduled
    action that has since changed the target's min/max is put back to the spec's range by a re-run, as
    RegisterScalableTarget does anywhere; the action's range returns when it next fires.)

    The spec is checked before any write, against AWS's rules and the live endpoint (a serverless
    variant scales by provisioned concurrency, only an asynchronous endpoint may scale to zero, ...).
    AWS registers a target only on an ``InService`` endpoint: an endpoint still updating is waited for.

    Returns ``{"endpoint_name", "resource_ids", "policy_arns", "alarm_names", "changes", "changed"}``.

    :param endpoint_name: the live endpoint.
    :param scaling: the ``scaling:`` section, as a dict (``{"variants": [...]}``).
    :param target_value: overrides the target value of every target-tracking policy on
        ``SageMakerVariantInvocationsPerInstance`` (e.g. derived from a benchmark's measured capacity).
    :param deregister_unlisted: deregister the endpoint's variants that the spec does not name.
    :param waiter_delay: seconds between two DescribeEndpoint calls while waiting for InService.
    :param waiter_max_attempts: how many DescribeEndpoint calls before giving up.
    """

    aws_hook_class = ApplicationAutoScalingHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "scaling", "target_value")
    template_fields_renderers: ClassVar[dict] = {"scaling": "json"}
    ui_color = "#f3e5f5"

    @store_arguments
    def __init__(self, *, endpoint_name: str, scaling: dict[str, Any], target_value: float | None = None,
                 deregister_unlisted: bool = True, waiter_delay: int = 5, waiter_max_attempts: int = 120,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        check_resource_name("endpoint_name", self.endpoint_name)
        check_positive("waiter_delay", self.waiter_delay)
        check_positive("waiter_max_attempts", self.waiter_max_attempts)
        target_value = self._target_value()
        spec = parse_scaling(self.scaling)  # the spec's own rules, before any AWS call
        sagemaker = SageMakerOpsHook(**self._hook_parameters)
        _, config = live_endpoint(sagemaker, self.endpoint_name)
        fields = FieldReader("scaling", Path("."))
        scaling = check_scaling_fits_endpoint(fields, spec, endpoint_view(config))
        if fields.errors:
            raise PipelineConfigError([f"{error} (endpoint {self.endpoint_name})" for error in fields.errors])
        self._changes: list[str] = []
        result = {"endpoint_name": self.endpoint_name, "resource_ids": [], "policy_arns": {}, "alarm_names": []}
        for spec in scaling.variants:
            spec = with_target_value(spec, target_value)
            result["resource_ids"].append(resource_id(self.endpoint_name, spec.variant))
            self._ensure_target(spec, sagemaker)
            arns = self._ensure_policies(spec)
            result["policy_arns"].update({f"{spec.variant}/{name}": arn for name, arn in arns.items()})
            result["alarm_names"] += self._ensure_step_alarms(spec, arns)
            self._ensure_scheduled_actions(spec)
        if self.deregister_unlisted:
            self._deregister_unlisted(config, {spec.variant for spec in scaling.variants})
        self.log.info("Scaling of %s: %s", self.endpoint_name, "; ".join(self._changes) or "nothing to change")
        return {**result, "changes": list(self._changes), "changed": bool(self._changes)}

    def _target_value(self) -> float | None:
        if self.target_value in (None, "", "None"):
            return None
        try:
            value = float(self.target_value)  # a rendered template is a string
        except (TypeError, ValueError):
            value = 0.0
        if value <= 0:
            raise ValueError(f"target_value must be a number > 0 (invocations per instance per minute), "
                             f"got {self.target_value!r}.")
        return value

    def _ensure_target(self, spec: VariantScalingSpec, sagemaker: SageMakerOpsHook) -> None:
        request = register_request(self.endpoint_name, spec)
        if not target_differs(self.hook.describe_target(target_key(self.endpoint_name, spec)), request):
            return
        self._wait_in_service(sagemaker)
        self.hook.conn.register_scalable_target(**request)
        self._changes.append(f"registered {request['ResourceId']} ({spec.min_capacity}-{spec.max_capacity})")

    def _wait_in_service(self, sagemaker: SageMakerOpsHook) -> None:
        """AWS registers a scalable target only on an InService endpoint (a scaling update counts as Updating)."""
        try:
            sagemaker.wait_with_logging("EndpointSettled", {"EndpointName": self.endpoint_name},
                                        f"endpoint {self.endpoint_name}", ["EndpointStatus"], self.waiter_delay,
                                        self.waiter_max_attempts)
        except AirflowException as error:
            raise ScalingError(f"Endpoint {self.endpoint_name} is not InService, so AWS would refuse to register "
                               f"its scalable targets: {error}") from error

    def _ensure_policies(self, spec: VariantScalingSpec) -> dict[str, str]:
        """Put the policies that are missing or differ, delete those the spec dropped; their ARNs by name."""
        key = target_key(self.endpoint_name, spec)
        existing = self.hook.describe_policies(key)
        arns = {}
        for request in policy_requests(self.endpoint_name, spec):
            name, current = request["PolicyName"], existing.get(request["PolicyName"])
            if not policy_differs(current, request):
                arns[name] = current["PolicyARN"]
                continue
            arns[name] = self.hook.conn.put_scaling_policy(**request)["PolicyARN"]
            self._changes.append(f"{'updated' if current else 'created'} policy {name} of {key['ResourceId']}")
        for name in sorted(set(existing) - set(arns)):
            self.hook.conn.delete_scaling_policy(PolicyName=name, **key)
            self._changes.append(f"deleted policy {name} of {key['ResourceId']} (no longer in the spec)")
        return arns

    def _ensure_step_alarms(self, spec: VariantScalingSpec, arns: dict[str, str]) -> list[str]:
        cloudwatch = CloudWatchHook(**self._hook_parameters)
        requests = step_alarm_requests(self.endpoint_name, spec, arns)
        prefix = step_alarm_prefix(self.endpoint_name, spec.variant)
        existing = {alarm["AlarmName"]: alarm for page in cloudwatch.conn.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]) for alarm in page.get("MetricAlarms", [])}
        for request in requests:
            current = existing.get(request["AlarmName"])
            if alarm_differs(current, request) or current.get("AlarmActions") != request["AlarmActions"]:
                cloudwatch.conn.put_metric_alarm(**request)
                self._changes.append(f"{'updated' if current else 'created'} alarm {request['AlarmName']}")
        stale = sorted(set(existing) - {request["AlarmName"] for request in requests})
        if stale:
            cloudwatch.conn.delete_alarms(AlarmNames=stale)
            self._changes.append(f"deleted alarms {', '.join(stale)} (their step policies are no longer in the spec)")
        return [request["AlarmName"] for request in requests]

    def _ensure_scheduled_actions(self, spec: VariantScalingSpec) -> None:
        key = target_key(self.endpoint_name, spec)
        existing = self.hook.describe_scheduled_actions(key)
        requests = scheduled_action_requests(self.endpoint_name, spec)
        for request in requests:
            current = existing.get(request["ScheduledActionName"])
            if scheduled_action_differs(current, request):
                self.hook.conn.put_scheduled_action(**request)
                self._changes.append(f"{'updated' if current else 'created'} scheduled action "
                                     f"{request['ScheduledActionName']} of {key['ResourceId']}")
        for name in sorted(set(existing) - {request["ScheduledActionName"] for request in requests}):
            self.hook.conn.delete_scheduled_action(ScheduledActionName=name, **key)
            self._changes.append(f"deleted scheduled action {name} of {key['ResourceId']} (no longer in the spec)")

    def _deregister_unlisted(self, config: dict[str, Any], listed: set[str]) -> None:
        for variant in config.get("ProductionVariants", []):
            if variant["VariantName"] in listed:
                continue
            key = variant_key(self.endpoint_name, variant)
            if self.hook.describe_target(key) is not None:
                self.hook.conn.deregister_scalable_target(**key)
                self._changes.append(f"deregistered {key['ResourceId']} (not in the spec)")


class ReleaseScalingForUpdateOperator(SageMakerOpsOperator[ApplicationAutoScalingHook]):
    """
    Deregister the scalable targets an UpdateEndpoint to ``endpoint_config_name`` would be refused for.

    AWS refuses to update an endpoint that changes the instance type of an auto-scaled variant, or removes
    one ("deregister first", endpoint-scaling-update). This step deregisters exactly those targets (their
    policies and scheduled actions go with them); the deploy follows, with RetainAllVariantProperties so the
    scaled instance count is kept, and :class:`ApplyScalingOperator` registers the targets again. Nothing
    is deregistered for a model-only change, a missing endpoint or an endpoint already on the config.

    Returns ``{"endpoint_name", "deregistered", "changed"}``.

    :param endpoint_name: the endpoint about to be updated.
    :param endpoint_config_name: the config it will be updated to.
    """

    aws_hook_class = ApplicationAutoScalingHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "endpoint_config_name")
    ui_color = "#f3e5f5"

    @store_arguments
    def __init__(self, *, endpoint_name: str, endpoint_config_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        check_resource_name("endpoint_name", self.endpoint_name)
        check_resource_name("endpoint_config_name", self.endpoint_config_name)
        sagemaker = SageMakerOpsHook(**self._hook_parameters)
        endpoint = sagemaker.describe_or_none("endpoint", self.endpoint_name)
        deregistered: list[str] = []
        if endpoint is not None and endpoint.get("EndpointConfigName") != self.endpoint_config_name:
            serving = sagemaker.describe_or_none("endpoint_config", endpoint["EndpointConfigName"]) or {}
            target = sagemaker.describe_or_none("endpoint_config", self.endpoint_config_name)
            if target is None:
                raise ScalingError(f"Endpoint config {self.endpoint_config_name} does not exist.")
            wanted = {v["VariantName"]: v.get("InstanceType") for v in target["ProductionVariants"]}
            for variant in serving.get("ProductionVariants", []):
                name = variant["VariantName"]
                if name in wanted and wanted[name] == variant.get("InstanceType"):
                    continue  # the update may keep this target registered
                key = variant_key(self.endpoint_name, variant)
                if self.hook.describe_target(key) is not None:
                    self.hook.conn.deregister_scalable_target(**key)
                    why = "removed" if name not in wanted else f"{variant.get('InstanceType')} -> {wanted[name]}"
                    self.log.info("Deregistered %s for the update (%s); scaling is applied again after it.",
                                  key["ResourceId"], why)
                    deregistered.append(key["ResourceId"])
        return {"endpoint_name": self.endpoint_name, "deregistered": deregistered, "changed": bool(deregistered)}
