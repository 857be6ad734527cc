"""LoadTestOperator against the emulator: the load generator's accounting.

The model sleeps a known time per request in one serving process (``SAGEMAKER_MODEL_SERVER_WORKERS=1``),
so physics bounds what an honest generator may report: no request is faster than the sleep, and no
more than ``1 / sleep`` requests per second complete. In the open model, request *i* due at
``i / rate`` cannot be answered before ``(i + 1) * sleep`` (one at a time), so its latency counted from
the intended send time includes that queueing.
"""

from __future__ import annotations

import json
import textwrap
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sagemaker_ops.load_test.plan import LoadTestPlanError, build_stages, capacity, percentiles
from sagemaker_ops.load_test.signing import Signer
from sagemaker_ops.operators.load_test import LoadTestOperator
from tests.emulator.conftest import BUCKET, ECHO_MODEL, ROLE_ARN, deployer  # noqa: F401 - the fixture

SLEEP_SECONDS = 0.2
SLOW_PAYLOAD = json.dumps({"values": [1], "sleep": SLEEP_SECONDS})


@pytest.fixture
def one_serial_worker(deployer) -> str:  # noqa: F811 - the imported fixture
    """An endpoint of one instance with one serving process: requests are served one at a time."""
    name = deployer.name("serial")
    url = deployer.upload({"code/inference.py": textwrap.dedent(ECHO_MODEL), "factor.txt": "2"})
    deployer.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
        "Image": "local/sklearn:1.2-1", "ModelDataUrl": url,
        "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}})
    return deployer.endpoint(deployer.config(name))


def run(endpoint: str, emulator_aws, **kwargs) -> tuple[dict, dict]:
    uri = f"s3://{BUCKET}/load-tests/{uuid.uuid4().hex}.json"
    operator = LoadTestOperator(task_id="load_test", endpoint_name=endpoint, result_s3_uri=uri,
                                content_type="application/json", aws_conn_id=emulator_aws.conn_id, **kwargs)
    summary = operator.execute({})
    s3 = emulator_aws.client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read())
    return summary, document


def test_closed_model_reports_the_sleep_as_latency_and_at_most_the_throughput_it_allows(
        one_serial_worker, emulator_aws, capsys):
    summary, document = run(one_serial_worker, emulator_aws, payload=SLOW_PAYLOAD,
                            traffic_shape={"kind": "steps", "start": 1, "step": 3, "count": 2, "step_seconds": 2})
    one_user, four_users = document["steps"]
    assert (one_user["value"], four_users["value"]) == (1, 4)
    for step in document["steps"]:
        assert step["errors"] == 0 and step["requests"] > 0
        assert step["latency_ms"]["p50"] >= SLEEP_SECONDS * 1000
        assert step["throughput_rps"] <= 1 / SLEEP_SECONDS  # one process, one request at a time
    # Four users share the one process: each waits for the other three (closed-model queueing).
    assert four_users["latency_ms"]["p50"] >= 3 * SLEEP_SECONDS * 1000
    assert document["totals"]["status_codes"] == {"200": document["totals"]["requests"]}
    assert summary["max_rps"] == max(one_user["throughput_rps"], four_users["throughput_rps"])
    assert summary["after_idle_requests"] == 1  # the first request of the test
    log = capsys.readouterr().out  # the task log
    assert "[load-test] t=" in log and "[load-test] done:" in log  # progress streamed while it ran
    assert "testing" not in log.replace("load-test", "")  # the credentials never reach the log


def test_open_model_counts_latency_from_the_intended_send_time(one_serial_worker, emulator_aws):
    rate, seconds = 10, 2  # twice what one process sleeping 0.2 s can serve
    _, document = run(one_serial_worker, emulator_aws, payload=SLOW_PAYLOAD, model="arrival_rate", max_in_flight=4,
                      traffic_shape={"kind": "constant", "value": rate, "duration_seconds": seconds})
    totals = document["totals"]
    due = rate * seconds
    answered = totals["requests"]
    assert answered + totals["unsent"] + totals["unfinished"] == due  # every due request is accounted for
    assert totals["errors"] == 0 and answered >= 4
    # The last answered request was due at (answered - 1) / rate and served after `answered` sleeps.
    slowest_possible = (answered * SLEEP_SECONDS - (answered - 1) / rate) * 1000
    assert totals["latency_ms"]["max"] >= slowest_possible
    assert totals["latency_ms"]["max"] > 2 * SLEEP_SECONDS * 1000  # queueing shows, unlike a closed loop
    assert totals["late"] > 0  # four connections busy: later requests could not leave on time


