"""Model Monitor schedule expressions and analysis-window offsets, as the service checks them.

The rules themselves live in ``sagemaker_rules.monitor_schedule``, shared with the Airflow side so
that a schedule ``sagemaker_ops`` accepts is one this emulator accepts, and the reverse. This module
only turns a broken rule into the ``ValidationException`` AWS answers with.
"""

from __future__ import annotations

from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_rules import monitor_schedule as rules
from sagemaker_rules.monitor_schedule import EXAMPLES, HOUR, NOW, Schedule, analysis_window

__all__ = ["EXAMPLES", "HOUR", "NOW", "Schedule", "analysis_window", "parse_offset", "parse_schedule",
           "validate_window"]


def parse_schedule(expression: str) -> Schedule:
    try:
        return rules.parse_schedule(expression, "ScheduleExpression")
    except rules.ScheduleRuleError as error:
        raise ValidationException(str(error)) from None


def parse_offset(value: str, field: str):
    try:
        return rules.parse_offset(value, field)
    except rules.ScheduleRuleError as error:
        raise ValidationException(str(error)) from None


def validate_window(start_offset: str, end_offset: str) -> None:
    try:
        rules.check_analysis_window(start_offset, end_offset)
    except rules.ScheduleRuleError as error:
        raise ValidationException(str(error)) from None
