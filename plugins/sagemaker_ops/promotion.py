"""Pure helpers of a guarded promotion: the requests it sends and how its outcome is judged.

A promotion config (:mod:`sagemaker_ops.pipeline.promotion_section`) becomes UpdateEndpoint's
``DeploymentConfig`` and the PutMetricAlarm requests of its alarms; the endpoint's description after
the deployment says whether it succeeded. No AWS calls here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagemaker_ops.pipeline.promotion_section import SAGEMAKER_NAMESPACE, AlarmSpec, PromotionConfig

# PutMetricAlarm fields compared with DescribeAlarms to decide whether an alarm must be written again.
COMPARED_ALARM_FIELDS = ("Namespace", "MetricName", "Statistic", "ExtendedStatistic", "Dimensions", "Period",
                         "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
                         "TreatMissingData", "AlarmDescription")


def deployment_config(promotion: PromotionConfig, alarm_names: list[str]) -> dict[str, Any]:
    """UpdateEndpoint's ``DeploymentConfig`` for ``promotion``, rolled back by ``alarm_names``."""
    config: dict[str, Any] = {}
    if promotion.strategy == "rolling":
        policy = {"MaximumBatchSize": promotion.size.to_aws(), "WaitIntervalInSeconds": promotion.wait_interval_seconds,
                  "MaximumExecutionTimeoutInSeconds": promotion.max_execution_timeout_seconds}
        if promotion.rollback_batch is not None:
            policy["RollbackMaximumBatchSize"] = promotion.rollback_batch.to_aws()
        config["RollingUpdatePolicy"] = policy
    else:
        routing: dict[str, Any] = {"Type": promotion.strategy.upper(),
                                   "WaitIntervalInSeconds": promotion.wait_interval_seconds}
        if promotion.strategy == "canary":
            routing["CanarySize"] = promotion.size.to_aws()
        elif promotion.strategy == "linear":
            routing["LinearStepSize"] = promotion.size.to_aws()
        config["BlueGreenUpdatePolicy"] = {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": promotion.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": promotion.max_execution_timeout_seconds,
        }
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarm_names]}
    return config


def alarm_name(endpoint_name: str, spec: AlarmSpec, variant_name: str | None = None) -> str:
    """``<endpoint>-promotion-<spec name>[-<variant>]``: one alarm per endpoint, spec (and variant)."""
    suffix = f"-{variant_name}" if variant_name else ""
    return f"{endpoint_name}-promotion-{spec.name}{suffix}"


def alarm_requests(specs: tuple[AlarmSpec, ...], endpoint_name: str, variant_names: list[str],
                   target_config: str | None) -> list[dict[str, Any]]:
    """
    PutMetricAlarm requests for ``specs``. An ``AWS/SageMaker`` metric is watched per variant of the
    endpoint (dimensions EndpointName, VariantName); ``fleet: green`` adds ``EndpointConfigName`` of the
    target config, which AWS puts on the new fleet's metrics during a deployment. Other namespaces use
    the spec's dimensions as given.
    """
    requests = []
    for spec in specs:
        if spec.namespace != SAGEMAKER_NAMESPACE:
            requests.append(_request(spec, alarm_name(endpoint_name, spec), spec.dimensions, endpoint_name))
            continue
        if spec.fleet == "green" and not target_config:
            raise ValueError(f"Alarm {spec.name} watches the green fleet: pass the target endpoint config name.")
        for variant in variant_names:
            dimensions = {"EndpointName": endpoint_name, "VariantName": variant, **spec.dimensions}
            if spec.fleet == "green":
                dimensions["EndpointConfigName"] = target_config
            name = alarm_name(endpoint_name, spec, variant if len(variant_names) > 1 else None)
            requests.append(_request(spec, name, dimensions, endpoint_name))
    return requests


