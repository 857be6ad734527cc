"""Every DAG in dags/ imports cleanly and follows the house rules; broken pipeline files fail loudly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from airflow.dag_processing.dagbag import DagBag

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"


def all_dags(bag: DagBag):
    return sorted(bag.dags.values(), key=lambda dag: dag.dag_id)


def test_no_import_errors(dagbag: DagBag):
    assert dagbag.import_errors == {}


def test_one_release_dag_per_pipeline_file(dagbag: DagBag):
    # release_<name> with the file's hyphens as underscores (iris-tree.yaml -> release_iris_tree).
    pipelines = sorted(path.stem.replace("-", "_") for path in (REPO / "include" / "pipelines").glob("*.yaml"))
    releases = sorted(dag_id.removeprefix("release_") for dag_id in dagbag.dag_ids if dag_id.startswith("release_"))
    assert releases == pipelines


def test_every_dag_has_tags_an_owner_retries_and_docs(dagbag: DagBag):
    for dag in all_dags(dagbag):
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag.dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag.dag_id}.{task.task_id} has no owner"
            assert task.retries >= 2, f"{dag.dag_id}.{task.task_id} retries={task.retries}"


def test_release_iris_shape(dagbag: DagBag):
    dag = dagbag.dags["release_iris"]
    assert dag.catchup is False
    order = ["package_model", "ensure_model", "ensure_endpoint_config", "deploy_endpoint", "smoke_test", "publish_endpoint"]
    # iris.yaml has a promotion: section (with a shadow test) and a scaling: section
    assert sorted(dag.task_ids) == sorted([*order, "ensure_promotion_alarms", "shadow_test",
                                           "release_scaling_for_update", "apply_scaling",
                                           "benchmark.benchmark_candidates", "benchmark.choose_configuration"])
    # iris.yaml has a benchmark: section: the chosen configuration is deployed, its capacity sets the target
    assert "benchmark.choose_configuration" in dag.get_task("ensure_endpoint_config").upstream_task_ids
    assert dag.get_task("benchmark.benchmark_candidates").upstream_task_ids == {"ensure_model"}
    assert "shadow_test" in dag.get_task("deploy_endpoint").upstream_task_ids
    deploy_upstream = dag.get_task("deploy_endpoint").upstream_task_ids
    assert {"ensure_promotion_alarms", "release_scaling_for_update"} <= deploy_upstream
    assert dag.get_task("apply_scaling").upstream_task_ids == {"deploy_endpoint", "benchmark.choose_configuration"}
    assert "apply_scaling" in dag.get_task("publish_endpoint").upstream_task_ids
    # a failed or rolled-back update leaves the old config serving: its deregistered targets come back
    assert dag.get_task("apply_scaling").trigger_rule == "all_done"
    assert dag.get_task("deploy_endpoint").update_endpoint_kwargs["RetainAllVariantProperties"] is True
    for upstream, downstream in zip(order, order[1:]):
        assert upstream in dag.get_task(downstream).upstream_task_ids, f"{upstream} >> {downstream}"
    [outlet] = dag.get_task("publish_endpoint").outlets
    assert outlet.uri == "sagemaker://endpoint/iris"
    assert dag.get_task("deploy_endpoint").deferrable is True


def test_a_bad_pipeline_file_is_an_import_error_naming_file_and_field(tmp_path: Path):
    (tmp_path / "dags").mkdir()
    shutil.copy(DAGS_FOLDER / "release.py", tmp_path / "dags" / "release.py")
    pipelines = tmp_path / "include" / "pipelines"
    pipelines.mkdir(parents=True)
    document = yaml.safe_load((REPO / "include" / "pipelines" / "iris.yaml").read_text())
    document["model"]["source"] = str(REPO / "include" / "models" / "iris")
    document["smoke_test"]["payload_file"] = str(REPO / "include" / "data" / "iris_sample.csv")
    document["endpoint"]["variants"][0]["instance_count"] = "two"
    (pipelines / "broken.yaml").write_text(yaml.safe_dump(document))

    bag = DagBag(dag_folder=str(tmp_path / "dags"))

    assert bag.dags == {}
    [error] = bag.import_errors.values()
    assert "broken.yaml: endpoint.variants[0].instance_count must be an integer >= 1, got 'two'" in error


def test_every_dag_serialises(dagbag: DagBag):
    # The scheduler and the UI only ever see the serialised DAG; a non-serialisable argument breaks them.
    from airflow.serialization.serialized_objects import DagSerialization

    for dag in all_dags(dagbag):
        serialised = DagSerialization.to_dict(dag)
        assert DagSerialization.from_dict(serialised).dag_id == dag.dag_id
