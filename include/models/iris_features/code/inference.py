"""Feature stage of the iris inference pipeline: raw measurements in, standardised features out.

First container of a Serial multi-container endpoint. Requests: ``text/csv`` (four measurements
per line, optional header) or ``application/json`` (a list of rows, a row is four numbers or an
object keyed by feature name, or ``{"instances": [...]}``). The answer is always ``text/csv``,
one standardised row per line: it is not for the caller but the next container's request, so
the caller's Accept (meant for the last container) is not applied here.
"""

from __future__ import annotations

import csv
import io
import json
import os

import joblib
import numpy as np

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
NEXT_STAGE_CONTENT_TYPE = "text/csv"


def model_fn(model_dir):
    """Load the StandardScaler fitted by build.py."""
    return joblib.load(os.path.join(model_dir, "scaler.joblib"))


def input_fn(input_data, content_type):
    text = input_data.decode("utf-8") if isinstance(input_data, bytes | bytearray) else str(input_data)
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "text/csv":
        rows = [[float(cell) for cell in row] for row in _csv_rows(text)]
    elif media_type == "application/json":
        rows = _json_rows(json.loads(text))
    else:
        raise ValueError(f"Unsupported content type {content_type!r}; send text/csv or application/json.")
    data = np.asarray(rows, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != len(FEATURES) or not len(data):
        raise ValueError(f"Each row needs {len(FEATURES)} numbers ({', '.join(FEATURES)}); got shape {data.shape}.")
    return data


def predict_fn(input_data, scaler):
    return scaler.transform(input_data)


def output_fn(prediction, accept):
    """CSV for the next container, whatever the caller accepts (the toolkit takes (body, content type))."""
    body = "".join(",".join(f"{value:.6f}" for value in row) + "\n" for row in prediction)
    return body, NEXT_STAGE_CONTENT_TYPE


def _csv_rows(text):
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]  # header line
    return rows


def _json_rows(document):
    if isinstance(document, dict):
        document = document.get("instances")
    if not isinstance(document, list):
        raise ValueError('JSON must be a list of rows or {"instances": [rows]}.')
    if document and not isinstance(document[0], list | dict):
        document = [document]  # a single row
    return [[row[name] for name in FEATURES] if isinstance(row, dict) else row for row in document]


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