def _request(spec: AlarmSpec, name: str, dimensions: dict[str, str], endpoint_name: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": f"Rolls back a promotion of endpoint {endpoint_name} ({spec.name}, fleet {spec.fleet}).",
        "Namespace": spec.namespace,
        "MetricName": spec.metric,
        "Dimensions": [{"Name": key, "Value": value} for key, value in sorted(dimensions.items())],
        "Period": spec.period,
        "EvaluationPeriods": spec.evaluation_periods,
        "DatapointsToAlarm": spec.datapoints_to_alarm,
        "Threshold": spec.threshold,
        "ComparisonOperator": spec.comparison,
        "TreatMissingData": spec.treat_missing_data,
    }
    if spec.percentile:
        request["ExtendedStatistic"] = spec.percentile
    else:
        request["Statistic"] = spec.statistic
    return request


def alarm_differs(existing: dict[str, Any] | None, request: dict[str, Any]) -> bool:
    """Whether DescribeAlarms' ``existing`` alarm differs from the PutMetricAlarm ``request``."""
    if existing is None:
        return True
    for key in COMPARED_ALARM_FIELDS:
        have, want = existing.get(key), request.get(key)
        if key == "Dimensions":
            have = sorted((item["Name"], item["Value"]) for item in have or [])
            want = sorted((item["Name"], item["Value"]) for item in want or [])
        elif key == "Threshold" and have is not None and want is not None:
            have, want = float(have), float(want)
        if have != want:
            return True
    return False


@dataclass(frozen=True)
class Verdict:
    """What the endpoint's state says about a promotion: done, wait, start it, or fail (with why)."""

    action: str  # done | wait | update | fail | rolled_back
    reason: str


def judge(endpoint: dict[str, Any] | None, target_config: str) -> Verdict:
    """The next step for a promotion of ``endpoint`` (a DescribeEndpoint answer) to ``target_config``."""
    if endpoint is None:
        return Verdict("fail", "The endpoint does not exist; a promotion replaces the version of a live endpoint "
                               "(deploy it first).")
    name, status, serving = endpoint["EndpointName"], endpoint["EndpointStatus"], endpoint.get("EndpointConfigName")
    reason = endpoint.get("FailureReason")
    if status == "InService" and serving == target_config:
        return Verdict("done", f"Endpoint {name} is InService on the target config {target_config}.")
    if status in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
        pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        towards = f" towards {pending}" if pending else ""
        return Verdict("wait", f"Endpoint {name} is {status}{towards}; waiting for it to settle.")
    if status == "UpdateRollbackFailed":
        return Verdict("fail", f"Endpoint {name} is UpdateRollbackFailed: both the deployment and its rollback "
                               f"failed, and it serves a MIX of {serving} and the new config. AWS accepts only "
                               f"DeleteEndpoint now. FailureReason: {reason or 'none given'}")
    if status in ("Failed", "OutOfService", "Deleting"):
        return Verdict("fail", f"Endpoint {name} is {status}: {reason or 'no FailureReason given'}")
    return Verdict("update", f"Endpoint {name} is InService on {serving}; promoting it to {target_config}.")


def rollback_message(endpoint: dict[str, Any], target_config: str, alarms: list[dict[str, Any]]) -> str:
    """A failed promotion, in words: the alarms that fired (with their reasons) and what the endpoint serves."""
    fired = [alarm for alarm in alarms if alarm.get("StateValue") == "ALARM"
             or alarm["AlarmName"] in (endpoint.get("FailureReason") or "")]
    lines = [f"Promotion of endpoint {endpoint['EndpointName']} to {target_config} was rolled back; the endpoint "
             f"serves {endpoint.get('EndpointConfigName')} ({endpoint['EndpointStatus']})."]
    for alarm in fired:
        lines.append(f"Alarm {alarm['AlarmName']} is {alarm.get('StateValue')}: {alarm.get('StateReason')}")
    lines.append(f"FailureReason: {endpoint.get('FailureReason') or 'none given'}")
    return "\n".join(lines)
