"""Find, read and validate pipeline files; report every problem of every file at once."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from sagemaker_ops.pipeline.document import read_pipeline
from sagemaker_ops.pipeline.fields import FieldReader, PipelineConfigError
from sagemaker_ops.pipeline.models import PipelineConfig

PIPELINES_DIR_ENV = "SAGEMAKER_OPS_PIPELINES_DIR"


def pipelines_dir(dag_file: str) -> Path:
    """The pipeline files of a DAG file: ``include/pipelines/`` beside its ``dags/`` folder, unless
    ``SAGEMAKER_OPS_PIPELINES_DIR`` names another folder."""
    return Path(os.environ.get(PIPELINES_DIR_ENV) or Path(dag_file).resolve().parents[1] / "include" / "pipelines")


def load_pipelines(folder: Path) -> list[PipelineConfig]:
    """Load every ``*.yaml``/``*.yml`` in ``folder`` (sorted); raise one error listing every problem."""
    paths = sorted([*Path(folder).glob("*.yaml"), *Path(folder).glob("*.yml")])
    pipelines: list[PipelineConfig] = []
    errors: list[str] = []
    for path in paths:
        try:
            pipelines.append(load_pipeline(path))
        except PipelineConfigError as error:
            errors.extend(error.errors)
    errors.extend(_duplicate_errors(pipelines))
    if errors:
        raise PipelineConfigError(errors)
    return pipelines


def load_pipeline(path: Path) -> PipelineConfig:
    """Load and validate one pipeline file."""
    path = Path(path)
    shown = display_path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PipelineConfigError([f"{shown}: cannot be read ({error.strerror})"]) from error
    except yaml.YAMLError as error:
        raise PipelineConfigError([f"{shown}: is not valid YAML: {error}"]) from error
    fields = FieldReader(shown, path.parent)
    config = read_pipeline(fields, document, path)
    if fields.errors:
        raise PipelineConfigError(fields.errors)
    assert config is not None
    return config


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (as people type it), else absolute."""
    absolute = Path(path).absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _duplicate_errors(pipelines: list[PipelineConfig]) -> list[str]:
    """Two files may not share a pipeline name or an endpoint name."""
    errors = []
    for label, value_of in (("name", lambda pipeline: pipeline.name),
                            ("endpoint.name", lambda pipeline: pipeline.endpoint.name)):
        seen: dict[str, PipelineConfig] = {}
        for pipeline in pipelines:
            value = value_of(pipeline)
            if value in seen:
                errors.append(
                    f"{display_path(pipeline.path)}: {label} {value!r} is already used by "
                    f"{display_path(seen[value].path)}; each pipeline needs its own"
                )
            seen.setdefault(value, pipeline)
    return errors
