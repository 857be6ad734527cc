"""Data-quality analyzer: Model Monitor compatible baselines, statistics and constraint violations.

No Airflow or AWS imports: the emulator's processing jobs and the Airflow operators both run it.
"""