def test_shapes_become_stages_and_bad_fields_are_named():
    assert [s.value for s in build_stages({"kind": "ramp", "start": 2, "end": 10, "duration_seconds": 10,
                                           "steps": 5})] == [2, 4, 6, 8, 10]
    spike = build_stages({"kind": "spike", "base": 1, "peak": 8, "base_seconds": 2, "peak_seconds": 1})
    assert [(s.name, s.value, s.duration_seconds) for s in spike] == [("base", 1, 2), ("spike", 8, 1),
                                                                      ("after spike", 1, 2)]
    with pytest.raises(LoadTestPlanError, match=r"traffic_shape.step_seconds must be a number >= 0.1, got 'x'"):
        build_stages({"kind": "steps", "start": 1, "step": 1, "count": 2, "step_seconds": "x"})
    with pytest.raises(LoadTestPlanError, match=r"kind must be one of constant, ramp, steps, spike, got 'wave'"):
        build_stages({"kind": "wave"})
    with pytest.raises(LoadTestPlanError, match=r"missing \['duration_seconds'\]"):
        build_stages({"kind": "constant", "value": 3})


def test_percentiles_and_capacity():
    assert percentiles(list(range(1, 101))) == {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p99.9": 100,
                                                "mean": 50.5, "max": 100}
    steps = [{"requests": 100, "errors": 0, "throughput_rps": 50}, {"requests": 100, "errors": 30,
                                                                    "throughput_rps": 90}]
    assert capacity(steps)["throughput_rps"] == 50  # the faster step failed 30% of its requests


def test_signed_headers_are_botocore_sigv4_and_reused_within_the_second(monkeypatch):
    import datetime as dt

    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: dt.datetime(2026, 1, 2, 3, 4, 5))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    url = "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/iris/invocations"
    signer = Signer(url, b"1,2,3,4", {"Content-Type": "text/csv"}, "us-east-1")
    headers = signer.headers()
    assert signer.headers() is headers  # the same second: not signed again
    expected = AWSRequest(method="POST", url=url, data=b"1,2,3,4", headers={"Content-Type": "text/csv"})
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "sagemaker", "us-east-1").add_auth(expected)
    assert headers["Authorization"] == expected.headers["Authorization"]
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/sagemaker/")
    assert headers["X-Amz-Date"] == "20260102T030405Z"


def test_invalid_settings_fail_before_any_request(emulator_aws):
    bad = LoadTestOperator(task_id="bad", endpoint_name="iris", payload="1", result_s3_uri="s3://b/k.json",
                           model="async", traffic_shape={"kind": "constant", "value": 1, "duration_seconds": 1})
    with pytest.raises(ValueError, match="async_input_s3_uri is required with model='async'"):
        bad.execute({})
    shape = LoadTestOperator(task_id="shape", endpoint_name="iris", payload="1", result_s3_uri="s3://b/k.json",
                             traffic_shape={"kind": "ramp", "start": 1})
    with pytest.raises(ValueError, match=r"traffic_shape of kind ramp takes .*missing \['duration_seconds', 'end'\]"):
        shape.execute({})


def test_async_measures_the_time_to_the_result_in_s3(deployer, emulator_aws):  # noqa: F811 - the fixture
    config = deployer.name("async")
    deployer.sm.create_endpoint_config(
        EndpointConfigName=config, AsyncInferenceConfig={"OutputConfig": {
            "S3OutputPath": f"s3://{BUCKET}/load-test-async/out",
            "S3FailurePath": f"s3://{BUCKET}/load-test-async/err"}},
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": deployer.model(ECHO_MODEL),
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    endpoint = deployer.endpoint(config)
    summary, document = run(endpoint, emulator_aws, payload=SLOW_PAYLOAD, model="async",
                            async_input_s3_uri=f"s3://{BUCKET}/load-test-async/in/{uuid.uuid4().hex}.json",
                            traffic_shape={"kind": "constant", "value": 2, "duration_seconds": 3})
    totals = document["totals"]
    assert totals["errors"] == 0 and totals["requests"] >= 2
    # The model sleeps 0.2 s; the answer is then written to S3 and found by polling.
    assert totals["latency_ms"]["p50"] >= SLEEP_SECONDS * 1000
    assert summary["max_rps"] <= 1 / SLEEP_SECONDS * 2  # two serving processes at most (ml.m5.large: 2 vCPUs)


def test_serverless_counts_the_cold_start_after_idle(deployer, emulator_aws):  # noqa: F811 - the fixture
    config = deployer.name("serverless")
    deployer.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": deployer.model(ECHO_MODEL),
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}])
    endpoint = deployer.endpoint(config)
    summary, document = run(endpoint, emulator_aws, payload=json.dumps({"values": [1]}),
                            traffic_shape={"kind": "constant", "value": 1, "duration_seconds": 2})
    after_idle = document["after_idle"]
    assert summary["after_idle_requests"] == after_idle["requests"] == 1  # the first one woke a worker
    assert document["totals"]["errors"] == 0 and document["totals"]["requests"] > 1
    # The cold request waited for a worker to start: slower than any warm one of the same user.
    assert after_idle["latency_ms"]["max"] >= document["totals"]["latency_ms"]["p50"]
