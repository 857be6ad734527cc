"""run_check: each check type fires when it should and only then, distances, overrides, capture
parsing, the time window, unparseable records and metrics."""

from __future__ import annotations

import base64
import copy
import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from data_quality import DataQualityError, run_check, suggest_baseline
from data_quality.checks import categorical_distance, numerical_distance
from data_quality.kll import WeightedCdf

CAPTURE = {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}}
HOUR = datetime(2026, 11, 24, 20, tzinfo=timezone.utc)


def sample(rows: int, seed: int, shift: float = 0.0, categories=("a", "b", "c"), weights=(0.5, 0.3, 0.2)):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=shift, size=rows)
    n = rng.integers(0, 10, size=rows)
    cat = np.array(categories)[rng.choice(len(categories), size=rows, p=weights)]
    return [[f"{a:.6f}", str(b), str(c)] for a, b, c in zip(x, n, cat)]


def capture_record(data: str, encoding: str = "CSV", at: datetime = HOUR, output: str | None = None,
                   content_type: str = "text/csv") -> str:
    capture = {"endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding}}
    if output is not None:
        capture["endpointOutput"] = {"observedContentType": "text/csv", "mode": "OUTPUT", "data": output, "encoding": "CSV"}
    return json.dumps({"captureData": capture, "eventMetadata": {
        "eventId": "e", "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}, "eventVersion": "0"})


def write_capture(root: Path, lines: list[str], name: str = "00-00-000-a.jsonl") -> Path:
    folder = root / "endpoint" / "AllTraffic" / "2026" / "11" / "24" / "20"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")
    return root


def capture_rows(root: Path, rows: list[list[str]]) -> Path:
    return write_capture(root, [capture_record(",".join(row)) for row in rows])


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("baseline")
    with open(folder / "train.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["x", "n", "cat"])
        writer.writerows(sample(2000, seed=1))
    suggest_baseline(folder / "train.csv", {"csv": {"header": True}}, folder)
    return {"statistics": json.loads((folder / "statistics.json").read_text()),
            "constraints": json.loads((folder / "constraints.json").read_text()), "dir": folder}


def check(baseline, source, constraints=None, out=None, **kwargs):
    return run_check(source, kwargs.pop("dataset_format", CAPTURE), baseline["statistics"],
                     constraints or baseline["constraints"], out or source.parent / f"{source.name}-out", **kwargs)


def kinds(result) -> list[tuple[str, str]]:
    return sorted((v["feature_name"], v["constraint_check_type"]) for v in result.violations)


def test_an_in_distribution_window_has_no_violations(baseline, tmp_path):
    result = check(baseline, capture_rows(tmp_path / "cap", sample(2000, seed=2)))
    assert result.violations == [] and result.records == 2000 and result.unparseable_records == 0
    written = json.loads((tmp_path / "cap-out" / "constraint_violations.json").read_text())
    assert written == {"violations": []}  # always written
    statistics = json.loads((tmp_path / "cap-out" / "statistics.json").read_text())
    assert [f["name"] for f in statistics["features"]] == ["x", "n", "cat"]


def test_a_shifted_feature_drifts_alone(baseline, tmp_path):
    result = check(baseline, capture_rows(tmp_path / "cap", sample(2000, seed=3, shift=1.0)))
    assert kinds(result) == [("x", "baseline_drift_check")]
    description = result.violations[0]["description"]
    assert description.startswith("Baseline drift distance: ") and description.endswith(" exceeds threshold: 0.1")
    assert float(description.split()[3]) > 0.3


def test_a_missing_column_is_one_violation_naming_it(baseline, tmp_path):
    result = check(baseline, capture_rows(tmp_path / "cap", [row[:2] for row in sample(500, seed=4)]))
    assert kinds(result) == [("cat", "missing_column_check")]
    assert result.violations[0]["description"] == (
        "There are missing columns in current dataset. Number of columns in current dataset: 2, "
        "Number of columns in baseline constraints: 3. Missing: cat")


def test_an_extra_column_is_one_violation_naming_it(baseline, tmp_path):
    result = check(baseline, capture_rows(tmp_path / "cap", [row + ["9"] for row in sample(500, seed=5)]))
    assert kinds(result) == [("_c3", "extra_column_check")]
    assert "Extra: _c3" in result.violations[0]["description"]


def test_values_of_the_wrong_type(baseline, tmp_path):
    rows = sample(1000, seed=6)
    for i, row in enumerate(rows):
        if i % 2:
            row[1] = "4.5"       # n is Integral in the baseline
        if i % 4 == 0:
            row[0] = "oops"     # x is Fractional
    result = check(baseline, capture_rows(tmp_path / "cap", rows))
    found = {(v["feature_name"], v["constraint_check_type"]): v["description"] for v in result.violations}
    assert found[("n", "data_type_check")] == ("Data type match requirement is not met. Expected data type: Integral, "
                                               "Expected match: 90.0%. Observed: Only 50.0% of data is Integral.")
    assert "Only 75.0% of data is Fractional" in found[("x", "data_type_check")]
    assert ("cat", "data_type_check") not in found


def test_integers_are_valid_fractional_values(baseline, tmp_path):
    rows = sample(1000, seed=7)
    for row in rows[::2]:
        row[0] = str(round(float(row[0])))  # "1" in a Fractional column is a number, not a type change
    result = check(baseline, capture_rows(tmp_path / "cap", rows))
    assert ("x", "data_type_check") not in kinds(result)


def test_lower_completeness(baseline, tmp_path):
    rows = sample(1000, seed=8)
    for row in rows[::5]:
        row[0] = ""
    result = check(baseline, capture_rows(tmp_path / "cap", rows))
    assert kinds(result) == [("x", "completeness_check")]
    assert result.violations[0]["description"] == (
        "Value: 0.8 does not meet the constraint requirement! Completeness 0.8 is below the baseline's 1.")


def test_unknown_categories(baseline, tmp_path):
    rows = sample(1000, seed=9, categories=("a", "b", "c", "zzz"), weights=(0.35, 0.2, 0.15, 0.3))
    result = check(baseline, capture_rows(tmp_path / "cap", rows))
    found = {(v["feature_name"], v["constraint_check_type"]): v["description"] for v in result.violations}
    description = found[("cat", "categorical_values_check")]
    share = float(description.split()[1])
    assert 0.2 < share < 0.4 and description.startswith(f"Value: {share} does not meet the constraint requirement! ")
    assert f"{share:.1%} of values are outside the baseline domain (e.g. 'zzz'); allowed: 10.0%." in description
    assert ("cat", "baseline_drift_check") in found  # the frequencies moved too
    few = sample(1000, seed=10, categories=("a", "b", "c", "zzz"), weights=(0.5, 0.3, 0.15, 0.05))
    assert ("cat", "categorical_values_check") not in kinds(check(baseline, capture_rows(tmp_path / "few", few)))


def test_distances_simple_and_robust():
    first = WeightedCdf([[1.0, 2.0, 3.0, 4.0]])
    second = WeightedCdf([[3.0, 4.0, 5.0, 6.0]])
    assert numerical_distance(first, second, robust=False) == 0.5
    assert numerical_distance(first, second, robust=True) == 0.0  # 1.8 * sqrt(8/16) > 0.5
    big_first, big_second = WeightedCdf([[1.0, 2.0], [3.0, 4.0]]), WeightedCdf([[1.0, 2.0, 3.0, 4.0, 4.0, 4.0]])
    assert big_first.n == 6 and numerical_distance(big_first, big_second, robust=False) == pytest.approx(1 / 6)
    assert categorical_distance({"a": 60, "b": 40}, 100, {"a": 30, "b": 70}, 100, robust=False) == pytest.approx(0.3)
    assert categorical_distance({"a": 6000, "b": 4000}, 10_000, {"a": 3000, "b": 7000}, 10_000, robust=True) == \
        pytest.approx(0.3 - 1.8 * (2 / 10_000) ** 0.5)


def test_robust_tolerates_a_small_window_that_simple_flags(baseline, tmp_path):
    root = capture_rows(tmp_path / "cap", sample(30, seed=11, shift=0.5))
    robust = check(baseline, root, out=tmp_path / "robust")
    simple_constraints = copy.deepcopy(baseline["constraints"])
    simple_constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] = "Simple"
    simple = check(baseline, root, constraints=simple_constraints, out=tmp_path / "simple")
    assert ("x", "baseline_drift_check") in kinds(simple)
    assert ("x", "baseline_drift_check") not in kinds(robust)


def test_feature_overrides_and_global_switches(baseline, tmp_path):
    root = capture_rows(tmp_path / "cap", [[str(float(r[0]) + 2), "4.5", "zzz"] for r in sample(500, seed=12)])
    everything = kinds(check(baseline, root, out=tmp_path / "all"))
    assert ("x", "baseline_drift_check") in everything and ("n", "data_type_check") in everything
    assert ("cat", "categorical_values_check") in everything

    constraints = copy.deepcopy(baseline["constraints"])
    constraints["features"][0]["monitoringConfigOverrides"] = {"evaluate_constraints": "Disabled"}
    constraints["features"][1]["monitoring_config_overrides"] = {"datatype_check_threshold": 0.6}  # the SDK's spelling
    constraints["features"][2]["monitoringConfigOverrides"] = {
        "domain_content_threshold": 1.0, "distribution_constraints": {"perform_comparison": "Disabled"}}
    overridden = kinds(check(baseline, root, constraints=constraints, out=tmp_path / "overridden"))
    assert not [k for k in overridden if k[0] in ("x", "cat")]
    assert ("n", "data_type_check") in overridden  # a 0.6 threshold still needs 40 % Integral values; none are
    constraints["features"][1]["monitoring_config_overrides"] = {"datatype_check_threshold": 1.0}
    assert ("n", "data_type_check") not in kinds(check(baseline, root, constraints=constraints, out=tmp_path / "o2"))

    no_drift = copy.deepcopy(baseline["constraints"])
    no_drift["monitoring_config"]["distribution_constraints"]["perform_comparison"] = "Disabled"
    result = check(baseline, root, constraints=no_drift, out=tmp_path / "no-drift")
    assert result.violations and all(v["constraint_check_type"] != "baseline_drift_check" for v in result.violations)
    assert not [m for m in result.metrics if m["MetricName"].startswith("feature_baseline_drift_")]

    disabled = copy.deepcopy(baseline["constraints"])
    disabled["monitoring_config"]["evaluate_constraints"] = "Disabled"
    assert check(baseline, root, constraints=disabled, out=tmp_path / "disabled").violations == []


def test_per_feature_threshold_override(baseline, tmp_path):
    root = capture_rows(tmp_path / "cap", sample(2000, seed=13, shift=0.4))
    assert ("x", "baseline_drift_check") in kinds(check(baseline, root, out=tmp_path / "a"))
    constraints = copy.deepcopy(baseline["constraints"])
    constraints["features"][0]["monitoringConfigOverrides"] = {"distribution_constraints": {"comparison_threshold": 0.9}}
    assert ("x", "baseline_drift_check") not in kinds(check(baseline, root, constraints=constraints, out=tmp_path / "b"))


# ---- capture parsing -----------------------------------------------------------------------------

def test_payload_encodings_and_shapes(baseline, tmp_path):
    lines = [
        capture_record("0.1,1,a"),                                                       # one CSV row
        capture_record("0.2,2,b\n0.3,3,c\n"),                                            # two CSV rows
        capture_record(base64.b64encode(b"0.4,4,a").decode(), "BASE64"),                 # BASE64 CSV
        capture_record(json.dumps({"x": 0.5, "n": 5, "cat": "b"}), "JSON", content_type="application/json"),
        capture_record(json.dumps([[0.6, 6, "c"], [0.7, 7, "a"]]), "JSON", content_type="application/json"),
        capture_record(json.dumps({"instances": [[0.8, 8, "b"]]}), "JSON", content_type="application/json"),
        capture_record(json.dumps([0.9, 9, "c"]), "JSON", content_type="application/json"),  # one positional row
        capture_record(base64.b64encode(json.dumps({"x": 1.0, "n": 1, "cat": "a"}).encode()).decode(), "BASE64",
                       content_type="application/json"),
    ]
    result = check(baseline, write_capture(tmp_path / "cap", lines))
    assert result.records == 8 and result.unparseable_records == 0
    stats = {f["name"]: f for f in result.statistics["features"]}
    assert result.statistics["dataset"]["item_count"] == 10
    assert stats["x"]["numerical_statistics"]["sum"] == pytest.approx(5.5)
    assert stats["n"]["inferred_type"] == "Integral" and stats["n"]["numerical_statistics"]["sum"] == 46
    assert stats["cat"]["string_statistics"]["distinct_count"] == 3.0


def test_output_columns_come_first(tmp_path):
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "train.csv").write_text("label,f1,f2\n" + "\n".join(f"{i % 2},{i},{i * 0.5}" for i in range(50)) + "\n")
    suggest_baseline(folder / "train.csv", {"csv": {"header": True, "output_columns_position": "START"}}, folder)
    root = write_capture(tmp_path / "cap", [capture_record(f"{i},{i * 0.5}", output=str(i % 2)) for i in range(50)])
    result = run_check(root, {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}},
                       folder / "statistics.json", folder / "constraints.json", tmp_path / "out")
    assert result.violations == []
    assert [f["name"] for f in result.statistics["features"]] == ["label", "f1", "f2"]
    # a batch of N rows answered with a JSON list of N predictions: one prediction per row
    lines = [json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,0.5\n2,1.0", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": "[1, 0]", "encoding": "JSON"}},
        "eventMetadata": {"eventId": "e", "inferenceTime": "2026-11-24T20:00:00Z"}, "eventVersion": "0"})]
    result = run_check(write_capture(tmp_path / "cap2", lines),
                       {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}},
                       folder / "statistics.json", folder / "constraints.json", tmp_path / "out2")
    assert result.statistics["dataset"]["item_count"] == 2 and result.unparseable_records == 0


