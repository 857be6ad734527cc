"""Application Auto Scaling's wire protocol (JSON 1.1, ``X-Amz-Target: AnyScaleFrontendService.<Op>``)
for the ``sagemaker`` namespace: moto stores, the emulator checks first and acts after.

moto stores targets, policies and scheduled actions but checks little for SageMaker, creates no
target-tracking alarms for it, keeps a deregistered target's policies, answers a missing policy with
ValidationException and has no scaling activities. Here: botocore's shapes (AWS's wording), the checks
of autoscaling/validation.py before moto sees the request, and after it: the two target tracking
alarms created in CloudWatch and returned in ``Alarms`` (the replaced policy's alarms deleted), a
deregistered target's policies, alarms and scheduled actions removed, capacity moved into a new
[min, max]. DescribeScalingActivities is answered from the emulator's own activity log. Other
namespaces go to moto untouched.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from aiohttp import web

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.autoscaling import policy_math, validation
from sagemaker_emulator.autoscaling.activities import bounds_cause
from sagemaker_emulator.autoscaling.schedules import ScheduleError, parse_schedule
from sagemaker_emulator.autoscaling.tracking import alarm_specs, tracked_metric
from sagemaker_emulator.controllers.alarm_evaluator import AlarmEvaluator
from sagemaker_emulator.controllers.autoscaler import Autoscaler
from sagemaker_emulator.sagemaker.errors import AwsError, ValidationException
from sagemaker_emulator.sagemaker.responses import error_body, snake_case
from sagemaker_emulator.sagemaker.shapes import validate_input

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
Forward = Callable[[web.Request], Awaitable[web.Response]]


def _error(error: AwsError) -> web.Response:
    return web.Response(status=error.status, content_type=JSON_CONTENT_TYPE, body=error_body(error))


class AutoscalingApi:
    def __init__(self, autoscaler: Autoscaler, alarms: AlarmEvaluator):
        self.autoscaler = autoscaler
        self.alarms = alarms
        moto_bridge.teach_moto_scalable_dimensions()

    async def dispatch(self, request: web.Request, region: str, operation: str, forward: Forward) -> web.Response:
        try:
            params = json.loads(await request.read() or b"{}")
        except ValueError:
            return _error(AwsError("SerializationException", "Request body is not valid JSON"))
        try:
            validate_input("application-autoscaling", operation, params)
            if operation == "DescribeScalingActivities":
                return web.Response(content_type=JSON_CONTENT_TYPE, body=json.dumps(
                    self.autoscaler.activities.describe(region, params)).encode())
            if params.get("ServiceNamespace") != "sagemaker":
                return await forward(request)
            self.autoscaler.regions.add(region)
            before = getattr(self, f"_before_{snake_case(operation)}", None)
            context = before(region, params) if before else None
            response = await forward(request)
            after = getattr(self, f"_after_{snake_case(operation)}", None)
            if response.status == 200 and after is not None:
                response = await after(region, params, response, context)
            return response
        except AwsError as error:
            return _error(error)

    # -- scalable targets -------------------------------------------------------------------------

    def _target(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        validation.parse_resource_id(params["ResourceId"])
        found = moto_bridge.scalable_target(region, params["ResourceId"], params["ScalableDimension"])
        if found is None:
            raise validation.no_target(params)
        return found

    def _before_register_scalable_target(self, region: str, params: dict[str, Any]) -> None:
        endpoint_name, _ = validation.parse_resource_id(params["ResourceId"])
        endpoint = self.autoscaler.backend(region).get_endpoint(endpoint_name)
        existing = moto_bridge.scalable_target(region, params["ResourceId"], params["ScalableDimension"])
        validation.check_registration(params, endpoint, existing)

    async def _after_register_scalable_target(self, region: str, params: dict[str, Any], response: web.Response,
                                              context: None) -> web.Response:
        target = self._target(region, params)
        await self.autoscaler.enforce_bounds(region, target, bounds_cause)
        return response

    def _before_deregister_scalable_target(self, region: str, params: dict[str, Any]) -> None:
        self._target(region, params)

    async def _after_deregister_scalable_target(self, region: str, params: dict[str, Any], response: web.Response,
                                                context: None) -> web.Response:
        self.autoscaler.forget_target(region, params["ResourceId"], params["ScalableDimension"])
        await self.alarms.reconcile(region)
        return response

    # -- scaling policies -------------------------------------------------------------------------

    def _before_put_scaling_policy(self, region: str, params: dict[str, Any]) -> list[str]:
        self._target(region, params)
        kind = validation.check_policy_type(params)
        if kind == "TargetTrackingScaling":
            endpoint, variant = validation.parse_resource_id(params["ResourceId"])
            tracked_metric(params["TargetTrackingScalingPolicyConfiguration"], endpoint, variant,
                           params["ScalableDimension"])
        else:
            config = params["StepScalingPolicyConfiguration"]
            if not config.get("AdjustmentType"):
                raise ValidationException("AdjustmentType is required in StepScalingPolicyConfiguration: "
                                          "ChangeInCapacity, PercentChangeInCapacity or ExactCapacity.")
            problem = policy_math.validate_steps([policy_math.Step.of(s) for s in config.get("StepAdjustments", [])])
            if problem:
                raise ValidationException(problem)
        replaced = self._policy(region, params)
        return replaced["alarms"] if replaced else []

    def _policy(self, region: str, params: dict[str, Any]) -> dict[str, Any] | None:
        return next((p for p in moto_bridge.scaling_policies(region)
                     if (p["resource_id"], p["dimension"], p["name"])
                     == (params["ResourceId"], params["ScalableDimension"], params["PolicyName"])), None)

    async def _after_put_scaling_policy(self, region: str, params: dict[str, Any], response: web.Response,
                                        replaced_alarms: list[str]) -> web.Response:
        body = json.loads(response.body)
        moto_bridge.delete_alarms(region, replaced_alarms)
        if params["PolicyType"] == "TargetTrackingScaling":
            config = params["TargetTrackingScalingPolicyConfiguration"]
            endpoint, variant = validation.parse_resource_id(params["ResourceId"])
            metric = tracked_metric(config, endpoint, variant, params["ScalableDimension"])
            body["Alarms"] = [moto_bridge.attach_policy_alarm(region, body["PolicyARN"], spec)
                              for spec in alarm_specs(body["PolicyARN"], params["ResourceId"], config, metric)]
        await self.alarms.reconcile(region)
        return web.Response(content_type=JSON_CONTENT_TYPE, body=json.dumps(body).encode())

    def _before_delete_scaling_policy(self, region: str, params: dict[str, Any]) -> None:
        if self._policy(region, params) is None:
            raise validation.no_policy(params)

    async def _after_delete_scaling_policy(self, region: str, params: dict[str, Any], response: web.Response,
                                           context: None) -> web.Response:
        await self.alarms.reconcile(region)
        return response

    # -- scheduled actions ------------------------------------------------------------------------

    def _before_put_scheduled_action(self, region: str, params: dict[str, Any]) -> None:
        target = self._target(region, params)
        existing = self._scheduled_action(region, params)
        schedule = params.get("Schedule") or (existing or {}).get("schedule")
        if not schedule:
            raise ValidationException("Schedule is required for a new scheduled action: at(...), rate(...) or "
                                      "cron(...).")
        try:
            parse_schedule(schedule, params.get("Timezone") or (existing or {}).get("timezone"))
        except ScheduleError as error:
            raise ValidationException(str(error)) from None
        if params.get("ScalableTargetAction") or existing is None:
            validation.check_target_action(params, target)
        start, end = params.get("StartTime"), params.get("EndTime")
        if start is not None and end is not None and float(start) >= float(end):
            raise ValidationException("EndTime must be later than StartTime.")

    def _scheduled_action(self, region: str, params: dict[str, Any]) -> dict[str, Any] | None:
        return next((a for a in moto_bridge.scheduled_actions(region)
                     if (a["resource_id"], a["dimension"], a["name"])
                     == (params["ResourceId"], params["ScalableDimension"], params["ScheduledActionName"])), None)

    def _before_delete_scheduled_action(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        action = self._scheduled_action(region, params)
        if action is None:
            raise validation.no_scheduled_action(params)
        return action

    async def _after_delete_scheduled_action(self, region: str, params: dict[str, Any], response: web.Response,
                                             action: dict[str, Any]) -> web.Response:
        self.autoscaler.forget_schedule(region, action["arn"])
        return response

    # -- SageMaker requests that meet scalable targets ----------------------------------------------

    def _targets_of(self, region: str, endpoint_name: str) -> list[dict[str, Any]]:
        prefix = f"endpoint/{endpoint_name}/variant/"
        return [t for t in moto_bridge.scalable_targets(region) if t["resource_id"].startswith(prefix)]

    def refuse_endpoint_update(self, region: str, operation: str, body: bytes) -> bytes | None:
        """UpdateEndpoint may not change the instance type of, or remove, an auto-scaled variant (AWS:
        deregister the target first). Returns the error body, None when the update may go ahead."""
        if operation != "UpdateEndpoint" or region not in self.autoscaler.regions:
            return None
        try:
            params = json.loads(body or b"{}")
            backend = self.autoscaler.backend(region)
            endpoint = backend.get_endpoint(params["EndpointName"])
            new = {v.variant_name: v for v in backend.get_endpoint_config(params["EndpointConfigName"]).variants}
            old = {v.variant_name: v for v in backend.get_endpoint_config(endpoint.config_name).variants}
        except (AwsError, KeyError, ValueError, TypeError):
            return None  # SageMaker's own checks answer a malformed request
        for target in self._targets_of(region, endpoint.name):
            variant = target["resource_id"].rsplit("/", 1)[1]
            if variant not in new:
                problem = f"removes variant {variant}"
            elif variant in old and new[variant].instance_type != old[variant].instance_type:
                problem = (f"changes the instance type of variant {variant} from {old[variant].instance_type} to "
                           f"{new[variant].instance_type}")
            else:
                continue
            error = ValidationException(
                f'Cannot update endpoint "{endpoint.arn}": the update {problem}, which is registered as an '
                f"Application Auto Scaling scalable target ({target['resource_id']}, {target['dimension']}). "
                "Deregister the scalable target (DeregisterScalableTarget), update the endpoint, then register it "
                "again.")
            return json.dumps({"__type": error.code, "message": error.message}).encode()
        return None

    async def endpoint_deleted(self, region: str, operation: str, body: bytes) -> None:
        """DeleteEndpoint deregisters the endpoint's scalable targets (with their policies and alarms)."""
        if operation != "DeleteEndpoint" or region not in self.autoscaler.regions:
            return
        name = json.loads(body or b"{}").get("EndpointName", "")
        targets = self._targets_of(region, name)
        for target in targets:
            self.autoscaler.forget_target(region, target["resource_id"], target["dimension"])
        if targets:
            await self.alarms.reconcile(region)
