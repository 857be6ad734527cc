"""The traffic-split test: exact binomial per variant, Bonferroni-corrected, zero weights exact."""

from __future__ import annotations

import json

import pytest

from sagemaker_ops.traffic_split import check_split


def test_a_split_close_to_the_weights_is_consistent():
    report = check_split({"A": 24, "B": 176}, {"A": 1, "B": 9}, significance=0.001)
    assert report.consistent
    assert report.threshold == 0.0005
    assert [(v.variant, v.expected_share, v.count) for v in report.variants] == [("A", 0.1, 24), ("B", 0.9, 176)]
    assert all(v.p_value > 0.1 for v in report.variants)


def test_a_router_ignoring_the_weights_is_caught():
    report = check_split({"A": 100, "B": 100}, {"A": 1, "B": 9}, significance=0.001)
    assert not report.consistent
    assert all(v.p_value < 1e-20 for v in report.variants)
    assert "<-- inconsistent" in report.table()


def test_a_variant_with_weight_zero_must_get_nothing():
    assert check_split({"A": 200}, {"A": 1, "B": 0}, significance=0.001).consistent
    report = check_split({"A": 199, "B": 1}, {"A": 1, "B": 0}, significance=0.001)
    assert not report.consistent and report.variants[1].p_value == 0.0


def test_an_answer_from_an_unknown_variant_is_inconsistent():
    report = check_split({"A": 100, "Blue": 100}, {"A": 1}, significance=0.001)
    assert not report.consistent and report.unexpected == {"Blue": 100}
    assert "not a variant of the endpoint" in report.table()


def test_the_result_is_json_and_names_the_test():
    result = check_split({"A": 48, "B": 52}, {"A": 1, "B": 1}, significance=0.01).to_dict()
    assert json.loads(json.dumps(result)) == result
    assert result["counts"] == {"A": 48, "B": 52} and result["expected_shares"] == {"A": 0.5, "B": 0.5}
    assert "binomial" in result["test"] and "Bonferroni" in result["test"]


@pytest.mark.parametrize(
    ("counts", "weights", "significance", "message"),
    [
        ({"A": 1}, {"A": 1}, 0, "significance must be between 0 and 1"),
        ({"A": 1}, {"A": 0}, 0.01, "at least one variant a weight above 0"),
        ({}, {"A": 1}, 0.01, "No invocations were counted"),
    ],
)
def test_meaningless_inputs_are_refused(counts, weights, significance, message):
    with pytest.raises(ValueError, match=message):
        check_split(counts, weights, significance)
