"""Comparing a production variant with its shadow: pairing captured records, agreement, thresholds.

Pure functions (no AWS): :class:`ShadowThresholds` checks the thresholds a shadow test is given;
:func:`pair_answers` pairs the two variants' data-capture records by the caller's ``inferenceId`` (the
shadow's copy carries the production request's headers, so both records have it); :func:`agreement`
measures how often the answers agree; :func:`breaches` lists each threshold the measures exceed.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

THRESHOLD_FIELDS = ("min_agreement", "max_error_rate", "max_latency_p99_ratio", "max_latency_p99_increase_ms",
                    "numeric_tolerance")


@dataclass(frozen=True)
class ShadowThresholds:
    """What a shadow must meet to pass. None leaves a threshold unchecked."""

    min_agreement: float | None = None  # share of paired answers that must agree (0-1)
    max_error_rate: float | None = None  # share of the shadow's invocations that may be 4XX/5XX (0-1)
    max_latency_p99_ratio: float | None = None  # shadow p99 ModelLatency / production p99, at most
    max_latency_p99_increase_ms: float | None = None  # shadow p99 - production p99 (ms), at most
    numeric_tolerance: float = 0.0  # two numbers agree when they differ by at most this much

    @classmethod
    def parse(cls, spec: Any) -> ShadowThresholds:
        """Thresholds from a dict (as a pipeline YAML gives them); errors name the field and the fix."""
        if not isinstance(spec, dict):
            raise ValueError(f"thresholds must be a mapping of {', '.join(THRESHOLD_FIELDS)}; got {spec!r}.")
        unknown = sorted(set(spec) - set(THRESHOLD_FIELDS))
        if unknown:
            raise ValueError(f"thresholds has unknown field(s) {', '.join(unknown)}; "
                             f"use {', '.join(THRESHOLD_FIELDS)}.")
        values = {name: _number(f"thresholds.{name}", spec[name]) for name in spec if spec[name] is not None}
        for name in ("min_agreement", "max_error_rate"):
            if name in values and not 0 <= values[name] <= 1:
                raise ValueError(f"thresholds.{name} is a share: give a number from 0 to 1, got {values[name]!r}.")
        for name in ("max_latency_p99_increase_ms", "numeric_tolerance"):
            if name in values and values[name] < 0:
                raise ValueError(f"thresholds.{name} must be >= 0, got {values[name]!r}.")
        if "max_latency_p99_ratio" in values and values["max_latency_p99_ratio"] <= 0:
            raise ValueError(f"thresholds.max_latency_p99_ratio must be > 0 (1.5 allows 50% slower), "
                             f"got {values['max_latency_p99_ratio']!r}.")
        thresholds = cls(**values)
        if not thresholds.checks_anything():
            raise ValueError("thresholds checks nothing: give at least one of min_agreement, max_error_rate, "
                             "max_latency_p99_ratio, max_latency_p99_increase_ms.")
        return thresholds

    def checks_anything(self) -> bool:
        return any(value is not None for value in (self.min_agreement, self.max_error_rate,
                                                   self.max_latency_p99_ratio, self.max_latency_p99_increase_ms))


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{field} must be a number, got {value!r}.")
    return float(value)


# -- capture records ------------------------------------------------------------------------------

def record_key(record: dict[str, Any]) -> str | None:
    """What pairs a record with its counterpart: the caller's inferenceId, else the eventId (None: neither)."""
    metadata = record.get("eventMetadata") or {}
    return metadata.get("inferenceId") or metadata.get("eventId")


def record_output(record: dict[str, Any]) -> str | None:
    """The captured answer as text (BASE64 data decoded); None when the output was not captured."""
    output = (record.get("captureData") or {}).get("endpointOutput")
    if not output or "data" not in output:
        return None
    if output.get("encoding") == "BASE64":
        return base64.b64decode(output["data"]).decode("utf-8", errors="replace")
    return output["data"]


def answers_by_key(records: list[dict[str, Any]]) -> dict[str, str]:
    """Each record's answer by its pairing key; records without a key or an output are skipped."""
    answers: dict[str, str] = {}
    for record in records:
        key, output = record_key(record), record_output(record)
        if key is not None and output is not None:
            answers[key] = output
    return answers


