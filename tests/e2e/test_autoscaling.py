"""The shipped scaling sections applied by ApplyScalingOperator to live endpoints, then real traffic.

iris.yaml: the chapter's target tracking (10 invocations per instance per minute, 1-4 instances, cooldowns
300 s in / 60 s out) scales the endpoint out to what the alarm's measured datapoint asks for, and back in
once the load stops, with the activities listed and not one request failed. iris-async.yaml: the idle
endpoint scales to zero, and the step policy's alarm the operator created brings an instance back when a
request waits. A step policy and a scheduled action written from a spec act the same way: the step's alarm
adds its step under load, the at() action raises the floor. A release that changes the instance type steps
around the registered target (deregister, update, register again). Time scale 20: a minute is 3 s."""

from __future__ import annotations

import json
import math

import pytest

from tests.emulator.autoscaling_support import SteadyLoad, activities, alarm_datapoint_at_alarm
from tests.e2e.test_release_dag import returned
from tests.emulator.conftest import deployer, wait_until  # noqa: F401 - the fixture
from tests.unit.pipeline_documents import PIPELINES

pytestmark = pytest.mark.e2e

REQUESTS_PER_SECOND = 14  # 42 invocations per (3 s) minute on one instance: the chapter's jump from 1 to 4


def apply_iris_scaling(endpoint: str, pipeline_file: str = "iris.yaml") -> dict:
    """What the release's apply_scaling task does, on this endpoint (a release run packages and deploys
    for a minute first; tests/e2e/test_release_dag.py runs that)."""
    from sagemaker_ops.operators.autoscaling import ApplyScalingOperator
    from sagemaker_ops.pipeline import load_pipeline

    scaling = load_pipeline(PIPELINES / pipeline_file).scaling.document
    return ApplyScalingOperator(task_id="apply_scaling", endpoint_name=endpoint, scaling=scaling,
                                waiter_delay=1).execute({})


def test_iris_scaling_scales_out_under_load_and_back_in(emulator, deployer):  # noqa: F811
    aas, cloudwatch = emulator.client("application-autoscaling"), emulator.client("cloudwatch")
    endpoint = deployer.endpoint(deployer.config(deployer.model(), count=1))
    assert apply_iris_scaling(endpoint)["changed"] is True
    [policy] = aas.describe_scaling_policies(ServiceNamespace="sagemaker",
                                             ResourceId=f"endpoint/{endpoint}/variant/AllTraffic")["ScalingPolicies"]
    high = next(alarm["AlarmName"] for alarm in policy["Alarms"] if "-AlarmHigh-" in alarm["AlarmName"])
    seen = []

    def serving(count: int) -> bool:
        variant = deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
        seen.append((variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]))
        return variant["CurrentInstanceCount"] == count and variant["DesiredInstanceCount"] == count

    with SteadyLoad(deployer.runtime, endpoint, REQUESTS_PER_SECOND) as load:
        wait_until(lambda: any(a["StatusCode"] == "Successful" for a in activities(aas, endpoint)), 60,
                   "the scale-out")
        measured = alarm_datapoint_at_alarm(cloudwatch, high)
        expected = min(4, math.ceil(1 * measured / 10))
        wait_until(lambda: serving(expected), 30, f"{expected} instances serving")
    wait_until(lambda: serving(1), 90, "the scale-in to 1 after the load")

    out, back_in = activities(aas, endpoint)[0], activities(aas, endpoint)[-1]
    print(f"\niris scaling: AlarmHigh fired on {measured:.0f} invocations per instance per minute -> {expected} "
          f"instances; DescribeEndpoint (desired, current) went {seen[0]} .. {seen[-1]}; {load.ok} requests answered")
    assert measured > 10 and expected > 1
    assert out["Description"] == f"Setting desired instance count to {expected}."
    assert out["Cause"] == f"monitor alarm {high} in state ALARM triggered policy {policy['PolicyName']}"
    assert (back_in["Description"], back_in["StatusCode"]) == ("Setting desired instance count to 1.", "Successful")
    assert (expected, expected) in seen and seen[-1] == (1, 1)  # both seen through DescribeEndpoint
    assert (load.failures, load.ok > 0) == ([], True)


def test_iris_async_scales_to_zero_and_a_waiting_request_brings_an_instance_back(emulator, deployer):  # noqa: F811
    from tests.emulator.test_async_inference import async_config, invoke_async, read_s3

    aas = emulator.client("application-autoscaling")
    config, _ = async_config(deployer, deployer.model(factor=2))
    endpoint = deployer.endpoint(config)
    applied = apply_iris_scaling(endpoint, "iris-async.yaml")
    assert applied["alarm_names"] == [f"{endpoint}-AllTraffic-scaling-scale-from-zero"]

    def instances() -> tuple[int, int]:
        variant = deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
        return variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]

    wait_until(lambda: instances() == (0, 0), 90, "the idle endpoint to scale to zero")
    response = invoke_async(deployer, endpoint, {"values": [21]})
    assert json.loads(read_s3(deployer, response["OutputLocation"], timeout=60))["result"] == [42.0]
    woke = [a for a in activities(aas, endpoint) if a["Description"] == "Setting desired instance count to 1."]
    assert [(a["Cause"], a["StatusCode"]) for a in woke] == [
        (f"monitor alarm {applied['alarm_names'][0]} in state ALARM triggered policy scale-from-zero", "Successful")]