def test_the_time_window_selects_records_by_inference_time(baseline, tmp_path):
    rows = sample(300, seed=14)
    lines = [capture_record(",".join(row), at=HOUR + timedelta(minutes=i % 90)) for i, row in enumerate(rows)]
    root = write_capture(tmp_path / "cap", lines)
    result = check(baseline, root, start_time=HOUR, end_time=HOUR + timedelta(hours=1))
    assert result.records == sum(1 for i in range(300) if i % 90 < 60) and result.outside_window == 300 - result.records
    with pytest.raises(DataQualityError, match=r"No captured data in the analysis window: all 300 record"):
        check(baseline, root, start_time=HOUR + timedelta(hours=5), end_time=HOUR + timedelta(hours=6))


def test_unparseable_records_are_counted_and_sampled(baseline, tmp_path):
    good = [capture_record(",".join(row)) for row in sample(100, seed=15)]
    bad = ["not json at all", json.dumps({"eventVersion": "0"}), capture_record("!!!", "BASE64"),
           capture_record("[1, [2]]", "JSON"), capture_record("", "CSV")]
    result = check(baseline, write_capture(tmp_path / "cap", good + bad))
    assert result.records == 100 and result.unparseable_records == 5
    assert result.unparseable_samples[0].startswith("00-00-000-a.jsonl line 101: not valid JSON")
    assert "no captureData object" in result.unparseable_samples[1]
    assert "BASE64 data that is not UTF-8 text" in result.unparseable_samples[2]
    with pytest.raises(DataQualityError, match=r"None of the 5 captured record\(s\).*could be read; first: .*line 1: not valid JSON"):
        check(baseline, write_capture(tmp_path / "only-bad", bad))