def pair_answers(production: list[dict[str, Any]], shadow: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(production answer, shadow answer) for every request captured on both variants, in key order."""
    production_answers, shadow_answers = answers_by_key(production), answers_by_key(shadow)
    return [(production_answers[key], shadow_answers[key]) for key in sorted(production_answers)
            if key in shadow_answers]


# -- agreement ------------------------------------------------------------------------------------

def answers_agree(production: str, shadow: str, tolerance: float = 0.0) -> bool:
    """Equal texts agree; JSON answers agree when equal in structure, numbers within ``tolerance``."""
    if production == shadow:
        return True
    try:
        return values_agree(json.loads(production), json.loads(shadow), tolerance)
    except ValueError:
        return False


def values_agree(left: Any, right: Any, tolerance: float) -> bool:
    """Structural equality of decoded JSON, numbers (not booleans) compared within ``tolerance``."""
    if _is_number(left) and _is_number(right):
        return abs(left - right) <= tolerance
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(values_agree(left[k], right[k], tolerance) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(values_agree(a, b, tolerance) for a, b in zip(left, right))
    return type(left) is type(right) and left == right


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def agreement(pairs: list[tuple[str, str]], tolerance: float = 0.0) -> float | None:
    """The share of pairs whose answers agree; None without pairs (nothing to measure)."""
    if not pairs:
        return None
    return sum(answers_agree(p, s, tolerance) for p, s in pairs) / len(pairs)


# -- thresholds -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class VariantMeasures:
    """One variant's figures over the test window (latencies in milliseconds; None: no datapoint)."""

    invocations: float
    errors_4xx: float
    errors_5xx: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return (self.errors_4xx + self.errors_5xx) / self.invocations if self.invocations else None


def breaches(thresholds: ShadowThresholds, agreement_rate: float | None, pairs: int, production: VariantMeasures,
             shadow: VariantMeasures) -> list[str]:
    """Each threshold the shadow misses, as 'what: measured X, allowed Y' (empty: the shadow passes)."""
    found: list[str] = []
    if thresholds.min_agreement is not None:
        if agreement_rate is None:
            found.append(f"agreement: no request was answered by both variants (0 pairs captured), "
                         f"at least {thresholds.min_agreement:.2%} required")
        elif agreement_rate < thresholds.min_agreement:
            found.append(f"agreement: measured {agreement_rate:.2%} over {pairs} pairs, "
                         f"at least {thresholds.min_agreement:.2%} required")
    if thresholds.max_error_rate is not None:
        rate = shadow.error_rate
        if rate is None:
            found.append("error rate: the shadow received no invocations; send traffic or lengthen the window")
        elif rate > thresholds.max_error_rate:
            found.append(f"error rate: measured {rate:.2%} ({shadow.errors_4xx:g} 4XX + {shadow.errors_5xx:g} 5XX "
                         f"of {shadow.invocations:g} invocations), at most {thresholds.max_error_rate:.2%} allowed")
    found.extend(_latency_breaches(thresholds, production, shadow))
    return found


def _latency_breaches(thresholds: ShadowThresholds, production: VariantMeasures,
                      shadow: VariantMeasures) -> list[str]:
    wanted = thresholds.max_latency_p99_ratio is not None or thresholds.max_latency_p99_increase_ms is not None
    if not wanted:
        return []
    if production.latency_p99_ms is None or shadow.latency_p99_ms is None:
        missing = "production" if production.latency_p99_ms is None else "shadow"
        return [f"latency p99: no ModelLatency datapoint for the {missing} variant; it answered no request"]
    found = []
    increase = shadow.latency_p99_ms - production.latency_p99_ms
    if thresholds.max_latency_p99_increase_ms is not None and increase > thresholds.max_latency_p99_increase_ms:
        found.append(f"latency p99 increase: measured {increase:.1f} ms ({shadow.latency_p99_ms:.1f} vs "
                     f"{production.latency_p99_ms:.1f} ms), at most {thresholds.max_latency_p99_increase_ms:g} ms "
                     "allowed")
    if thresholds.max_latency_p99_ratio is not None:
        ratio = shadow.latency_p99_ms / production.latency_p99_ms if production.latency_p99_ms else math.inf
        if ratio > thresholds.max_latency_p99_ratio:
            found.append(f"latency p99 ratio: measured {ratio:.2f}x ({shadow.latency_p99_ms:.1f} vs "
                         f"{production.latency_p99_ms:.1f} ms), at most {thresholds.max_latency_p99_ratio:g}x allowed")
    return found
