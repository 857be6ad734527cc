"""The English and German sentiment models of the multi-model example: shipped data, deterministic builds,
and handlers that classify obvious sentences correctly."""

from __future__ import annotations

import csv
import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

from sagemaker_ops.packaging import build_model_archive

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "include" / "models"
DATA = REPO / "include" / "data"

OBVIOUS = {
    "en": [("The food was great and the staff were very friendly.", "positive"),
           ("Excellent product, I love it.", "positive"),
           ("Wonderful hotel, we will come back.", "positive"),
           ("Terrible service, the waiter was rude.", "negative"),
           ("It broke after two days, a complete waste of money.", "negative"),
           ("The app keeps crashing and support never answers.", "negative")],
    "de": [("Das Essen war großartig und das Personal sehr freundlich.", "positive"),
           ("Ausgezeichnetes Produkt, ich liebe es.", "positive"),
           ("Der Test verlief positiv.", "positive"),
           ("Schrecklicher Service, der Kellner war unhöflich.", "negative"),
           ("Nach zwei Tagen kaputt, reine Geldverschwendung.", "negative"),
           ("Die App stürzt ständig ab und der Support antwortet nie.", "negative")],
}


@pytest.fixture(scope="module", params=["en", "de"])
def built(request, tmp_path_factory: pytest.TempPathFactory):
    """Package one language's model twice from scratch; return the language, both archives and the extracted first."""
    language = request.param
    source = MODELS / f"sentiment_{language}"
    archives = [build_model_archive(source, tmp_path_factory.mktemp(f"{language}-build{i}")) for i in range(2)]
    model_dir = tmp_path_factory.mktemp(f"{language}-extracted")
    with tarfile.open(archives[0].path) as tar:
        tar.extractall(model_dir, filter="data")
    return language, archives, model_dir


@pytest.fixture(scope="module")
def loaded(built):
    """The packaged code/inference.py, imported as the container does, and its loaded model."""
    language, _, model_dir = built
    script = model_dir / "code" / "inference.py"
    spec = importlib.util.spec_from_file_location(f"sentiment_{language}_inference", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return language, module, module.model_fn(str(model_dir))


@pytest.mark.parametrize("language", ["en", "de"])
def test_shipped_dataset_is_balanced_and_labelled(language):
    with open(DATA / f"sentiment_{language}.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["text", "label"]
    assert len(rows) >= 200
    assert {label: sum(r["label"] == label for r in rows) for label in ("positive", "negative")} == {
        "positive": len(rows) // 2, "negative": len(rows) // 2}
    assert len({r["text"] for r in rows}) == len(rows), "no sentence twice"


def test_building_twice_gives_the_same_archive(built):
    _, (first, second), _ = built
    assert first.sha256 == second.sha256


def test_archive_layout_and_model_info(built):
    language, (archive, _), model_dir = built
    with tarfile.open(archive.path) as tar:
        assert sorted(tar.getnames()) == ["code", "code/inference.py", "model.joblib", "model_info.json"]
    info = json.loads((model_dir / "model_info.json").read_text())
    assert info["language"] == language
    assert info["classes"] == ["negative", "positive"]
    assert info["cross_validated_accuracy"] > 0.6  # short, varied reviews: well above a coin toss


def test_obvious_sentences_are_classified_correctly(loaded):
    language, handler, model = loaded
    sentences, expected = zip(*OBVIOUS[language])
    assert handler.predict_fn(list(sentences), model) == list(expected)


def test_the_chapter_request_format(loaded):
    """``Body=json.dumps(sentence)`` with application/json answers a JSON list with one label."""
    language, handler, model = loaded
    sentence, label = OBVIOUS[language][0]
    data = handler.input_fn(json.dumps(sentence), "application/json")
    body, content_type = handler.output_fn(handler.predict_fn(data, model), "application/json")
    assert (json.loads(body), content_type) == ([label], "application/json")
    assert handler.input_fn(json.dumps({"inputs": [sentence, sentence]}), "application/json") == [sentence] * 2
    assert handler.input_fn(f"{sentence}\n\n{sentence}\n".encode(), "text/plain") == [sentence] * 2


@pytest.mark.parametrize("body, content_type", [
    ("[1, 2]", "application/json"), ("[]", "application/json"), ("a,b", "text/csv")])
def test_bad_requests_are_refused(loaded, body, content_type):
    _, handler, _ = loaded
    with pytest.raises(ValueError):
        handler.input_fn(body, content_type)
