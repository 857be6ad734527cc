"""Reading and writing the analyzer's JSON files, with their shapes checked."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .errors import DataQualityError

STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"
TYPES = ("Integral", "Fractional", "String", "Unknown")
PRETTY_PRINT_LIMIT = 256 << 10


def write_json(directory, name: str, document: dict) -> Path:
    """Write atomically (a reader never sees half a file); NaN/inf are not JSON, so they fail here.

    Small files are indented for people; large ones (KLL data of many columns) are written compact,
    because json's indenting encoder is pure Python and ten times slower.
    """
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, allow_nan=False)
    if len(text) < PRETTY_PRINT_LIMIT:
        text = json.dumps(document, indent=2, allow_nan=False)
    partial = path.with_name(f".{name}.partial")
    partial.write_text(text + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def _load(path, what: str) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataQualityError(f"cannot read the baseline {what} file {str(path)!r}: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataQualityError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}); "
                               f"give the {what} file a baselining job wrote") from None
    if not isinstance(document, dict):
        raise DataQualityError(f"{path}: a {what} file is a JSON object, not a {type(document).__name__}")
    return document


def _features(document: dict, path, what: str) -> list:
    features = document.get("features")
    if not isinstance(features, list):
        raise DataQualityError(f"{path}: the {what} file has no 'features' list")
    for index, feature in enumerate(features):
        where = f"{path}: features[{index}]"
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            raise DataQualityError(f"{where} has no 'name'")
        if feature.get("inferred_type", "Unknown") not in TYPES:
            raise DataQualityError(f"{where} ('{feature['name']}') has inferred_type {feature.get('inferred_type')!r}; "
                                   f"expected one of {', '.join(TYPES)}")
    return features


def read_statistics(path) -> dict:
    document = _load(path, "statistics")
    for index, feature in enumerate(_features(document, path, "statistics")):
        where = f"{path}: features[{index}] ('{feature['name']}')"
        kind = feature.get("inferred_type")
        if kind in ("Integral", "Fractional"):
            numbers = feature.get("numerical_statistics")
            if not isinstance(numbers, dict) or not isinstance(numbers.get("common"), dict):
                raise DataQualityError(f"{where} is {kind} but has no numerical_statistics.common")
            data = numbers.get("distribution", {}).get("kll", {}).get("sketch", {}).get("data", [])
            if not isinstance(data, list) or not all(isinstance(level, list) for level in data):
                raise DataQualityError(f"{where}: numerical_statistics.distribution.kll.sketch.data must be a list of lists")
            if not all(isinstance(x, (int, float)) and math.isfinite(x) for level in data for x in level):
                raise DataQualityError(f"{where}: the KLL sketch data holds a value that is not a finite number")
        elif kind == "String":
            strings = feature.get("string_statistics")
            if not isinstance(strings, dict) or not isinstance(strings.get("common"), dict):
                raise DataQualityError(f"{where} is String but has no string_statistics.common")
    return document


def read_constraints(path) -> dict:
    document = _load(path, "constraints")
    _features(document, path, "constraints")
    config = document.get("monitoring_config", {})
    if not isinstance(config, dict):
        raise DataQualityError(f"{path}: monitoring_config must be an object")
    distribution = config.get("distribution_constraints", {})
    method = distribution.get("comparison_method", "Robust") if isinstance(distribution, dict) else None
    if str(method).lower() not in ("simple", "robust", "linf_simple", "linf_robust"):
        raise DataQualityError(f"{path}: monitoring_config.distribution_constraints.comparison_method is {method!r}; "
                               "use Simple or Robust")
    for key in ("datatype_check_threshold", "domain_content_threshold"):
        if key in config and not isinstance(config[key], (int, float)):
            raise DataQualityError(f"{path}: monitoring_config.{key} must be a number, got {config[key]!r}")
    return document
