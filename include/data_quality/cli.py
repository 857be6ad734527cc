"""The sagemaker-model-monitor-analyzer container contract: environment in, files and exit code out.

Environment (what AWS passes the prebuilt image; sagemaker-api.md §4.1, §4.5):
  dataset_format        JSON, e.g. {"csv": {"header": true}} or {"sagemakerCaptureJson": {...}}
  dataset_source        directory (or file) holding the data
  output_path           directory for statistics.json, constraints.json / constraint_violations.json
  baseline_statistics   \\ either present: a check against the baseline; both absent: a baseline
  baseline_constraints  /
  start_time, end_time  ISO-8601 analysis window of a check (inferenceTime in [start, end))
  sagemaker_endpoint_name, sagemaker_monitoring_schedule_name   metric dimensions
  publish_cloudwatch_metrics   Enabled | Disabled (default): write the metrics file
  categorical_drift_method     LInfinity | ChiSquared, written into suggested constraints
  metrics_path          the metrics file (default /opt/ml/output/metrics/cloudwatch/data-quality-metrics.jsonl),
                        one PutMetricData-like JSON object per line
  failure_path          where a failure's reason goes (default /opt/ml/output/failure when writable);
                        AWS shows that text as the job's FailureReason
Exit status 0 on success (violations or not), 1 on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .api import run_check, suggest_baseline
from .errors import DataQualityError
from .files import read_constraints, read_statistics

DEFAULT_METRICS_PATH = "/opt/ml/output/metrics/cloudwatch/data-quality-metrics.jsonl"
DEFAULT_FAILURE_PATH = "/opt/ml/output/failure"
log = logging.getLogger("data_quality")


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="data-quality-analyzer", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)  # the job's log: AWS ships stdout to CloudWatch Logs
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    env = os.environ
    started = time.perf_counter()
    try:
        run(env)
        log.info("done in %.2f s", time.perf_counter() - started)
        return 0
    except DataQualityError as error:
        _fail(str(error), env)
        return 1
    finally:
        log.removeHandler(handler)


def run(env) -> None:
    for unsupported in ("record_preprocessor_script", "post_analytics_processor_script"):
        if env.get(unsupported):
            raise DataQualityError(f"{unsupported} is not supported by this analyzer; remove it from the job "
                                   "or preprocess the data before baselining")
    dataset_format = _required(env, "dataset_format")
    source, output = _required(env, "dataset_source"), _required(env, "output_path")
    log.info("dataset_format=%s dataset_source=%s output_path=%s", dataset_format, source, output)
    statistics_path, constraints_path = env.get("baseline_statistics"), env.get("baseline_constraints")
    if not statistics_path and not constraints_path:
        result = suggest_baseline(source, dataset_format, output,
                                  categorical_drift_method=env.get("categorical_drift_method") or None)
        log.info("wrote statistics.json and constraints.json for %d feature(s), %d row(s)",
                 len(result.statistics["features"]), result.statistics["dataset"]["item_count"])
        return
    statistics = read_statistics(statistics_path) if statistics_path else {"version": 0.0, "features": []}
    constraints = read_constraints(constraints_path) if constraints_path else {
        "version": 0.0, "features": [{"name": f["name"], "inferred_type": f.get("inferred_type", "Unknown")}
                                     for f in statistics["features"]]}
    log.info("baseline: %s, %s", statistics_path or "(no statistics)", constraints_path or "(no constraints)")
    result = run_check(source, dataset_format, statistics, constraints, output,
                       start_time=_time(env, "start_time"), end_time=_time(env, "end_time"),
                       endpoint_name=env.get("sagemaker_endpoint_name") or None,
                       schedule_name=env.get("sagemaker_monitoring_schedule_name") or None)
    log.info("%d record(s) analysed, %d unparseable, %d outside the window; %d violation(s)",
             result.records, result.unparseable_records, result.outside_window, len(result.violations))
    if env.get("publish_cloudwatch_metrics", "Disabled") == "Enabled":
        path = _write_metrics(result, env.get("metrics_path") or DEFAULT_METRICS_PATH)
        log.info("wrote %d metric(s) to %s", len(result.metrics), path)


def _write_metrics(result, path: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as stream:
        for entry in result.metrics:
            stream.write(json.dumps({"Namespace": result.metrics_namespace, **entry}) + "\n")
    return target


def _required(env, name: str) -> str:
    value = env.get(name)
    if not value:
        raise DataQualityError(f"The environment variable {name} is not set; the analyzer needs dataset_format, "
                               "dataset_source and output_path")
    return value


def _time(env, name: str) -> datetime | None:
    text = env.get(name)
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DataQualityError(f"{name}={text!r} is not an ISO-8601 time such as 2026-11-24T20:00:00Z") from None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def _fail(message: str, env) -> None:
    print(message, file=sys.stderr)
    path = env.get("failure_path") or DEFAULT_FAILURE_PATH
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(message, encoding="utf-8")
    except OSError:
        if env.get("failure_path"):
            print(f"(could not write the failure file {path})", file=sys.stderr)
