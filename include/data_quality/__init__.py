"""Data-quality analyzer: Model Monitor compatible baselines, statistics and constraint violations.

No Airflow or AWS imports: the emulator's processing jobs and the Airflow operators both run it.
"""

from .api import BaselineResult, CheckResult, run_check, suggest_baseline
from .cli import main
from .errors import DataQualityError
from .files import read_constraints, read_statistics

__all__ = ["BaselineResult", "CheckResult", "DataQualityError", "main", "read_constraints", "read_statistics",
           "run_check", "suggest_baseline"]
