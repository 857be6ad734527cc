"""Inference handler for the iris classifier (sagemaker-inference-toolkit contract).

The serving container extracts model.tar.gz into ``model_dir``, puts ``<model_dir>/code`` on
sys.path, imports this module and calls, per request::

    output_fn(predict_fn(input_fn(body, content_type), model), accept)

with ``model = model_fn(model_dir)`` loaded once.

Requests: ``text/csv`` (one row of four measurements per line, an optional header line) or
``application/json`` (a list of rows, or ``{"instances": [...]}``; a row is a list of four
numbers or an object keyed by feature name). Answers: a JSON list of species names, or CSV
with one name per line.

An object row that lacks a feature (an upstream system dropped the field) is still answered: the
feature's training median stands in for it. The request is captured as sent, so data-quality
monitoring sees the missing column (and the drift the stand-in hides).
"""

from __future__ import annotations

import csv
import io
import json
import os

import joblib
import numpy as np

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
JSON_TYPES = ("application/json", "*/*", "")
CSV_TYPE = "text/csv"
# Medians of include/data/iris.csv, the training data (pandas: read_csv(...).median()).
TRAINING_MEDIANS = {"sepal_length": 5.8, "sepal_width": 3.0, "petal_length": 4.35, "petal_width": 1.3}


def model_fn(model_dir):
    """Load the fitted scikit-learn classifier written by build.py."""
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(input_data, content_type):
    """Decode a request body into an (n, 4) float array."""
    text = input_data.decode("utf-8") if isinstance(input_data, bytes | bytearray) else str(input_data)
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == CSV_TYPE:
        rows = _csv_rows(text)
    elif media_type == "application/json":
        rows = _json_rows(json.loads(text))
    else:
        raise ValueError(f"Unsupported content type {content_type!r}; send text/csv or application/json.")
    if not rows:
        raise ValueError("The request holds no rows.")
    data = np.asarray(rows, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != len(FEATURES):
        raise ValueError(f"Each row needs {len(FEATURES)} numbers ({', '.join(FEATURES)}); got shape {data.shape}.")
    return data


def predict_fn(input_data, model):
    """Predict a species name per row."""
    return [str(label) for label in model.predict(input_data)]


def output_fn(prediction, accept):
    """Encode the labels as a JSON list (default) or as CSV, one label per line."""
    media_type = (accept or "").split(";")[0].strip().lower()
    if media_type in JSON_TYPES:
        return json.dumps(prediction)
    if media_type == CSV_TYPE:
        return "".join(f"{label}\n" for label in prediction)
    raise ValueError(f"Unsupported accept type {accept!r}; ask for application/json or text/csv.")


def _csv_rows(text):
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]  # header line
    return [[float(cell) for cell in row] for row in rows]


def _json_rows(document):
    if isinstance(document, dict):
        document = document.get("instances")
    if not isinstance(document, list):
        raise ValueError('JSON must be a list of rows or {"instances": [rows]}.')
    if document and not isinstance(document[0], list | dict):
        document = [document]  # a single row
    return [_object_row(row) if isinstance(row, dict) else row for row in document]


def _object_row(row):
    """An object keyed by feature name; an absent (or null) feature takes its training median."""
    if not any(row.get(name) is not None for name in FEATURES):
        raise ValueError(f"A row object needs at least one of {', '.join(FEATURES)}; got keys {sorted(row)}.")
    return [TRAINING_MEDIANS[name] if row.get(name) is None else row[name] for name in FEATURES]


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
