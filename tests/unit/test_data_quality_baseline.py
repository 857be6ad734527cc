"""suggest_baseline: golden files, statistics recomputed independently, type inference, sources,
the SDK's readers, and bad input."""

from __future__ import annotations

import csv
import json
import math
import statistics as pystats
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import data_quality
from data_quality import DataQualityError, kll, suggest_baseline
from data_quality import api as dq_api
from data_quality import profile as dq_profile
from data_quality.profile import KIND_FRACTIONAL, KIND_INTEGRAL, KIND_STRING, classify_text

GOLDEN = Path(__file__).parent / "data_quality_golden"
CSV_FORMAT = {"csv": {"header": True, "output_columns_position": "START"}}


def assert_same_document(actual, expected, path="$"):
    """Exact structure; floats within 1e-9; KLL `data` levels compared as multisets (the order of
    items inside a level is the sketch's business)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            if key == "data" and path.endswith(".sketch"):
                assert [sorted(level) for level in actual[key]] == [sorted(level) for level in expected[key]], path
            else:
                assert_same_document(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same_document(a, e, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert isinstance(actual, float) and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected and type(actual) is type(expected), f"{path}: {actual!r} != {expected!r}"


def feature(document: dict, name: str) -> dict:
    return next(f for f in document["features"] if f["name"] == name)


@pytest.fixture(scope="module")
def golden_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    result = suggest_baseline(GOLDEN / "baseline.csv", CSV_FORMAT, out)
    return result, out


def test_golden_statistics_and_constraints(golden_result):
    result, out = golden_result
    expected_statistics = json.loads((GOLDEN / "statistics.json").read_text())
    expected_constraints = json.loads((GOLDEN / "constraints.json").read_text())
    assert_same_document(result.statistics, expected_statistics)
    assert_same_document(result.constraints, expected_constraints)
    assert_same_document(json.loads((out / "statistics.json").read_text()), expected_statistics)
    assert_same_document(json.loads((out / "constraints.json").read_text()), expected_constraints)


def test_golden_types_and_constraints_follow_deequ(golden_result):
    result, _ = golden_result
    types = {f["name"]: f["inferred_type"] for f in result.statistics["features"]}
    # code mixes "100" with "A3" -> String; score has one "3.5" among integers -> Fractional; note is empty -> Unknown
    assert types == {"age": "Integral", "income": "Fractional", "plan": "String", "code": "String",
                     "note": "Unknown", "score": "Fractional"}
    constraints = result.constraints
    assert feature(constraints, "income")["completeness"] == pytest.approx(0.9)
    assert feature(constraints, "plan")["string_constraints"] == {"domains": ["basic", "pro", "enterprise"]}
    assert "string_constraints" not in feature(constraints, "code")  # 30 distinct values seen once each
    assert feature(constraints, "age")["num_constraints"] == {"is_non_negative": True}
    assert constraints["monitoring_config"] == {
        "evaluate_constraints": "Enabled", "emit_metrics": "Enabled", "datatype_check_threshold": 0.1,
        "domain_content_threshold": 0.1,
        "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                     "comparison_method": "Robust", "categorical_comparison_threshold": 0.1,
                                     "categorical_drift_method": "LInfinity"}}


def test_numbers_match_an_independent_computation(golden_result):
    result, _ = golden_result
    with open(GOLDEN / "baseline.csv") as stream:
        rows = list(csv.DictReader(stream))
    for name in ("age", "income", "score"):
        values = [float(row[name]) for row in rows if row[name] != ""]
        numbers = feature(result.statistics, name)["numerical_statistics"]
        assert numbers["common"] == {"num_present": len(values), "num_missing": len(rows) - len(values)}
        assert numbers["mean"] == pytest.approx(pystats.fmean(values))
        assert numbers["std_dev"] == pytest.approx(pystats.pstdev(values))  # population, as Deequ
        assert numbers["sum"] == pytest.approx(math.fsum(values))
        assert (numbers["min"], numbers["max"]) == (min(values), max(values))
        buckets = numbers["distribution"]["kll"]["buckets"]
        width = (max(values) - min(values)) / 10
        assert len(buckets) == 10
        for i, bucket in enumerate(buckets):
            assert bucket["lower_bound"] == pytest.approx(min(values) + width * i)
            assert bucket["upper_bound"] == pytest.approx(min(values) + width * (i + 1))
            # exact below k items: (lower, upper], the first bucket closed on the left
            inside = [v for v in values if (v >= bucket["lower_bound"] if i == 0 else v > bucket["lower_bound"])
                      and v <= bucket["upper_bound"]]
            assert bucket["count"] == float(len(inside)), (name, i)
        assert sum(b["count"] for b in buckets) == len(values)
        sketch = numbers["distribution"]["kll"]["sketch"]
        assert sketch["parameters"] == {"c": 0.64, "k": 2048.0}
        assert sorted(sketch["data"][0]) == sorted(values) and len(sketch["data"]) == 1
    plan = feature(result.statistics, "plan")["string_statistics"]
    assert plan["distinct_count"] == 3.0
    assert plan["distribution"]["categorical"]["buckets"] == [
        {"value": "basic", "count": 14}, {"value": "pro", "count": 10}, {"value": "enterprise", "count": 6}]


@pytest.mark.parametrize("n", [1, 7, 5000, 300_000])
def test_kll_levels_parsed_from_the_serialization_reproduce_the_sketch(n):
    values = np.random.default_rng(n).lognormal(size=n)
    sketch = kll.new_sketch()
    sketch.update(values)
    levels = kll.sketch_levels(sketch)
    assert sum(len(level) * 2 ** i for i, level in enumerate(levels)) == sketch.n == n
    assert sum(len(level) for level in levels) == sketch.num_retained
    cdf = kll.WeightedCdf(levels)
    for point in np.quantile(values, [0.0, 0.1, 0.5, 0.9, 1.0]):
        assert cdf.rank([point])[0] / cdf.n == pytest.approx(sketch.get_rank(point, inclusive=True), abs=1e-12)
    buckets = kll.equal_width_buckets(cdf, values.min(), values.max())
    assert sum(b["count"] for b in buckets) == n


def test_kll_of_an_empty_sketch_has_no_levels():
    assert kll.sketch_levels(kll.new_sketch()) == []


def test_text_values_are_classified_per_value_as_deequ_does():
    cases = {"1": KIND_INTEGRAL, "-2": KIND_INTEGRAL, "+3": KIND_INTEGRAL, "007": KIND_INTEGRAL,
             "1.5": KIND_FRACTIONAL, ".5": KIND_FRACTIONAL, "5.": KIND_FRACTIONAL, "-0.25": KIND_FRACTIONAL,
             "1e-05": KIND_FRACTIONAL, "2E3": KIND_FRACTIONAL,
             "abc": KIND_STRING, "nan": KIND_STRING, "inf": KIND_STRING, "-": KIND_STRING, ".": KIND_STRING,
             " 5": KIND_STRING, "true": KIND_STRING, "1,5": KIND_STRING, "": KIND_STRING}
    kinds, numbers = classify_text(pa.array(list(cases)))
    assert dict(zip(cases, kinds.tolist())) == cases
    assert numbers[:10].tolist() == [1, -2, 3, 7, 1.5, 0.5, 5, -0.25, 1e-05, 2000]
    # the fast path (a column of numbers casts as a whole) agrees with the regex path
    kinds, numbers = classify_text(pa.array(["1", "2.5", "3e2", "-4"]))
    assert kinds.tolist() == [KIND_INTEGRAL, KIND_FRACTIONAL, KIND_FRACTIONAL, KIND_INTEGRAL]
    assert numbers.tolist() == [1, 2.5, 300, -4]


def test_parquet_columns_keep_their_arrow_types(tmp_path):
    table = pa.table({
        "count": pa.array([1, 2, None, 4], pa.int64()),
        "ratio": pa.array([0.5, float("nan"), 1.5, None]),   # NaN and null are both missing
        "digits": pa.array(["1", "2", "3", None]),          # text: classified per value -> Integral
        "flag": pa.array([True, False, True, True]),         # Model Monitor has no Boolean -> String
        "when": pa.array([1, 2, 3, 4], pa.timestamp("s")),
    })
    pq.write_table(table, tmp_path / "data.parquet")
    result = suggest_baseline(tmp_path / "data.parquet", {"parquet": {}}, tmp_path / "out")
    types = {f["name"]: f["inferred_type"] for f in result.statistics["features"]}
    assert types == {"count": "Integral", "ratio": "Fractional", "digits": "Integral", "flag": "String", "when": "String"}
    ratio = feature(result.statistics, "ratio")["numerical_statistics"]
    assert ratio["common"] == {"num_present": 2, "num_missing": 2} and ratio["mean"] == 1.0
    flag = feature(result.statistics, "flag")["string_statistics"]
    assert flag["distribution"]["categorical"]["buckets"] == [{"value": "true", "count": 3}, {"value": "false", "count": 1}]


def test_json_lines_typed_fields_and_fields_of_mixed_types(tmp_path):
    (tmp_path / "typed.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"a": 1, "b": 1.5, "c": "x"}, {"a": 2, "b": 2.0, "c": "y"}, {"a": 3, "c": "x"}]) + "\n")
    result = suggest_baseline(tmp_path / "typed.jsonl", {"json": {"lines": True}}, tmp_path / "out1")
    assert {f["name"]: f["inferred_type"] for f in result.statistics["features"]} == {
        "a": "Integral", "b": "Fractional", "c": "String"}
    assert feature(result.statistics, "b")["numerical_statistics"]["common"] == {"num_present": 2, "num_missing": 1}
    # a field that is a number in one line and a string in another is text, classified per value
    (tmp_path / "mixed.jsonl").write_text('{"v": 1, "w": 2}\n{"v": "oops", "w": 3.5}\n')
    result = suggest_baseline(tmp_path / "mixed.jsonl", {"json": {"lines": True}}, tmp_path / "out2")
    assert {f["name"]: f["inferred_type"] for f in result.statistics["features"]} == {"v": "String", "w": "Fractional"}
    # a whole-document JSON dataset: a list of objects
    (tmp_path / "doc.json").write_text(json.dumps([{"k": 1}, {"k": 2}]))
    result = suggest_baseline(tmp_path / "doc.json", {"json": {"lines": False}}, tmp_path / "out3")
    assert result.statistics["dataset"] == {"item_count": 2}


def test_a_directory_is_read_file_by_file_and_every_file_needs_the_same_header(tmp_path):
    data = tmp_path / "data"
    (data / "part").mkdir(parents=True)
    (data / "a.csv").write_text("x,y\n1,a\n2,b\n")
    (data / "part" / "b.csv").write_text("x,y\n3,a\n")
    (data / "_SUCCESS").write_text("")
    result = suggest_baseline(data, CSV_FORMAT, tmp_path / "out")
    assert result.statistics["dataset"] == {"item_count": 3}
    (data / "part" / "c.csv").write_text("x,z\n4,a\n")
    with pytest.raises(DataQualityError, match=r"c\.csv has the columns \['x', 'z'\].*same columns"):
        suggest_baseline(data, CSV_FORMAT, tmp_path / "out")


def test_headerless_csv_columns_are_named_as_spark_names_them(tmp_path):
    (tmp_path / "d.csv").write_text("1,a\n2,b\n")
    result = suggest_baseline(tmp_path / "d.csv", {"csv": {"header": False}}, tmp_path / "out")
    assert [f["name"] for f in result.statistics["features"]] == ["_c0", "_c1"]


def test_a_numeric_text_column_that_turns_string_late_is_profiled_again(tmp_path, monkeypatch):
    monkeypatch.setattr(dq_profile, "NUMERIC_TEXT_COUNT_CAP", 50)
    monkeypatch.setattr(dq_profile.ColumnProfile, "count_cap", 50)
    monkeypatch.setattr(dq_profile.DatasetProfile, "count_cap", 50)
    monkeypatch.setattr(data_quality.sources, "CSV_BLOCK_BYTES", 256)  # many small batches
    lines = [str(i) for i in range(200)] + ["late-string"]
    (tmp_path / "d.csv").write_text("v\n" + "\n".join(lines) + "\n")
    result = suggest_baseline(tmp_path / "d.csv", CSV_FORMAT, tmp_path / "out")
    strings = feature(result.statistics, "v")["string_statistics"]
    assert feature(result.statistics, "v")["inferred_type"] == "String"
    assert strings["distinct_count"] == 201.0  # exact, although counts were dropped after 50 values


def test_two_processes_split_the_columns_and_agree_with_one(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    table = pa.table({"a": rng.normal(size=20_000), "b": rng.integers(0, 50, 20_000),
                      "c": pa.array(np.array(["x", "y", "z"])[rng.integers(0, 3, 20_000)]),
                      "d": rng.exponential(size=20_000)})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=5_000)
    single = suggest_baseline(tmp_path / "t.parquet", {"parquet": {}}, tmp_path / "one")
    monkeypatch.setattr(dq_api, "PARALLEL_MIN_BYTES", 0)
    split = suggest_baseline(tmp_path / "t.parquet", {"parquet": {}}, tmp_path / "two")
    assert_same_document(split.constraints, single.constraints)
    for one, two in zip(single.statistics["features"], split.statistics["features"]):
        assert one["name"] == two["name"] and one["inferred_type"] == two["inferred_type"]
        if "numerical_statistics" in one:
            for key in ("mean", "sum", "std_dev", "min", "max", "common"):
                assert two["numerical_statistics"][key] == pytest.approx(one["numerical_statistics"][key])
        else:
            assert two == one


def test_a_script_without_a_main_guard_can_profile_in_two_processes(tmp_path):
    """The workers are plain subprocesses: nothing re-imports the caller's __main__ (a spawn pool would)."""
    import subprocess
    import sys

    pq.write_table(pa.table({"a": np.arange(5_000.0), "b": np.arange(5_000) % 7}), tmp_path / "t.parquet")
    script = tmp_path / "profile_it.py"
    script.write_text(
        "import data_quality.api as api\n"
        "api.PARALLEL_MIN_BYTES = 0\n"
        f"result = api.suggest_baseline({str(tmp_path / 't.parquet')!r}, {{'parquet': {{}}}}, {str(tmp_path / 'out')!r})\n"
        "print(result.statistics['dataset']['item_count'])\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5000"


def test_the_sdk_readers_parse_our_files(golden_result, tmp_path, monkeypatch):
    """The SageMaker SDK's Statistics/Constraints round-trip our files through (moto's) S3."""
    import boto3
    from moto import mock_aws
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.model_monitor.monitoring_files import Constraints, ConstraintViolations, Statistics

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    result, out = golden_result
    check = data_quality.run_check(GOLDEN / "baseline.csv", CSV_FORMAT, out / "statistics.json",
                                   out / "constraints.json", tmp_path / "check")
    with mock_aws():
        session = Session(boto_session=boto3.Session(region_name="us-east-1"))
        statistics = Statistics.from_file_path(str(out / "statistics.json"), sagemaker_session=session)
        constraints = Constraints.from_file_path(str(out / "constraints.json"), sagemaker_session=session)
        violations = ConstraintViolations.from_file_path(str(tmp_path / "check" / "constraint_violations.json"),
                                                         sagemaker_session=session)
    assert statistics.file_s3_uri.endswith("/statistics.json")
    assert statistics.body_dict == result.statistics
    assert [f["name"] for f in constraints.body_dict["features"]] == ["age", "income", "plan", "code", "note", "score"]
    assert violations.body_dict == {"violations": check.violations} and check.violations == []
    # the SDK's own edit (feature-level override) is honoured by the check
    constraints.set_monitoring(False, "plan")
    assert feature(constraints.body_dict, "plan")["monitoring_config_overrides"] == {"evaluate_constraints": "Disabled"}
    constraints.set_monitoring(False)
    assert constraints.body_dict["monitoring_config"]["evaluate_constraints"] == "Disabled"


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset_format, message", [
    ({"avro": {}}, r"unknown key 'avro'; use one of csv, json, parquet, sagemakerCaptureJson"),
    ({}, r"exactly one of csv, json, parquet"),
    ({"csv": {}, "json": {}}, r"exactly one of"),
    ({"csv": {"header": "maybe"}}, r"'header' must be true or false"),
    ({"csv": {"output_columns_position": "MIDDLE"}}, r"output_columns_position must be START or END"),
    ({"sagemakerCaptureJson": {"captureIndexNames": ["endpointBody"]}}, r"captureIndexNames must list endpointInput"),
    ("{not json", r"dataset_format is not valid JSON"),
])
def test_a_bad_dataset_format_is_named(tmp_path, dataset_format, message):
    with pytest.raises(DataQualityError, match=message):
        suggest_baseline(GOLDEN / "baseline.csv", dataset_format, tmp_path)


