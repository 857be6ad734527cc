"""InvokeEndpoint through real worker processes: answers, balancing, errors, limits, metrics, logs."""

from __future__ import annotations

import os
import signal
import time

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import recent_datapoints


@pytest.fixture(scope="module")
def two_instances(emulator):
    from tests.emulator.conftest import Deployer

    deployer = Deployer(emulator)
    endpoint = deployer.endpoint(deployer.config(deployer.model(factor=2), count=2))
    yield deployer, endpoint
    deployer.cleanup()


def test_invoke_returns_the_models_answer(two_instances):
    deployer, endpoint = two_instances
    answer = deployer.invoke(endpoint, {"values": [1, 2.5]})
    assert answer["result"] == [2, 5]
    assert answer["variant"] == "AllTraffic"
    assert answer["content_type"] == "application/json"


def test_requests_are_balanced_over_instances(two_instances):
    deployer, endpoint = two_instances
    pids = [deployer.invoke(endpoint, {"values": []})["pid"] for _ in range(20)]
    assert len(set(pids)) == 2
    assert min(pids.count(p) for p in set(pids)) >= 5


def test_container_errors_are_model_errors(two_instances):
    deployer, endpoint = two_instances
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {"raise": "kaboom"})
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 500
    assert "kaboom" in response["OriginalMessage"]
    assert response["Error"]["Message"].startswith('Received server error (500) from primary with message "')
    assert response["LogStreamArn"].endswith(f":log-group:/aws/sagemaker/Endpoints/{endpoint}")

    with pytest.raises(ClientError) as caught:
        deployer.runtime.invoke_endpoint(EndpointName=endpoint, Body=b"a,b", ContentType="text/csv")
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert caught.value.response["OriginalStatusCode"] == 415
    assert caught.value.response["Error"]["Message"].startswith("Received client error (415) from primary")


def test_unknown_endpoint_and_wrong_case(two_instances):
    deployer, endpoint = two_instances
    for name in ("no-such-endpoint", endpoint.upper()):
        with pytest.raises(ClientError) as caught:
            deployer.runtime.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")
        assert caught.value.response["Error"] == {
            "Code": "ValidationError", "Message": f"Endpoint {name} of account 123456789012 not found."}


def test_target_model_on_a_single_model_endpoint(two_instances):
    deployer, endpoint = two_instances
    with pytest.raises(ClientError) as caught:
        deployer.runtime.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json",
                                         TargetModel="english.tar.gz")
    assert caught.value.response["Error"]["Message"] == (
        f"Endpoint {endpoint} is not a multi-model endpoint and does not support target model header.")


def test_payloads_over_6_mb_are_refused(two_instances):
    deployer, endpoint = two_instances
    with pytest.raises(ClientError) as caught:
        deployer.runtime.invoke_endpoint(EndpointName=endpoint, Body=b"0" * (6 * 1024 * 1024 + 1),
                                         ContentType="application/json")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert caught.value.response["Error"]["Message"] == "HTTP content length exceeded 6291456 bytes."


def test_slow_invocations_are_cut_off(two_instances):
    # The emulator under test runs 20x fast: the 60 s container timeout is 3 s.
    deployer, endpoint = two_instances
    started = time.monotonic()
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {"sleep": 8})
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "timed out while waiting for a response from container primary" in caught.value.response["Error"]["Message"]
    assert time.monotonic() - started < 8


def test_metrics_reach_cloudwatch(emulator, deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model(), count=1))
    for _ in range(7):
        deployer.invoke(endpoint, {"values": [1]})
    with pytest.raises(ClientError):
        deployer.invoke(endpoint, {"raise": "x"})
    cloudwatch = emulator.client("cloudwatch")
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]

    def stat(metric: str, statistic: str) -> dict:
        def done(points: list) -> bool:
            return bool(points) and (metric != "Invocations" or sum(p[statistic] for p in points) >= 8)

        points = recent_datapoints(cloudwatch, metric, dimensions, statistic, done, 10)
        return {"value": sum(p[statistic] for p in points), "unit": points[0]["Unit"] if points else None}

    assert stat("Invocations", "Sum")["value"] == 8
    assert stat("InvocationsPerInstance", "Sum")["value"] == 8
    assert stat("Invocation5XXErrors", "Sum")["value"] == 1
    assert stat("Invocation4XXErrors", "Sum")["value"] == 0
    latency = stat("ModelLatency", "Maximum")
    assert latency["unit"] == "Microseconds" and latency["value"] > 0
    assert stat("OverheadLatency", "Maximum")["unit"] == "Microseconds"


def test_worker_logs_reach_cloudwatch_logs(emulator, deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model(), count=1))
    logs = emulator.client("logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith("AllTraffic/i-")
    events = logs.get_log_events(logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}",
                                 logStreamName=streams[0]["logStreamName"])["events"]
    assert any("model" in e["message"].lower() for e in events)


def test_a_dead_worker_is_replaced_and_the_endpoint_keeps_serving(deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model(), count=2))
    pids = {deployer.invoke(endpoint, {})["pid"] for _ in range(10)}
    assert len(pids) == 2
    victim = pids.pop()
    os.killpg(victim, signal.SIGKILL)  # the instance: its first process and the serving processes forked from it
    # Every request still succeeds while the instance is replaced.
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen.add(deployer.invoke(endpoint, {})["pid"])
        if len(seen - {victim}) >= 2:
            break
    assert victim not in seen
    assert len(seen) == 2, "the dead instance was not replaced"
    assert deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]["CurrentInstanceCount"] == 2
