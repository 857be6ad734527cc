"""A release whose benchmark runs on Inference Recommender (engine: inference_recommender), end to end with
dag.test() against the emulator: one Advanced job over the three candidates, the choice deployed."""

from __future__ import annotations

import pytest

from tests.dags.conftest import DAGS_FOLDER
from tests.e2e.test_release_dag import returned
from tests.unit.pipeline_documents import shipped_document, write_document

pytestmark = pytest.mark.e2e


def test_release_with_an_inference_recommender_benchmark(tmp_path, emulator, airflow_db, monkeypatch):
    document = shipped_document("iris")
    document.update(name="iris-ir")
    document["endpoint"]["name"] = "iris-ir"
    document.pop("promotion")  # a first release deploys plainly; nothing to promote
    document["benchmark"].update(engine="inference_recommender",
                                 traffic={"stairs": {"duration_seconds": 120, "steps": 2, "users_per_step": 2}})
    document["scaling"]["variants"][0]["name"] = "AllTraffic"
    write_document(tmp_path, document, "iris-ir.yaml")
    # dag.test() runs a DAG the dags folder defines: point the release DAGs at this one pipeline file.
    monkeypatch.setenv("SAGEMAKER_OPS_PIPELINES_DIR", str(tmp_path))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    run = bag.dags["release_iris_ir"].test()
    assert run.state == "success", f"the run ended {run.state}"

    job = returned(run, "benchmark.benchmark_candidates")
    choice = returned(run, "benchmark.choose_configuration")
    described = emulator.client("sagemaker").describe_inference_recommendations_job(JobName=job["job_name"])
    assert described["Status"] == "COMPLETED" and len(described["InferenceRecommendations"]) == 3
    assert choice["candidate"] in {c["name"] for c in job["candidates"]}
    chosen = next(c for c in job["candidates"] if c["name"] == choice["candidate"])
    deployment = returned(run, "deploy_endpoint")
    config = emulator.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=deployment["endpoint_config_name"])
    assert config["ProductionVariants"][0]["InstanceType"] == chosen["instance_type"]
    assert choice["autoscaling_target"] == round(chosen["max_rps"] / chosen["instance_count"] * 0.5 * 60, 1)
