"""Operator arguments from a pipeline file's sections, for the task factories of the DAGs.

The pipeline files, their dataclasses and the operators use the same names for the same settings
(``content_type``, ``output_s3_uri``, ``instance_type``, ...), so a factory passes them through by
name instead of spelling out ``content_type=test.content_type`` for each.
"""

from __future__ import annotations

from typing import Any

from sagemaker_ops.pipeline.models import WaiterConfig


def same_named(section: object, *names: str) -> dict[str, Any]:
    """``{name: section.<name>}`` for each name: the section's settings as the operator's arguments."""
    return {name: getattr(section, name) for name in names}


def waiter_arguments(waiter: WaiterConfig, *, deferrable: bool = True) -> dict[str, Any]:
    """``waiter_delay`` and ``waiter_max_attempts`` (and ``deferrable``, for operators that can defer)."""
    arguments: dict[str, Any] = {"waiter_delay": waiter.delay_seconds, "waiter_max_attempts": waiter.max_attempts}
    if deferrable:
        arguments["deferrable"] = waiter.deferrable
    return arguments
