"""Application Auto Scaling hook: the describe calls of one scalable target, paginated.

The Amazon provider has no Application Auto Scaling hook, so this is a thin ``AwsBaseHook`` over
``boto3.client("application-autoscaling")``; the writes are the client's own calls (``hook.conn``).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook


class ApplicationAutoScalingHook(AwsBaseHook):
    """Interact with Application Auto Scaling; thin wrapper around ``boto3.client("application-autoscaling")``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "application-autoscaling"
        super().__init__(*args, **kwargs)

    def _all(self, operation: str, result_key: str, **arguments: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.conn.get_paginator(operation).paginate(**arguments):
            items.extend(page.get(result_key, []))
        return items

    def describe_target(self, key: dict[str, str]) -> dict[str, Any] | None:
        """The scalable target ``key`` (ServiceNamespace, ResourceId, ScalableDimension) names, or None."""
        targets = self._all("describe_scalable_targets", "ScalableTargets", ServiceNamespace=key["ServiceNamespace"],
                            ResourceIds=[key["ResourceId"]], ScalableDimension=key["ScalableDimension"])
        return targets[0] if targets else None

    def describe_policies(self, key: dict[str, str]) -> dict[str, dict[str, Any]]:
        """The target's scaling policies by name."""
        policies = self._all("describe_scaling_policies", "ScalingPolicies", **key)
        return {policy["PolicyName"]: policy for policy in policies}

    def describe_scheduled_actions(self, key: dict[str, str]) -> dict[str, dict[str, Any]]:
        """The target's scheduled actions by name."""
        actions = self._all("describe_scheduled_actions", "ScheduledActions", **key)
        return {action["ScheduledActionName"]: action for action in actions}

    def describe_activities(self, key: dict[str, str]) -> list[dict[str, Any]]:
        """The target's scaling activities, newest first (AWS keeps six weeks)."""
        return self._all("describe_scaling_activities", "ScalingActivities", **key)