def test_an_empty_capture_prefix_fails_as_aws_does(baseline, tmp_path):
    (tmp_path / "cap").mkdir()
    with pytest.raises(DataQualityError, match=r"Job inputs had no data"):
        check(baseline, tmp_path / "cap")


def test_a_batch_style_check_on_a_headerless_csv_uses_the_baseline_names(baseline, tmp_path):
    (tmp_path / "batch.csv").write_text("\n".join(",".join(row) for row in sample(500, seed=16)) + "\n")
    result = check(baseline, tmp_path / "batch.csv", dataset_format={"csv": {"header": False}})
    assert result.violations == [] and [f["name"] for f in result.statistics["features"]] == ["x", "n", "cat"]


def test_unreadable_baseline_files_are_named(baseline, tmp_path):
    root = capture_rows(tmp_path / "cap", sample(10, seed=17))
    with pytest.raises(DataQualityError, match=r"cannot read the baseline statistics file '.*missing\.json'"):
        run_check(root, CAPTURE, tmp_path / "missing.json", baseline["dir"] / "constraints.json", tmp_path / "o")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataQualityError, match=r"broken\.json is not valid JSON"):
        run_check(root, CAPTURE, baseline["dir"] / "statistics.json", tmp_path / "broken.json", tmp_path / "o")
    (tmp_path / "shape.json").write_text(json.dumps({"features": [{"name": "x", "inferred_type": "Integral"}]}))
    with pytest.raises(DataQualityError, match=r"shape\.json: features\[0\] \('x'\) is Integral but has no numerical_statistics"):
        run_check(root, CAPTURE, tmp_path / "shape.json", baseline["dir"] / "constraints.json", tmp_path / "o")


