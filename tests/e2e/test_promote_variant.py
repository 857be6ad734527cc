"""promote_variant end to end with dag.test() against the emulator: a canary promotion succeeds with its report;
a bad version is rolled back, the run fails, and the report still says why."""

from __future__ import annotations

import json

import pytest

from tests.emulator.conftest import ECHO_MODEL, Deployer, Traffic
from tests.e2e.test_release_dag import returned

pytestmark = pytest.mark.e2e

BAD_MODEL = ECHO_MODEL.replace('    if data.get("raise"):', '    if True:')


@pytest.fixture
def deployer(emulator):
    helper = Deployer(emulator)
    yield helper
    helper.cleanup()


def conf(endpoint: str, config: str) -> dict:
    # Every Param the test relies on, explicitly: a DAG object that ran dag.test() may keep an earlier run's.
    return {"endpoint_name": endpoint, "mode": "blue_green", "endpoint_config_name": config, "strategy": "canary",
            "canary_size": 1, "wait_interval_seconds": 60, "termination_wait_seconds": 20,
            "error_rate_threshold": 0.05, "report_period_seconds": 1, "dry_run": False}


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def run_with_traffic(dag, deployer: Deployer, endpoint: str, run_conf: dict):
    with Traffic(deployer, endpoint):  # the bad version's errors are what drives the alarm
        return dag.test(run_conf=run_conf)


def test_a_canary_promotion_succeeds_and_reports(dags, deployer):
    blue = deployer.config(deployer.model(factor=2), count=2)
    endpoint = deployer.endpoint(blue)
    green = deployer.config(deployer.model(factor=10), count=2)

    run = run_with_traffic(dags["promote_variant"], deployer, endpoint, conf(endpoint, green))

    assert run.state == "success", task_states(run)
    assert returned(run, "promote_endpoint")["endpoint_config_name"] == green
    report = returned(run, "promotion_report")
    assert report["promoted"] is True and report["report_html_uri"].endswith("promotion_report.html")
    bucket, key = report["report_json_uri"].removeprefix("s3://").split("/", 1)
    document = json.loads(deployer.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert (document["blue_config"], document["green_config"]) == (blue, green)
    invocations = document["invocations"]
    last = max(time for fleet in invocations.values() for time, count in fleet.items() if count)
    # Once promoted, all traffic is green's (its EndpointConfigName series stops with the deployment).
    assert invocations["green"].get(last, 0) > 0 and invocations["blue"].get(last, 0) == 0
    assert task_states(run)["shift_traffic"] == "skipped" and task_states(run)["watcher"] == "skipped"


def test_a_rolled_back_promotion_fails_the_run_and_still_reports(dags, deployer):
    blue = deployer.config(deployer.model(factor=2), count=2)
    endpoint = deployer.endpoint(blue)
    green = deployer.config(deployer.model(BAD_MODEL, factor=10), count=2)

    run = run_with_traffic(dags["promote_variant"], deployer, endpoint,
                           {**conf(endpoint, green), "wait_interval_seconds": 600})

    states = task_states(run)
    assert run.state == "failed", states
    assert (states["promote_endpoint"], states["promotion_report"], states["watcher"]) == (
        "failed", "success", "failed")
    assert returned(run, "promotion_report")["promoted"] is False
    assert deployer.sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == blue


def test_a_dry_run_plans_and_changes_nothing(dags, deployer):
    blue = deployer.config(deployer.model(factor=2), count=1)
    endpoint = deployer.endpoint(blue)

    run = dags["promote_variant"].test(run_conf={**conf(endpoint, "not-created-config"), "dry_run": True})

    states = task_states(run)
    assert run.state == "success" and states["plan_promotion"] == "success"
    assert {task: state for task, state in states.items() if task not in ("plan_promotion", "choose_path")} == {
        task: "skipped" for task in states if task not in ("plan_promotion", "choose_path")}
    assert returned(run, "plan_promotion")["deployment_config"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"][
        "Type"] == "CANARY"
    assert deployer.sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == blue


def test_a_weight_shift_moves_traffic_in_steps(dags, deployer):
    from tests.operators.test_promotion import two_variants

    endpoint = two_variants(deployer, ECHO_MODEL)
    run = dags["promote_variant"].test(run_conf={
        "endpoint_name": endpoint, "mode": "weight_shift", "from_variant": "Champion", "to_variant": "Challenger",
        "weight_steps": [50, 100], "wait_interval_seconds": 2, "error_rate_threshold": 0.05,
        "dry_run": False})  # explicit: a DAG object that ran dag.test() before may keep an earlier run's Params

    assert run.state == "success" and task_states(run)["shift_traffic"] == "success", task_states(run)
    assert returned(run, "shift_traffic")["weights"] == {"Champion": 0.0, "Challenger": 100.0}
    assert task_states(run)["promote_endpoint"] == "skipped"
