"""release_iris end to end with dag.test() against the emulator: succeeds, then a re-run converges."""

from __future__ import annotations


import pytest


pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def release_iris(dags):
    return dags["release_iris"]


def returned(dag_run, task_id: str):
    """The return value a task pushed to XCom in ``dag_run``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key="return_value")
        return XComModel.deserialize_value(session.scalars(query).one())


def asset_events(uri: str) -> list[dict]:
    """The extras of every event of the Asset ``uri``, oldest first."""
    from sqlalchemy import select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = (
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
        )
        return list(session.scalars(query))


def test_release_iris_succeeds_then_converges(release_iris, emulator):
    first = release_iris.test()
    assert first.state == "success", f"first run ended {first.state}"

    package = returned(first, "package_model")
    deployment = returned(first, "deploy_endpoint")
    assert deployment["endpoint_status"] == "InService"
    assert returned(first, "smoke_test")["prediction"] == ["setosa", "versicolor", "virginica"]

    # iris.yaml's benchmark: three candidates measured for real, one chosen and deployed, the scaling target
    # from its measured capacity per instance.
    measured = returned(first, "benchmark.benchmark_candidates")
    choice = returned(first, "benchmark.choose_configuration")
    assert len(measured["candidates"]) == 3 and measured["reused"] is False
    chosen = next(c for c in measured["candidates"] if c["name"] == choice["candidate"])
    assert choice["option"] == "real-time" and chosen["max_rps"] > 0
    assert choice["autoscaling_target"] == round(chosen["max_rps"] / chosen["instance_count"] * 0.5 * 60, 1)
    config = emulator.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=deployment["endpoint_config_name"])
    assert config["ProductionVariants"][0]["InstanceType"] == chosen["instance_type"]
    [policy] = emulator.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId="endpoint/iris/variant/AllTraffic")["ScalingPolicies"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == choice["autoscaling_target"]
    bucket, key = choice["report_s3_uri"].removeprefix("s3://").split("/", 1)
    report = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert f"Choice: real-time on {chosen['name']}" in report
    assert not [e for e in emulator.client("sagemaker").list_endpoints()["Endpoints"]
                if e["EndpointName"].startswith("iris-bench")]  # the temporary endpoints are gone

    second = release_iris.test()
    assert second.state == "success", f"second run ended {second.state}"
    assert returned(second, "benchmark.benchmark_candidates")["reused"] is True  # same model version

    assert returned(second, "package_model") == {**package, "uploaded": False}
    assert returned(second, "ensure_model")["created"] is False
    assert returned(second, "ensure_endpoint_config")["created"] is False
    rerun = returned(second, "deploy_endpoint")
    assert (rerun["actions_taken"], rerun["endpoint_config_name"]) == ([], deployment["endpoint_config_name"])

    sagemaker = emulator.client("sagemaker")
    described = sagemaker.describe_endpoint(EndpointName="iris")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == deployment["endpoint_config_name"]
    # iris.yaml scales 1-4: idle, the endpoint may have scaled in from its 2 instances.
    assert [1 <= v["CurrentInstanceCount"] <= 4 for v in described["ProductionVariants"]] == [True]
    assert returned(first, "apply_scaling")["changed"] is True
    assert returned(second, "apply_scaling")["changed"] is False

    events = asset_events("sagemaker://endpoint/iris")
    assert len(events) >= 2
    assert events[-1] == {
        "endpoint_name": "iris",
        "endpoint_config_name": deployment["endpoint_config_name"],
        "model_data_sha256": package["sha256"],
        "changed": False,
    }
