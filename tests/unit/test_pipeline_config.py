"""Pipeline files: the shipped one is valid; every mistake is reported with file and field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagemaker_ops.operators.sagemaker_resources import endpoint_config_requests
from sagemaker_ops.pipeline import PipelineConfigError, load_pipeline, load_pipelines
from tests.unit.pipeline_documents import PIPELINES, REPO, shipped_document
from tests.unit.pipeline_documents import write_document as write


@pytest.fixture
def iris_document() -> dict:
    return shipped_document("iris")


def errors_of(path: Path) -> list[str]:
    with pytest.raises(PipelineConfigError) as raised:
        load_pipeline(path)
    return raised.value.errors


def test_the_shipped_pipelines_are_valid():
    pipelines = load_pipelines(PIPELINES)
    iris = next(p for p in pipelines if p.name == "iris")
    assert iris.dag_id == "release_iris"
    assert iris.model.source_dir == REPO / "include" / "models" / "iris"
    assert endpoint_config_requests(iris.endpoint)["production_variants"] == [
        {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2, "InitialVariantWeight": 1.0}
    ]
    assert iris.smoke_test.payload.strip()
    assert iris.retries >= 2
    assert iris.aws_tags["sagemaker-ops:pipeline"] == "iris"


def test_bad_instance_count_names_file_and_field(tmp_path: Path, iris_document: dict):
    iris_document["endpoint"]["variants"][0]["instance_count"] = "two"
    path = write(tmp_path, iris_document)
    assert errors_of(path) == [
        f"{path.as_posix()}: endpoint.variants[0].instance_count must be an integer >= 1, got 'two'"
    ]


def test_paths_under_the_working_directory_are_shown_relative(tmp_path: Path, iris_document: dict, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "include" / "pipelines").mkdir(parents=True)
    iris_document["endpoint"]["variants"][0]["instance_count"] = 0
    write(tmp_path / "include" / "pipelines", iris_document, "iris.yaml")
    [message] = errors_of(Path("include/pipelines/iris.yaml"))
    assert message.startswith("include/pipelines/iris.yaml: endpoint.variants[0].instance_count")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.pop("owner"), "owner is required"),
        (lambda d: d.update(name="Iris_Model"), "name must be lowercase letters, digits and single hyphens"),
        (lambda d: d.update(retries=-1), "retries must be an integer >= 0, got -1"),
        (lambda d: d["model"].update(image_uri="123.dkr.ecr/x:1"), "model needs either image_uri or framework"),
        (lambda d: d["model"].pop("framework_version"), "model.framework_version is required"),
        (lambda d: d["model"].update(source="/does/not/exist"), "model.source must be an existing folder"),
        (lambda d: d["model"].update(role_arn="my-role"), "model.role_arn must be an IAM role ARN"),
        (lambda d: d["model"]["environment"].update(WORKERS=2), "model.environment.WORKERS must be a string"),
        (lambda d: d["artifacts"].update(bucket="Bad_Bucket"), "artifacts.bucket must be a valid S3 bucket name"),
        (lambda d: d["endpoint"].update(variants=[]), "endpoint.variants must be a non-empty list"),
        (lambda d: d["endpoint"]["variants"][0].update(instance_type="m5.large"), "instance_type must be an ml.*"),
        (lambda d: d["endpoint"]["variants"][0].update(weight=-1), "endpoint.variants[0].weight must be a number >= 0"),
        (lambda d: d["endpoint"]["waiter"].update(deferrable="yes"), "endpoint.waiter.deferrable must be true or false"),
        (lambda d: d["endpoint"].update(replicas=3), "endpoint.replicas is not a known field"),
        (lambda d: d["smoke_test"].update(expected_body="x"), "smoke_test takes expected_json or expected_body"),
        (lambda d: d.pop("smoke_test"), "smoke_test is required"),
    ],
)
def test_each_mistake_is_reported_with_its_field_path(tmp_path: Path, iris_document: dict, edit, expected: str):
    edit(iris_document)
    path = write(tmp_path, iris_document)
    messages = errors_of(path)
    assert any(message.startswith(f"{path.as_posix()}: ") and expected in message for message in messages), messages


def test_all_problems_are_reported_together(tmp_path: Path, iris_document: dict):
    iris_document["owner"] = ""
    iris_document["endpoint"]["variants"][0]["instance_count"] = "two"
    assert len(errors_of(write(tmp_path, iris_document))) == 2


def test_invalid_yaml_and_non_mapping_files_are_explained(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert "is not valid YAML" in errors_of(broken)[0]
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert "must hold a mapping" in errors_of(listed)[0]


def test_defaults_fill_optional_fields(tmp_path: Path, iris_document: dict):
    for key in ("schedule", "retries", "retry_delay_seconds", "tags", "description", "resource_tags", "artifacts"):
        iris_document.pop(key, None)
    iris_document["endpoint"].pop("name")
    iris_document["endpoint"].pop("waiter")
    config = load_pipeline(write(tmp_path, iris_document))
    assert (config.schedule, config.retries, config.retry_delay_seconds) == (None, 2, 60)
    assert (config.artifacts.bucket, config.artifacts.prefix) == ("sagemaker-ops-artifacts", "models/iris")
    assert config.endpoint.name == "iris"
    assert (config.endpoint.waiter.deferrable, config.endpoint.waiter.delay_seconds) == (False, 30)


def test_duplicate_pipeline_names_across_files_are_refused(tmp_path: Path, iris_document: dict):
    write(tmp_path, iris_document, "a.yaml")
    write(tmp_path, iris_document, "b.yaml")
    with pytest.raises(PipelineConfigError, match=r"b\.yaml: name 'iris' is already used by .*a\.yaml"):
        load_pipelines(tmp_path)


def test_every_bad_file_is_reported(tmp_path: Path, iris_document: dict):
    good = dict(iris_document, name="good")
    good["endpoint"] = dict(iris_document["endpoint"], name="good")
    write(tmp_path, good, "good.yaml")
    (tmp_path / "bad1.yaml").write_text("name: bad1\n")
    (tmp_path / "bad2.yaml").write_text(": :\n")
    with pytest.raises(PipelineConfigError) as raised:
        load_pipelines(tmp_path)
    files = {message.split(":")[0].rsplit("/", 1)[-1] for message in raised.value.errors}
    assert files == {"bad1.yaml", "bad2.yaml"}
