"""The drift report: one self-contained HTML page, one plot per feature, the analyzer's own distances."""

from __future__ import annotations

import base64
import csv
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from data_quality import run_check, suggest_baseline
from sagemaker_ops.drift_report import render_drift_report
from sagemaker_ops.model_monitor_jobs import CAPTURE_DATASET_FORMAT, dataset_format

REPO = Path(__file__).resolve().parents[2]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
NOW = datetime(2026, 11, 24, 21, 30, tzinfo=timezone.utc)


def iris_rows() -> list[dict[str, str]]:
    with (REPO / "include/data/iris.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("baseline")
    data = folder / "train.csv"
    data.write_text(",".join(FEATURES + ["kind"]) + "\n" + "".join(
        ",".join(row[name] for name in FEATURES) + f",{row['species']}\n" for row in iris_rows()))
    result = suggest_baseline(data, dataset_format("csv"), folder / "out")
    return {"statistics": result.statistics, "constraints": result.constraints}


def check(tmp_path: Path, baseline: dict, records: list[dict]) -> tuple:
    """run_check over capture records (each {"data", "encoding", "type"}), as the check operator runs it."""
    folder = tmp_path / "capture" / "AllTraffic" / "2026/11/24/21"
    folder.mkdir(parents=True)
    lines = [json.dumps({"captureData": {"endpointInput": {"observedContentType": r["type"], "mode": "INPUT",
                                                           "data": r["data"], "encoding": r["encoding"]}},
                         "eventMetadata": {"eventId": str(i), "inferenceTime": "2026-11-24T21:10:00Z"},
                         "eventVersion": "0"}) for i, r in enumerate(records)]
    (folder / "10-00-000-x.jsonl").write_text("\n".join(lines) + "\n")
    result = run_check(tmp_path / "capture", CAPTURE_DATASET_FORMAT, baseline["statistics"], baseline["constraints"],
                       tmp_path / "out", start_time=NOW - timedelta(hours=1), end_time=NOW, endpoint_name="iris")
    report = render_drift_report(endpoint_name="iris", window_start="2026-11-24T20:30:00Z",
                                 window_end="2026-11-24T21:30:00Z", baseline_statistics=baseline["statistics"],
                                 constraints=baseline["constraints"], current_statistics=result.statistics,
                                 violations=result.violations, records=result.records,
                                 unparseable_records=result.unparseable_records,
                                 executions=[{"scheduled_time": "2026-11-24T21:00:00Z", "status": "Completed",
                                              "violation_count": 0, "failure_reason": None}])
    return result, report


def csv_record(row: dict[str, str], shift: float = 0.0) -> dict:
    values = [row[name] if name != "petal_length" else f"{float(row[name]) + shift:.1f}" for name in FEATURES]
    return {"data": ",".join(values) + f",{row['species']}", "encoding": "CSV", "type": "text/csv"}


def images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)]


def test_the_page_is_self_contained_with_one_plot_per_feature(tmp_path: Path, baseline: dict):
    _, report = check(tmp_path, baseline, [csv_record(row) for row in iris_rows()[::3]])
    page = report.html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I), "an external resource"
    assert "<script" not in page and "url(" not in page and "@import" not in page
    pictures = images(page)
    assert len(pictures) == len(FEATURES) + 1 == len(report.features)  # four numbers and the string "kind"
    assert all(picture.startswith(b"\x89PNG\r\n\x1a\n") for picture in pictures)
    assert [f.name for f in report.features] == FEATURES + ["kind"]
    assert report.drifted_features == []
    assert "2026-11-24T20:30:00Z" in page and "no violations" in page and "Completed" in page


def test_a_shifted_feature_is_drawn_as_drift_with_the_analyzers_distance(tmp_path: Path, baseline: dict):
    result, report = check(tmp_path, baseline, [csv_record(row, shift=3.0) for row in iris_rows()[::2]])
    by_name = {feature.name: feature for feature in report.features}
    assert report.drifted_features == ["petal_length"]
    assert [v["feature_name"] for v in result.violations if v["constraint_check_type"] == "baseline_drift_check"] == [
        "petal_length"]
    analyzer = {m["MetricName"]: m["Value"] for m in result.metrics if m["MetricName"].startswith("feature_baseline")}
    for name in FEATURES + ["kind"]:
        assert by_name[name].distance == pytest.approx(analyzer[f"feature_baseline_drift_{name}"], abs=1e-12)
    drift = by_name["petal_length"]
    assert (drift.threshold, drift.method, drift.checks) == (0.1, "Robust", ["baseline_drift_check"])
    assert drift.distance > 0.3  # the Robust allowance for 150 vs 75 rows is 0.25
    assert "<td>petal_length</td><td>numeric</td>" in report.html and "baseline_drift_check" in report.html
    assert by_name["kind"].kind == "string" and by_name["kind"].method == "LInfinity"


def test_a_missing_feature_is_shown_with_the_baseline_alone(tmp_path: Path, baseline: dict):
    records = [{"data": json.dumps([{name: float(row[name]) for name in FEATURES if name != "petal_length"}
                                    | {"kind": row["species"]}]), "encoding": "JSON", "type": "application/json"}
               for row in iris_rows()[::5]]
    result, report = check(tmp_path, baseline, records)
    assert ("petal_length", "missing_column_check") in {(v["feature_name"], v["constraint_check_type"])
                                                        for v in result.violations}
    missing = next(f for f in report.features if f.name == "petal_length")
    assert missing.distance is None and missing.note == "missing from the window's data"
    assert missing.checks == ["missing_column_check"] and missing.image_png_base64
    assert len(images(report.html)) == len(FEATURES) + 1


def test_a_window_without_data_still_renders_the_baseline(baseline: dict):
    report = render_drift_report(endpoint_name="iris", window_start="a", window_end="b",
                                 baseline_statistics=baseline["statistics"], constraints=baseline["constraints"],
                                 current_statistics=None, violations=[], records=0)
    assert "No captured requests in this window" in report.html
    assert all(feature.distance is None for feature in report.features)
    assert len(images(report.html)) == len(FEATURES) + 1