# ---- metrics -------------------------------------------------------------------------------------

def test_metrics_for_an_endpoint_schedule(baseline, tmp_path):
    result = check(baseline, capture_rows(tmp_path / "cap", sample(200, seed=18)),
                   endpoint_name="churn", schedule_name="hourly")
    assert result.metrics_namespace == "/aws/sagemaker/Endpoints/data-metric"
    by_name = {m["MetricName"]: m for m in result.metrics}
    assert set(by_name) == {"feature_data_x", "feature_data_n", "feature_non_null_x", "feature_non_null_n",
                            "feature_non_null_cat", "feature_baseline_drift_x", "feature_baseline_drift_n",
                            "feature_baseline_drift_cat"}
    data_n = by_name["feature_data_n"]
    assert data_n["Dimensions"] == [{"Name": "EndpointName", "Value": "churn"}, {"Name": "ScheduleName", "Value": "hourly"}]
    values = [int(row[1]) for row in sample(200, seed=18)]
    assert data_n["StatisticValues"] == {"SampleCount": 200.0, "Sum": float(sum(values)),
                                         "Minimum": float(min(values)), "Maximum": float(max(values))}
    assert data_n["Unit"] == "None" and "Timestamp" not in data_n
    assert by_name["feature_non_null_cat"]["Value"] == 1.0
    assert 0 <= by_name["feature_baseline_drift_x"]["Value"] < 0.1


