"""suggest_baseline and run_check: the analyzer's two jobs, file in, Model Monitor files out."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import checks, files, metrics
from .capture import CaptureReader
from .constraints import CATEGORICAL_DRIFT_METHODS, constraints_document
from .errors import DataQualityError, NoDataError
from .profile import DatasetProfile
from .sources import DatasetFormat, csv_column_names, iter_batches, parse_dataset_format, source_files
from .statistics import statistics_document

log = logging.getLogger("data_quality")
# Below this many bytes one process is faster than starting a second one.
PARALLEL_MIN_BYTES = 64 << 20
WORKERS = 2


@dataclass
class BaselineResult:
    statistics: dict
    constraints: dict


@dataclass
class CheckResult:
    statistics: dict
    violations: list
    metrics: list
    records: int
    unparseable_records: int
    unparseable_samples: list = field(default_factory=list)
    metrics_namespace: str = metrics.ENDPOINT_NAMESPACE
    outside_window: int = 0


def suggest_baseline(source, dataset_format: dict, output_dir, *, categorical_drift_method: str | None = None) -> BaselineResult:
    """Profile a dataset and write output_dir/statistics.json and output_dir/constraints.json."""
    fmt = parse_dataset_format(dataset_format)
    if categorical_drift_method and categorical_drift_method not in CATEGORICAL_DRIFT_METHODS:
        raise DataQualityError(f"categorical_drift_method must be one of {', '.join(CATEGORICAL_DRIFT_METHODS)}, "
                               f"got {categorical_drift_method!r}")
    started = time.perf_counter()
    paths = _files(source)
    profile, capture = _profile(paths, fmt)
    _require_rows(profile, capture, source)
    statistics = statistics_document(profile)
    constraints = constraints_document(profile, categorical_drift_method)
    files.write_json(output_dir, files.STATISTICS_FILE, statistics)
    files.write_json(output_dir, files.CONSTRAINTS_FILE, constraints)
    log.info("baseline: %d rows x %d columns from %d file(s) in %.2f s", profile.rows, len(profile.columns),
             len(paths), time.perf_counter() - started)
    return BaselineResult(statistics, constraints)


def run_check(source, dataset_format: dict, baseline_statistics, baseline_constraints, output_dir, *,
              start_time: datetime | None = None, end_time: datetime | None = None,
              endpoint_name: str | None = None, schedule_name: str | None = None) -> CheckResult:
    """Profile the window, compare it with the baseline, write statistics.json and
    constraint_violations.json (always, empty when nothing is violated)."""
    fmt = parse_dataset_format(dataset_format)
    statistics_baseline = _as_document(baseline_statistics, files.read_statistics)
    constraints_baseline = _as_document(baseline_constraints, files.read_constraints)
    names = [feature["name"] for feature in (constraints_baseline.get("features") or statistics_baseline["features"])]
    started = time.perf_counter()
    paths = _files(source)
    profile, capture = _profile(paths, fmt, names, start_time, end_time)
    _require_rows(profile, capture, source)
    violations, distances = checks.evaluate(profile, statistics_baseline, constraints_baseline)
    namespace, dimensions = metrics.namespace_and_dimensions(endpoint_name, schedule_name)
    entries = metrics.metric_data(profile, constraints_baseline, distances, dimensions)
    statistics = statistics_document(profile)
    files.write_json(output_dir, files.STATISTICS_FILE, statistics)
    files.write_json(output_dir, files.VIOLATIONS_FILE, {"violations": violations})
    records = capture.stats.records if capture else profile.rows
    log.info("check: %d records, %d rows from %d file(s) in %.2f s; %d violation(s)", records, profile.rows,
             len(paths), time.perf_counter() - started, len(violations))
    return CheckResult(statistics, violations, entries, records,
                       capture.stats.unparseable if capture else 0, list(capture.stats.samples) if capture else [],
                       namespace, capture.stats.outside_window if capture else 0)


# ---- helpers ----------------------------------------------------------------------------------

def _as_document(value, reader) -> dict:
    if isinstance(value, dict):
        return value
    return reader(value)


def _files(source) -> list[Path]:
    paths = source_files(source)
    if not paths:
        raise NoDataError(f"Job inputs had no data: dataset_source {str(source)!r} holds no files")
    return paths


def _require_rows(profile: DatasetProfile, capture: CaptureReader | None, source) -> None:
    if profile.rows:
        return
    if capture is None:
        raise DataQualityError(f"The dataset at {str(source)!r} has no rows (only empty files or headers)")
    stats = capture.stats
    if stats.unparseable:
        raise DataQualityError(
            f"None of the {stats.unparseable} captured record(s) under {str(source)!r} could be read; "
            f"first: {stats.samples[0]}")
    if stats.outside_window:
        raise NoDataError(
            f"No captured data in the analysis window: all {stats.outside_window} record(s) under "
            f"{str(source)!r} have an inferenceTime outside [start_time, end_time)")
    raise NoDataError(f"Job inputs had no data: no captured records under {str(source)!r}")


def _profile(paths: list[Path], fmt: DatasetFormat, names: list[str] | None = None,
             start_time=None, end_time=None) -> tuple[DatasetProfile, CaptureReader | None]:
    if fmt.kind == "capture":
        reader = CaptureReader(fmt, names, start_time, end_time)
        profile = DatasetProfile()
        for batch in reader.batches(paths):
            profile.add_batch(batch)
        if reader.stats.unparseable:
            log.warning("%d captured record(s) could not be read, e.g. %s", reader.stats.unparseable, reader.stats.samples[0])
        return _ordered(profile, names), reader
    profile = profile_files(paths, fmt)
    if fmt.kind == "csv" and not fmt.header and names:
        profile = _positional_names(profile, names)
    return profile, None


def _ordered(profile: DatasetProfile, names: list[str] | None) -> DatasetProfile:
    if not names:
        return profile
    order = [name for name in names if name in profile.columns] + [n for n in profile.columns if n not in names]
    profile.columns = {name: profile.columns[name] for name in order}
    return profile


def _positional_names(profile: DatasetProfile, names: list[str]) -> DatasetProfile:
    """A headerless CSV checked against a baseline: column i is the baseline's feature i."""
    renamed = {}
    for index, (name, column) in enumerate(profile.columns.items()):
        column.name = names[index] if index < len(names) else name
        renamed[column.name] = column
    profile.columns = renamed
    return profile


