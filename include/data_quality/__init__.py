"""Data-quality analyzer: Model Monitor compatible baselines, statistics and constraint violations.

No Airflow or AWS imports: the emulator's processing jobs and the Airflow operators both run it.
"""

from .api import BaselineResult, CheckResult, run_check, suggest_baseline
from .checks import category_counts, feature_cdf, statistics_distance
from .cli import main
from .constraints import feature_config
from .errors import DataQualityError, NoDataError
from .files import read_constraints, read_statistics

__all__ = ["BaselineResult", "CheckResult", "DataQualityError", "NoDataError", "category_counts", "feature_cdf",
           "feature_config", "main", "read_constraints", "read_statistics", "run_check", "statistics_distance",
           "suggest_baseline"]
