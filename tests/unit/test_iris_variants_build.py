"""The iris models behind the A/B test and the inference pipeline: deterministic, and the chain matters.

``iris_tree`` is the A/B challenger; ``iris_features`` then ``iris_scaled`` are the two containers of
the Serial endpoint: the classifier alone misreads raw measurements, behind the scaler it does not.
"""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

import pytest

from sagemaker_ops.packaging import build_model_archive

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "include" / "models"
SAMPLE = (REPO / "include" / "data" / "iris_sample.csv").read_text()
SPECIES = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build each model twice; keep the first build extracted and its handler loaded."""
    loaded = {}
    for name in ("iris_tree", "iris_features", "iris_scaled"):
        first, second = (build_model_archive(MODELS / name, tmp_path_factory.mktemp(f"{name}-{i}")) for i in range(2))
        assert first.sha256 == second.sha256, f"{name} does not build deterministically"
        model_dir = tmp_path_factory.mktemp(f"{name}-extracted")
        with tarfile.open(first.path) as tar:
            tar.extractall(model_dir, filter="data")
        spec = importlib.util.spec_from_file_location(f"{name}_inference", model_dir / "code" / "inference.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded[name] = (module, module.model_fn(str(model_dir)))
    return loaded


def serve(handlers: dict, name: str, body: str, content_type: str = "text/csv"):
    module, model = handlers[name]
    return module.output_fn(module.predict_fn(module.input_fn(body, content_type), model), "application/json")


def test_the_challenger_answers_like_the_champion(handlers):
    assert serve(handlers, "iris_tree", SAMPLE) == '["setosa", "versicolor", "virginica"]'


def test_the_feature_stage_answers_csv_for_the_next_container_whatever_the_accept(handlers):
    body, content_type = serve(handlers, "iris_features", SAMPLE)
    assert content_type == "text/csv" and len(body.splitlines()) == 3
    json_body, _ = serve(handlers, "iris_features", '[{"sepal_length": 5.1, "sepal_width": 3.5, '
                                                    '"petal_length": 1.4, "petal_width": 0.2}]', "application/json")
    assert json_body == body.splitlines(keepends=True)[0]


def test_the_serial_chain_is_needed(handlers):
    scaled, content_type = serve(handlers, "iris_features", SAMPLE)
    assert serve(handlers, "iris_scaled", scaled, content_type) == '["setosa", "versicolor", "virginica"]'
    assert serve(handlers, "iris_scaled", SAMPLE) != '["setosa", "versicolor", "virginica"]'
