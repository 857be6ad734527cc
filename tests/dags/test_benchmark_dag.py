"""The release DAG's benchmark group for each engine, built from an edited copy of iris.yaml."""

from __future__ import annotations

import importlib.util

from tests.unit.pipeline_documents import load_document, shipped_document
from tests.dags.conftest import DAGS_FOLDER


def release_dag(tmp_path, **benchmark):
    document = shipped_document("iris")
    document["benchmark"] = {**document["benchmark"], **benchmark}
    pipeline = load_document(tmp_path, document)
    spec = importlib.util.spec_from_file_location("release_for_benchmark_test", DAGS_FOLDER / "release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_release_dag(pipeline)


def test_load_test_engine_measures_on_temporary_endpoints_then_chooses(tmp_path):
    dag = release_dag(tmp_path)
    measure = dag.get_task("benchmark.benchmark_candidates")
    assert type(measure).__name__ == "BenchmarkCandidatesOperator"
    assert [c["instance_type"] for c in measure.candidates] == ["ml.c5.large", "ml.c5.xlarge", "ml.m5.large"]
    assert measure.name_prefix == "iris-bench" and "ensure_model" in measure.result_s3_prefix
    assert dag.get_task("benchmark.choose_configuration").upstream_task_ids == {"benchmark.benchmark_candidates",
                                                                                "ensure_model"}


def test_inference_recommender_engine_runs_one_job_per_model_version(tmp_path):
    dag = release_dag(tmp_path, engine="inference_recommender", sla={"latency_ms": 200, "percentile": "P99"},
                      traffic={"stairs": {"duration_seconds": 120, "steps": 3, "users_per_step": 1}})
    job = dag.get_task("benchmark.benchmark_candidates")
    assert type(job).__name__ == "InferenceRecommenderOperator"
    assert job.job_name == "{{ ti.xcom_pull(task_ids='ensure_model', key='model_name') }}-bench"
    assert job.endpoint_configurations == [{"InstanceType": "ml.c5.large"}, {"InstanceType": "ml.c5.xlarge"},
                                           {"InstanceType": "ml.m5.large"}]
    assert job.traffic_pattern == {"TrafficType": "STAIRS", "Stairs": {"DurationInSeconds": 120, "NumberOfSteps": 3,
                                                                       "UsersPerStep": 1}}
    assert job.stopping_conditions["ModelLatencyThresholds"] == [{"Percentile": "P99", "ValueInMilliseconds": 200}]
    assert (job.latency_sla_ms, job.deferrable) == (200, True)
    assert "benchmark.upload_sample_payload" in job.upstream_task_ids
