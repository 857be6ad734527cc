"""The shapes of the hosting-option DAGs: one packaging task per container, a smoke test per target, the A/B flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dags.conftest import upstream


def test_multi_model_release_packages_once_and_smoke_tests_each_model(dags):
    dag = dags["release_sentiment"]
    assert upstream(dag, "ensure_model") == {"package_model"}
    assert upstream(dag, "publish_endpoint") >= {"smoke_test_sentiment_en", "smoke_test_sentiment_de"}
    assert dag.get_task("smoke_test_sentiment_de").target_model == "sentiment_de.tar.gz"
    assert dag.get_task("ensure_model").multi_model is True


def test_multi_container_release_packages_each_container(dags):
    dag = dags["release_iris_sentiment_direct"]
    assert upstream(dag, "ensure_model") == {"package_iris", "package_sentiment_en"}
    assert dag.get_task("ensure_model").inference_execution_mode == "Direct"
    assert dag.get_task("smoke_test_sentiment-en").target_container_hostname == "sentiment-en"
    assert dags["release_iris_serial"].get_task("ensure_model").inference_execution_mode == "Serial"


def test_async_release_smoke_tests_through_s3(dags):
    smoke = dags["release_iris_async"].get_task("smoke_test")
    assert type(smoke).__name__ == "AsyncSmokeTestEndpointOperator"
    assert smoke.input_s3_uri == "s3://sagemaker-ops-artifacts/async-inputs/iris-async"
    config = dags["release_iris_async"].get_task("ensure_endpoint_config")
    assert config.async_inference_config["OutputConfig"]["S3OutputPath"].startswith("s3://")
    assert dags["release_iris_tree"].get_task("ensure_endpoint_config").data_capture_config["EnableCapture"]


def test_ab_test_is_manual_with_a_params_form_and_checks_around_the_shift(dags):
    dag = dags["ab_test"]
    assert dag.schedule is None and dag.catchup is False
    assert {"endpoint_name", "champion", "challenger", "champion_weight", "challenger_weight",
            "shifted_champion_weight", "shifted_challenger_weight", "invocations", "significance"} <= set(dag.params)
    assert dag.params["champion"] == "iris" and dag.params["shifted_challenger_weight"] == 9
    order = ["deploy_endpoint", "set_initial_weights", "check_initial_split", "shift_traffic", "check_shifted_split"]
    for before, after in zip(order, order[1:]):
        assert before in upstream(dag, after), f"{before} >> {after}"
    assert upstream(dag, "ensure_endpoint_config") >= {"ensure_champion_model", "ensure_challenger_model"}
    assert "binomial" in dag.doc_md and "Bonferroni" in dag.doc_md
