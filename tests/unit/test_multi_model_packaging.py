"""Multi-model archive sets: one digest per exact set of archives, one prefix per digest."""

from __future__ import annotations

from sagemaker_ops.packaging import multi_model_digest, multi_model_key, multi_model_prefix


def test_the_digest_names_the_exact_set_of_archives():
    base = multi_model_digest({"en": "a" * 64, "de": "b" * 64})
    assert base == multi_model_digest({"de": "b" * 64, "en": "a" * 64})  # order does not matter
    assert base != multi_model_digest({"en": "a" * 64, "de": "c" * 64})  # a changed archive
    assert base != multi_model_digest({"en": "a" * 64})  # a removed model
    assert base != multi_model_digest({"english": "a" * 64, "de": "b" * 64})  # a renamed model
    assert len(base) == 64


def test_keys_and_prefix():
    assert multi_model_prefix("/models/sentiment/", "d1") == "models/sentiment/d1/"
    assert multi_model_prefix("", "d1") == "d1/"
    assert multi_model_key("models/sentiment", "d1", "sentiment_en") == "models/sentiment/d1/sentiment_en.tar.gz"
