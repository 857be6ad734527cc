"""The shipped pipeline files as editable documents, and loading an edited copy, for the pipeline-file tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sagemaker_ops.pipeline import PipelineConfigError, load_pipeline
from sagemaker_ops.pipeline.models import PipelineConfig

REPO = Path(__file__).resolve().parents[2]
PIPELINES = REPO / "include" / "pipelines"
MODELS = REPO / "include" / "models"
DATA = REPO / "include" / "data"


def shipped_document(name: str) -> dict:
    """A shipped pipeline with absolute paths, so a copy can live in a tmp folder."""
    loaded = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text())
    text = yaml.safe_dump(loaded).replace("../models/", f"{MODELS}/").replace("../data/", f"{DATA}/")
    return yaml.safe_load(text)


def write_document(folder: Path, document: dict, name: str = "pipe.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(document))
    return path


def load_document(folder: Path, document: dict) -> PipelineConfig:
    return load_pipeline(write_document(folder, document))


def document_errors(folder: Path, document: dict) -> list[str]:
    """Every message loading ``document`` gives (each starts with the file's path)."""
    with pytest.raises(PipelineConfigError) as raised:
        load_document(folder, document)
    return raised.value.errors