# ---- profiling, in one or two processes -----------------------------------------------------------

def profile_files(paths: list[Path], fmt: DatasetFormat) -> DatasetProfile:
    columns = _known_columns(paths, fmt)
    size = sum(path.stat().st_size for path in paths)
    if columns and len(columns) >= 2 and size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) >= 2:
        profile = _profile_column_split(paths, fmt, columns)
    else:
        profile = profile_columns(paths, fmt, None)
    rescan = [name for name, column in profile.columns.items() if column.needs_rescan]
    if rescan:  # String columns that looked numeric for their first 10,000 distinct values
        again = profile_columns(paths, fmt, rescan, count_cap=None)
        profile.columns.update({name: again.columns[name] for name in rescan})
    return profile


def profile_columns(paths: list[Path], fmt: DatasetFormat, columns: list[str] | None, count_cap="default") -> DatasetProfile:
    profile = DatasetProfile() if count_cap == "default" else DatasetProfile(count_cap=count_cap)
    for batch in iter_batches(paths, fmt, columns):
        profile.add_batch(batch)
    return profile


def _known_columns(paths: list[Path], fmt: DatasetFormat) -> list[str] | None:
    """Column names read cheaply up front (Parquet schema, CSV header); None for JSON."""
    try:
        if fmt.kind == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(paths[0]).names)
        if fmt.kind == "csv":
            return csv_column_names(paths[0], fmt.header)
    except Exception:  # noqa: BLE001 - the reader reports a bad file properly later
        return None
    return None


def _profile_column_split(paths: list[Path], fmt: DatasetFormat, columns: list[str]) -> DatasetProfile:
    """Each half of the columns in its own worker process (data_quality.worker); KLL sketches travel
    serialized. Both halves run in workers so their allocator tuning stays out of the caller's process,
    which may be an Airflow worker."""
    halves = [columns[i::WORKERS] for i in range(WORKERS)]
    workers = [subprocess.Popen([sys.executable, "-m", "data_quality.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE) for _ in halves]
    try:
        for worker, half in zip(workers, halves):
            pickle.dump((paths, fmt, half), worker.stdin)
            worker.stdin.close()
        results = [_worker_result(worker) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    profile = results[0]
    for other in results[1:]:
        profile.merge_columns(other)
    profile.columns = {name: profile.columns[name] for name in columns if name in profile.columns}
    return profile


def _worker_result(worker: subprocess.Popen) -> DatasetProfile:
    payload = worker.stdout.read()
    code = worker.wait()
    if code != 0 or not payload:
        raise RuntimeError(f"a profiling worker (python -m data_quality.worker) exited with code {code}; "
                           "its error is above in stderr")
    status, value = pickle.loads(payload)
    if status == "error":
        raise value
    return value
