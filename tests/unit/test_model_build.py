"""The iris model: trains from the shipped CSV, builds deterministically, and its handler predicts."""

from __future__ import annotations

import csv
import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

from sagemaker_ops.packaging import build_model_archive

REPO = Path(__file__).resolve().parents[2]
IRIS_SOURCE = REPO / "include" / "models" / "iris"
DATA = REPO / "include" / "data"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """Package the iris model twice from scratch; return both archives and the extracted first one."""
    archives = [build_model_archive(IRIS_SOURCE, tmp_path_factory.mktemp(f"build{i}")) for i in range(2)]
    model_dir = tmp_path_factory.mktemp("extracted")
    with tarfile.open(archives[0].path) as tar:
        tar.extractall(model_dir, filter="data")
    return archives, model_dir


@pytest.fixture(scope="module")
def handler(built):
    """Import the packaged code/inference.py the way the serving container does."""
    _, model_dir = built
    spec = importlib.util.spec_from_file_location("iris_inference", model_dir / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_dataset_has_header_and_three_balanced_species():
    with open(DATA / "iris.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    assert len(rows) == 150
    assert {species: sum(r["species"] == species for r in rows) for species in {r["species"] for r in rows}} == {
        "setosa": 50,
        "versicolor": 50,
        "virginica": 50,
    }


def test_building_twice_gives_the_same_archive(built):
    (first, second), _ = built
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()


def test_archive_layout(built):
    (archive, _), _ = built
    with tarfile.open(archive.path) as tar:
        names = set(tar.getnames())
    assert {"model.joblib", "model_info.json", "code", "code/inference.py"} <= names
    assert "build.py" not in names


def test_model_learns_the_dataset(built):
    _, model_dir = built
    info = json.loads((model_dir / "model_info.json").read_text())
    assert info["classes"] == ["setosa", "versicolor", "virginica"]
    assert info["training_accuracy"] >= 0.95


def test_csv_sample_payload_predicts_one_of_each_species(handler, built):
    _, model_dir = built
    model = handler.model_fn(str(model_dir))
    payload = (DATA / "iris_sample.csv").read_text()
    labels = handler.predict_fn(handler.input_fn(payload, "text/csv"), model)
    assert labels == ["setosa", "versicolor", "virginica"]
    assert json.loads(handler.output_fn(labels, "application/json")) == labels
    assert handler.output_fn(labels, "text/csv") == "setosa\nversicolor\nvirginica\n"


@pytest.mark.parametrize(
    "body",
    [
        b'[[5.1, 3.5, 1.4, 0.2]]',
        '{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        '[{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]',
        "[5.1, 3.5, 1.4, 0.2]",
    ],
)
def test_json_requests_in_every_accepted_shape(handler, built, body):
    _, model_dir = built
    model = handler.model_fn(str(model_dir))
    assert handler.predict_fn(handler.input_fn(body, "application/json"), model) == ["setosa"]


def test_csv_with_a_header_line(handler, built):
    _, model_dir = built
    body = "sepal_length,sepal_width,petal_length,petal_width\n6.3,3.3,6.0,2.5\n"
    assert handler.predict_fn(handler.input_fn(body, "text/csv"), handler.model_fn(str(model_dir))) == ["virginica"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.input_fn("1,2,3,4", "application/x-npy"), "Unsupported content type"),
        (lambda h: h.input_fn("1,2,3\n", "text/csv"), "Each row needs 4 numbers"),
        (lambda h: h.input_fn('{"rows": []}', "application/json"), "list of rows"),
        (lambda h: h.output_fn(["setosa"], "application/x-npy"), "Unsupported accept type"),
    ],
)
def test_bad_requests_are_explained(handler, call, message):
    with pytest.raises(ValueError, match=message):
        call(handler)
