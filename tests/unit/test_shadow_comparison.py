"""The shadow-test comparison: thresholds parsed field by field, capture records paired, answers compared,
each missed threshold worded with measured vs allowed."""

from __future__ import annotations

import base64
import json
import re

import pytest

from sagemaker_ops.shadow_comparison import (
    ShadowThresholds,
    VariantMeasures,
    agreement,
    answers_agree,
    breaches,
    pair_answers,
    record_output,
)


def record(output: str | None, inference_id: str | None = None, event_id: str | None = "e", encoding="JSON"):
    metadata = {key: value for key, value in (("inferenceId", inference_id), ("eventId", event_id)) if value}
    capture = {"endpointInput": {"data": "{}", "encoding": "JSON", "mode": "INPUT"}}
    if output is not None:
        data = base64.b64encode(output.encode()).decode() if encoding == "BASE64" else output
        capture["endpointOutput"] = {"data": data, "encoding": encoding, "mode": "OUTPUT"}
    return {"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"}


def measures(invocations=10.0, errors_4xx=0.0, errors_5xx=0.0, p50=5.0, p99=10.0) -> VariantMeasures:
    return VariantMeasures(invocations, errors_4xx, errors_5xx, p50, p99)


# -- thresholds -----------------------------------------------------------------------------------

def test_thresholds_parse_every_field():
    parsed = ShadowThresholds.parse({"min_agreement": 0.9, "max_error_rate": 0, "max_latency_p99_ratio": 1.5,
                                     "max_latency_p99_increase_ms": 20, "numeric_tolerance": 0.01})
    assert parsed == ShadowThresholds(0.9, 0.0, 1.5, 20.0, 0.01)
    assert ShadowThresholds.parse({"min_agreement": 1, "max_error_rate": None}).max_error_rate is None


@pytest.mark.parametrize(("spec", "message"), [
    ([0.9], "thresholds must be a mapping"),
    ({"min_agrement": 0.9}, "thresholds has unknown field(s) min_agrement; use min_agreement"),
    ({"min_agreement": "high"}, "thresholds.min_agreement must be a number, got 'high'"),
    ({"min_agreement": True}, "thresholds.min_agreement must be a number"),
    ({"min_agreement": float("nan")}, "thresholds.min_agreement must be a number"),
    ({"min_agreement": 95}, "thresholds.min_agreement is a share: give a number from 0 to 1, got 95.0"),
    ({"max_error_rate": -0.1}, "thresholds.max_error_rate is a share"),
    ({"max_latency_p99_increase_ms": -1}, "thresholds.max_latency_p99_increase_ms must be >= 0"),
    ({"min_agreement": 1, "numeric_tolerance": -1}, "thresholds.numeric_tolerance must be >= 0"),
    ({"max_latency_p99_ratio": 0}, "thresholds.max_latency_p99_ratio must be > 0"),
    ({"numeric_tolerance": 0.1}, "thresholds checks nothing"),
    ({}, "thresholds checks nothing"),
])
def test_invalid_thresholds_name_the_field(spec, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        ShadowThresholds.parse(spec)


# -- pairing --------------------------------------------------------------------------------------

def test_records_pair_by_inference_id_else_event_id():
    production = [record('{"a": 1}', "i1"), record('{"a": 2}', "i2"), record('{"a": 3}', None, "ev3"),
                  record('{"a": 4}', "only-production")]
    shadow = [record('{"a": 2}', "i2"), record('{"a": 1}', "i1"), record('{"a": 30}', None, "ev3"),
              record('{"a": 5}', "only-shadow")]
    assert pair_answers(production, shadow) == [('{"a": 3}', '{"a": 30}'), ('{"a": 1}', '{"a": 1}'),
                                                ('{"a": 2}', '{"a": 2}')]


def test_records_without_a_key_or_an_output_are_not_paired():
    production = [record('{"a": 1}', None, None), record(None, "i2"), record('{"a": 3}', "i3")]
    shadow = [record('{"a": 1}', None, None), record('{"a": 2}', "i2"), record('{"a": 3}', "i3")]
    assert pair_answers(production, shadow) == [('{"a": 3}', '{"a": 3}')]


def test_base64_outputs_are_decoded():
    assert record_output(record("1,2,3", "i", encoding="BASE64")) == "1,2,3"
    assert record_output({"captureData": {}}) is None


# -- agreement ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("production", "shadow", "tolerance", "agree"), [
    ("same text", "same text", 0, True),
    ("1,2", "1,3", 0.5, False),  # not JSON, not equal
    ('{"p": [0.5, 0.25]}', '{"p":[0.5,0.25]}', 0, True),  # JSON spacing does not matter
    ('{"p": [0.5]}', '{"p": [0.5001]}', 0, False),
    ('{"p": [0.5]}', '{"p": [0.5001]}', 0.001, True),
    ('{"p": [0.5]}', '{"p": [0.6]}', 0.001, False),
    ('{"p": 1}', '{"q": 1}', 0, False),  # other keys
    ('[1, 2]', '[1, 2, 3]', 0, False),  # other lengths
    ('{"label": "setosa"}', '{"label": "virginica"}', 1, False),
    ('true', '1', 1, False),  # a boolean is not a number
    ('"1"', '1', 0, False),
    ('null', 'null', 0, True),
])
def test_answers_agree(production, shadow, tolerance, agree):
    assert answers_agree(production, shadow, tolerance) is agree