def scaled_spec(endpoint: str, **variant) -> dict:
    from sagemaker_ops.operators.autoscaling import ApplyScalingOperator

    scaling = {"variants": [{"name": "AllTraffic", "min_capacity": 1, "max_capacity": 4, **variant}]}
    return ApplyScalingOperator(task_id="apply_scaling", endpoint_name=endpoint, scaling=scaling,
                                waiter_delay=1).execute({})


def test_a_step_policy_from_the_spec_adds_its_step_under_load(emulator, deployer, dags):  # noqa: F811
    aas = emulator.client("application-autoscaling")
    endpoint = deployer.endpoint(deployer.config(deployer.model(), count=1))
    applied = scaled_spec(endpoint, step_scaling=[{
        "name": "busy", "adjustment_type": "ChangeInCapacity", "steps": [{"lower_bound": 0, "adjustment": 2}],
        "alarm": {"metric": "Invocations", "statistic": "Sum", "threshold": 20}}])

    # 42 invocations per minute: above the threshold of 20
    with SteadyLoad(deployer.runtime, endpoint, REQUESTS_PER_SECOND) as load:
        wait_until(lambda: any(a["StatusCode"] == "Successful" for a in activities(aas, endpoint)), 60,
                   "the step scale-out")
    [step] = activities(aas, endpoint)
    assert step["Description"] == "Setting desired instance count to 3."
    assert step["Cause"] == f"monitor alarm {applied['alarm_names'][0]} in state ALARM triggered policy busy"
    assert (load.failures, load.ok > 0) == ([], True)

    # The on-demand scaling_report DAG, as `airflow dags test scaling_report -c '{...}'` runs it.
    run = dags["scaling_report"].test(run_conf={"endpoint_name": endpoint, "variant_name": "AllTraffic",
                                                "window_hours": 1, "window_end": None, "period_seconds": 3})
    assert run.state == "success"
    report = returned(run, "scaling_report")
    assert (report["activities"], report["instance_counts"]) == (["Setting desired instance count to 3."], [1, 3])
    bucket, key = report["report_html_uri"].removeprefix("s3://").split("/", 1)
    page = deployer.s3.get_object(Bucket=bucket, Key=key)
    assert page["Body"].read().count(b"data:image/png;base64,") == 2


def test_a_scheduled_action_from_the_spec_raises_the_floor(emulator, deployer):  # noqa: F811
    from datetime import datetime, timedelta, timezone

    aas = emulator.client("application-autoscaling")
    endpoint = deployer.endpoint(deployer.config(deployer.model(), count=1))
    at = (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")  # 3 s at time scale 20
    scaled_spec(endpoint, scheduled_actions=[{"name": "morning", "schedule": f"at({at})", "min_capacity": 2}])

    wait_until(lambda: [(a["Description"], a["StatusCode"]) for a in activities(aas, endpoint)] == [
        ("Setting desired instance count to 2.", "Successful")], 60, "the scheduled scale-out")
    variant = deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert (variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (2, 2)
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                             ResourceIds=[f"endpoint/{endpoint}/variant/AllTraffic"])["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)


def test_a_release_that_changes_the_instance_type_steps_around_the_registered_target(emulator, airflow_db, tmp_path):
    import yaml

    from tests.e2e.release_runs import REPO, run_release, task_log

    iris = yaml.safe_load((PIPELINES / "iris.yaml").read_text())
    scaling = iris["scaling"]
    first, output = run_release(tmp_path / "first", "scaled-type", REPO / "include/models/iris", scaling=scaling)
    assert first == 0, output[-3000:]

    endpoint = {**iris["endpoint"], "variants": [{**iris["endpoint"]["variants"][0], "instance_type": "ml.c5.large"}]}
    second, output = run_release(tmp_path / "second", "scaled-type", REPO / "include/models/iris", scaling=scaling,
                                 endpoint=endpoint)
    assert second == 0, output[-3000:]
    assert "Deregistered endpoint/scaled-type/variant/AllTraffic for the update (ml.m5.large -> ml.c5.large)" in \
        task_log(output, "release_scaling_for_update")
    assert "registered endpoint/scaled-type/variant/AllTraffic (1-4)" in task_log(output, "apply_scaling")
    sagemaker = emulator.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName="scaled-type")["EndpointConfigName"]
    [variant] = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    [target] = emulator.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=["endpoint/scaled-type/variant/AllTraffic"])["ScalableTargets"]
    assert (variant["InstanceType"], target["MinCapacity"], target["MaxCapacity"]) == ("ml.c5.large", 1, 4)