def test_job_definition_style_dataset_formats_are_accepted(tmp_path):
    result = suggest_baseline(GOLDEN / "baseline.csv", {"Csv": {"Header": True}}, tmp_path)
    assert result.statistics["dataset"]["item_count"] == 30


def test_an_empty_dataset_fails_clearly(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataQualityError, match=r"Job inputs had no data: dataset_source '.*empty' holds no files"):
        suggest_baseline(tmp_path / "empty", CSV_FORMAT, tmp_path / "out")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DataQualityError, match=r"header\.csv' has no rows"):
        suggest_baseline(tmp_path / "header.csv", CSV_FORMAT, tmp_path / "out")
    with pytest.raises(DataQualityError, match=r"dataset_source '.*nowhere' does not exist"):
        suggest_baseline(tmp_path / "nowhere", CSV_FORMAT, tmp_path / "out")


def test_bad_csv_headers_and_files_are_named(tmp_path):
    (tmp_path / "dup.csv").write_text("a,a\n1,2\n")
    with pytest.raises(DataQualityError, match=r"dup\.csv: the header names \['a'\] more than once"):
        suggest_baseline(tmp_path / "dup.csv", CSV_FORMAT, tmp_path / "out")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataQualityError, match=r"ragged\.csv: cannot read as CSV with 2 columns"):
        suggest_baseline(tmp_path / "ragged.csv", CSV_FORMAT, tmp_path / "out")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataQualityError, match=r"bad\.parquet is not a Parquet file"):
        suggest_baseline(tmp_path / "bad.parquet", {"parquet": {}}, tmp_path / "out")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\nnot json\n')
    with pytest.raises(DataQualityError, match=r"bad\.jsonl line 2 is not valid JSON"):
        suggest_baseline(tmp_path / "bad.jsonl", {"json": {"lines": True}}, tmp_path / "out")


def test_nested_columns_are_refused_with_the_fix(tmp_path):
    pq.write_table(pa.table({"v": pa.array([[1, 2], [3]])}), tmp_path / "n.parquet")
    with pytest.raises(DataQualityError, match=r"Column 'v' has the nested type list<.*Flatten"):
        suggest_baseline(tmp_path / "n.parquet", {"parquet": {}}, tmp_path / "out")
