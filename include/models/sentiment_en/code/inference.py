"""Inference handler for the English and German sentiment classifiers (sagemaker-inference-toolkit contract).

Requests, as in the book chapter (``Body=json.dumps("...")``): ``application/json`` holding a
sentence, a list of sentences, or ``{"inputs": sentence or list}``; or ``text/plain`` with one
sentence per line. Answers: a JSON list with one label (``positive`` or ``negative``) per sentence.
"""

from __future__ import annotations

import json
import os

import joblib

JSON_TYPES = ("application/json", "*/*", "")


def model_fn(model_dir):
    """Load the scikit-learn pipeline (TF-IDF + logistic regression) written by build.py."""
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(input_data, content_type):
    """Decode a request body into a list of sentences."""
    text = input_data.decode("utf-8") if isinstance(input_data, bytes | bytearray) else str(input_data)
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "application/json":
        sentences = _json_sentences(json.loads(text))
    elif media_type == "text/plain":
        sentences = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        raise ValueError(f"Unsupported content type {content_type!r}; send application/json or text/plain.")
    if not sentences:
        raise ValueError("The request holds no sentence.")
    return sentences


def predict_fn(input_data, model):
    """One label per sentence."""
    return [str(label) for label in model.predict(input_data)]


def output_fn(prediction, accept):
    media_type = (accept or "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise ValueError(f"Unsupported accept type {accept!r}; ask for application/json.")
    return json.dumps(prediction), "application/json"


def _json_sentences(document):
    if isinstance(document, dict):
        document = document.get("inputs")
    if isinstance(document, str):
        document = [document]
    if not isinstance(document, list) or not all(isinstance(item, str) for item in document):
        raise ValueError('JSON must be a sentence, a list of sentences, or {"inputs": ...}.')
    return document
