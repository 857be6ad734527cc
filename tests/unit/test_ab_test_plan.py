"""The A/B test's plan: Params checked against the pipeline files before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagemaker_ops.ab_test import AbTestPlanError, ab_candidates, default_pair, plan_ab_test
from sagemaker_ops.pipeline import load_pipelines

REPO = Path(__file__).resolve().parents[2]
PIPELINES = load_pipelines(REPO / "include" / "pipelines")
PARAMS = {"endpoint_name": "iris-ab", "champion": "iris", "challenger": "iris-tree", "champion_weight": 1,
          "challenger_weight": 1, "shifted_champion_weight": 1, "shifted_challenger_weight": 9,
          "invocations": 200, "significance": 0.001}


def test_only_single_model_real_time_pipelines_can_be_variants():
    assert ab_candidates(PIPELINES) == ["iris", "iris-tree"]


def test_default_pair_prefers_iris_then_the_first_two():
    assert default_pair(["a", "iris", "iris-tree"]) == ["iris", "iris-tree"]
    assert default_pair(["a", "b", "c"]) == ["a", "b"]
    assert default_pair(["a"]) == ["a", None]


def test_the_plan_names_both_models_weights_and_the_request():
    plan = plan_ab_test(PIPELINES, PARAMS)
    assert plan["initial_weights"] == {"Champion": 1.0, "Challenger": 1.0}
    assert plan["shifted_weights"] == {"Champion": 1.0, "Challenger": 9.0}
    assert (plan["champion_pipeline"], plan["challenger_pipeline"]) == ("iris", "iris-tree")
    assert plan["challenger_source_dir"] == str(REPO / "include" / "models" / "iris_tree")
    assert plan["payload_file"] == str(REPO / "include" / "data" / "iris_sample.csv")
    assert (plan["instance_type"], plan["content_type"]) == ("ml.m5.large", "text/csv")
    assert plan["tags"]["sagemaker-ops:ab-test"] == "iris-ab"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint_name": "iris"}, "Param endpoint_name 'iris' is the endpoint of pipeline 'iris'"),
        ({"endpoint_name": "iris_ab"}, "Param endpoint_name must be a SageMaker endpoint name"),
        ({"challenger": "sentiment"}, "Param challenger must name a single-model, real-time pipeline (iris, iris-tree)"),
        ({"challenger": "iris"}, "Params champion and challenger name the same pipeline"),
        ({"shifted_champion_weight": 0, "shifted_challenger_weight": 0},
         "Params shifted_champion_weight and shifted_challenger_weight are both 0"),
        ({"champion_weight": -1}, "Param champion_weight must be a number >= 0, got -1"),
        ({"invocations": 0}, "Param invocations must be an integer >= 1, got 0"),
        ({"significance": 1.5}, "Param significance must be a number between 0 and 1, got 1.5"),
    ],
)
def test_bad_params_are_refused_naming_the_param(changes, message):
    with pytest.raises(AbTestPlanError) as raised:
        plan_ab_test(PIPELINES, {**PARAMS, **changes})
    assert message in str(raised.value)