def test_agreement_rate_and_none_without_pairs():
    assert agreement([("1", "1"), ("2", "2"), ("3", "4"), ("5", "5")]) == 0.75
    assert agreement([("1.0", "1.04")], tolerance=0.05) == 1.0
    assert agreement([]) is None


# -- breaches -------------------------------------------------------------------------------------

def test_a_shadow_within_every_threshold_passes():
    thresholds = ShadowThresholds(0.9, 0.01, 1.5, 5.0)
    assert breaches(thresholds, 0.95, 20, measures(p99=10), measures(p99=14)) == []


def test_each_missed_threshold_is_listed_with_measured_and_allowed():
    thresholds = ShadowThresholds(min_agreement=0.9, max_error_rate=0.1, max_latency_p99_ratio=1.5,
                                  max_latency_p99_increase_ms=5)
    found = breaches(thresholds, 0.5, 8, measures(p99=10), measures(invocations=10, errors_4xx=1, errors_5xx=2,
                                                                     p99=30))
    assert found == [
        "agreement: measured 50.00% over 8 pairs, at least 90.00% required",
        "error rate: measured 30.00% (1 4XX + 2 5XX of 10 invocations), at most 10.00% allowed",
        "latency p99 increase: measured 20.0 ms (30.0 vs 10.0 ms), at most 5 ms allowed",
        "latency p99 ratio: measured 3.00x (30.0 vs 10.0 ms), at most 1.5x allowed",
    ]


def test_nothing_to_measure_is_a_breach_not_a_pass():
    thresholds = ShadowThresholds(min_agreement=0.9, max_error_rate=0.1, max_latency_p99_ratio=1.5)
    found = breaches(thresholds, None, 0, measures(), measures(invocations=0, p99=None))
    assert found == ["agreement: no request was answered by both variants (0 pairs captured), "
                     "at least 90.00% required",
                     "error rate: the shadow received no invocations; send traffic or lengthen the window",
                     "latency p99: no ModelLatency datapoint for the shadow variant; it answered no request"]
    assert breaches(ShadowThresholds(max_latency_p99_increase_ms=1), None, 0, measures(p99=None), measures()) == [
        "latency p99: no ModelLatency datapoint for the production variant; it answered no request"]


def test_unchecked_thresholds_are_not_measured():
    assert breaches(ShadowThresholds(max_error_rate=0.5), None, 0, measures(p99=None), measures(p99=None)) == []
    assert breaches(ShadowThresholds(min_agreement=0.5), 0.5, 2, measures(), measures(invocations=0)) == []


def test_a_zero_production_latency_makes_any_slower_shadow_an_infinite_ratio():
    (found,) = breaches(ShadowThresholds(max_latency_p99_ratio=2), None, 0, measures(p99=0.0), measures(p99=1.0))
    assert found.startswith("latency p99 ratio: measured infx")


def test_error_rate_of_a_variant():
    assert measures(invocations=4, errors_4xx=1, errors_5xx=1).error_rate == 0.5
    assert measures(invocations=0).error_rate is None


def test_json_answers_are_compared_structurally():
    assert answers_agree(json.dumps({"a": [1, {"b": 2.0}]}), json.dumps({"a": [1, {"b": 2}]}))