def test_metrics_without_an_endpoint_and_emit_metrics_disabled(baseline, tmp_path):
    root = capture_rows(tmp_path / "cap", sample(50, seed=19))
    result = check(baseline, root, schedule_name="batch-schedule", out=tmp_path / "a")
    assert result.metrics_namespace == "/aws/sagemaker/ModelMonitoring/data-metric"
    assert result.metrics[0]["Dimensions"] == [{"Name": "MonitoringSchedule", "Value": "batch-schedule"}]
    constraints = copy.deepcopy(baseline["constraints"])
    constraints["features"][0]["monitoringConfigOverrides"] = {"emit_metrics": "Disabled"}
    names = {m["MetricName"] for m in check(baseline, root, constraints=constraints, out=tmp_path / "b").metrics}
    assert not [name for name in names if name.endswith("_x")] and "feature_data_n" in names
    constraints["monitoring_config"]["emit_metrics"] = "Disabled"
    assert check(baseline, root, constraints=constraints, out=tmp_path / "c").metrics == []


def test_the_vectorised_and_per_record_capture_readers_agree(baseline, tmp_path, monkeypatch):
    from data_quality import capture as dq_capture

    rows = sample(400, seed=20)
    for row in rows[::7]:
        row[0] = ""  # empty fields are missing on both paths
    lines = [capture_record(",".join(row), at=HOUR + timedelta(minutes=i % 80)) for i, row in enumerate(rows)]
    root = write_capture(tmp_path / "cap", lines)
    window = {"start_time": HOUR, "end_time": HOUR + timedelta(hours=1)}
    fast = check(baseline, root, out=tmp_path / "fast", **window)
    calls = []
    monkeypatch.setattr(dq_capture.CaptureReader, "_vectorised", lambda self, path: calls.append(path))
    slow = check(baseline, root, out=tmp_path / "slow", **window)
    assert calls  # the per-record path really ran
    assert (fast.records, fast.outside_window, fast.violations) == (slow.records, slow.outside_window, slow.violations)
    for one, two in zip(fast.statistics["features"], slow.statistics["features"]):
        assert one["name"] == two["name"] and one["inferred_type"] == two["inferred_type"]
        key = "numerical_statistics" if "numerical_statistics" in one else "string_statistics"
        assert one[key]["common"] == two[key]["common"]
        if key == "numerical_statistics":
            assert one[key]["sum"] == pytest.approx(two[key]["sum"])
