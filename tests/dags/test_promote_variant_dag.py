"""The promote_variant DAG: manual, a Params form whose schema rejects bad input, and the plan's cross-field checks."""

from __future__ import annotations

import re

import pytest

from sagemaker_ops.promotion_plan import PromotionPlanError, plan_promotion
from tests.dags.conftest import upstream


def test_promote_variant_is_manual_with_a_titled_params_form(dags):
    dag = dags["promote_variant"]
    assert dag.schedule is None and dag.catchup is False
    expected = {"endpoint_name", "mode", "endpoint_config_name", "strategy", "size_unit", "canary_size", "step_size",
                "wait_interval_seconds", "termination_wait_seconds", "max_execution_timeout_seconds",
                "error_rate_threshold", "latency_p99_threshold_ms", "from_variant", "to_variant", "weight_steps",
                "report_period_seconds", "dry_run"}
    assert set(dag.params) == expected
    for name in expected:
        param = dag.params.get_param(name)
        assert param.schema.get("title") and param.description, name
    assert upstream(dag, "promote_endpoint") == {"ensure_alarms", "plan_promotion"}
    assert upstream(dag, "promotion_report") >= {"promote_endpoint"}
    assert dag.get_task("promotion_report").trigger_rule == "none_skipped"
    assert [link.name for link in dag.get_task("promotion_report").operator_extra_links] == ["Promotion report"]
    assert dag.get_task("watcher").trigger_rule == "one_failed"
    assert "ensure_shift_alarms" in upstream(dag, "shift_traffic")
    assert dag.get_task("promote_endpoint").deferrable is True


@pytest.mark.parametrize(("conf", "field"), [
    ({"strategy": "yolo"}, "strategy"),
    ({"endpoint_name": "bad name"}, "endpoint_name"),
    ({"canary_size": 0}, "canary_size"),
    ({"wait_interval_seconds": 4000}, "wait_interval_seconds"),
    ({"max_execution_timeout_seconds": 10}, "max_execution_timeout_seconds"),
    ({"error_rate_threshold": 2}, "error_rate_threshold"),
    ({"weight_steps": [0, 200]}, "weight_steps"),
    ({"dry_run": "yes"}, "dry_run"),
])
def test_the_params_schema_rejects_invalid_input_before_anything_runs(dags, conf: dict, field: str):
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(dags["promote_variant"].params)
    with pytest.raises(ParamValidationError, match=field):  # raised as the conf is merged, before any task
        params.update(conf)
        params.validate()


def good_params(**changes) -> dict:
    return {"endpoint_name": "iris", "mode": "blue_green", "endpoint_config_name": "iris-cfg-2", "strategy": "canary",
            "size_unit": "instance_count", "canary_size": 1, "step_size": 1, "wait_interval_seconds": 60,
            "termination_wait_seconds": 0, "max_execution_timeout_seconds": 3600, "error_rate_threshold": 0.05,
            "latency_p99_threshold_ms": 200, "from_variant": "Champion", "to_variant": "Challenger",
            "weight_steps": [10, 50, 100], "dry_run": False, **changes}


def test_the_plan_becomes_operator_arguments():
    plan = plan_promotion(good_params())
    assert plan["promotion"]["canary_size"] == {"instance_count": 1}
    assert [alarm["metric"] for alarm in plan["alarms"]] == ["Invocation5XXErrors", "ModelLatency"]
    assert plan["alarms"][1]["threshold"] == 200_000  # milliseconds to ModelLatency's microseconds
    assert plan["deployment_config"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    shift = plan_promotion(good_params(mode="weight_shift"))
    assert (shift["weight_steps"], shift["alarm_variants"]) == ([10, 50, 100], ["Challenger"])


@pytest.mark.parametrize(("changes", "message"), [
    ({"endpoint_config_name": None}, "Param endpoint_config_name must name the endpoint config to promote"),
    ({"strategy": "linear", "step_size": 5, "size_unit": "capacity_percent"},
     "Params: linear_step.capacity_percent must be an integer from 10 to 50, got 5"),
    ({"wait_interval_seconds": 600, "termination_wait_seconds": 600, "max_execution_timeout_seconds": 1000},
     "max_execution_timeout_seconds must be larger than wait_interval_seconds + termination_wait_seconds"),
    ({"error_rate_threshold": None, "latency_p99_threshold_ms": None}, "a promotion without alarms cannot roll back"),
    ({"mode": "weight_shift", "weight_steps": [50, 10]}, "Param weight_steps must be ascending"),
    ({"mode": "weight_shift", "to_variant": "Champion"}, "name the same variant"),
])
def test_inconsistent_params_are_rejected_naming_the_param(changes: dict, message: str):
    with pytest.raises(PromotionPlanError, match=re.escape(message)):
        plan_promotion(good_params(**changes))


def test_the_iris_release_updates_with_its_promotion_strategy_and_alarms(dags):
    dag = dags["release_iris"]
    deploy = dag.get_task("deploy_endpoint")
    config = deploy.update_endpoint_kwargs["DeploymentConfig"]
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert (routing["Type"], routing["CanarySize"]) == ("CANARY", {"Type": "INSTANCE_COUNT", "Value": 1})
    assert [alarm["AlarmName"] for alarm in config["AutoRollbackConfiguration"]["Alarms"]] == [
        "iris-promotion-invocation5xxerrors", "iris-promotion-modellatency-p99"]
    alarms = dag.get_task("ensure_promotion_alarms")
    assert alarms.variant_names == ["AllTraffic"] and len(alarms.alarms) == 2
    assert "ensure_endpoint_config" in upstream(dag, "ensure_promotion_alarms")


def test_a_release_without_a_promotion_section_updates_plainly(dags):
    deploy = dags["release_iris_tree"].get_task("deploy_endpoint")
    assert not deploy.update_endpoint_kwargs and "ensure_promotion_alarms" not in dags["release_iris_tree"].task_ids
