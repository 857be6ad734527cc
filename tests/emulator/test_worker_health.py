"""Health and instance types through the AWS surface: a hung instance is replaced, DeleteEndpoint during
model_fn leaves no process, and an instance runs one serving process per vCPU of its type.

The emulator under test runs 20x fast: the 60 s invocation timeout is 3 s and the liveness check pings
every 0.5 s with a 1 s timeout, replacing an instance after 3 failures in a row (instance_health.py).
"""

from __future__ import annotations

import os
import signal
import textwrap
import time

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import ECHO_MODEL, ROLE_ARN, processes_in_group, wait_until

HANGING_MODEL_FN = """
import os, time

def model_fn(model_dir):
    with open(os.environ["MODEL_FN_MARKER"], "w") as marker:
        marker.write(str(os.getpid()))
    while True:
        time.sleep(1)
"""


def create_model(deployer, code: str = ECHO_MODEL, **environment: str) -> str:
    name = deployer.name("model")
    url = deployer.upload({"code/inference.py": textwrap.dedent(code), "factor.txt": "2"})
    deployer.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
        "Image": "local/sklearn:1.2-1", "ModelDataUrl": url, "Environment": environment})
    return name


def test_an_instance_runs_one_serving_process_per_vcpu_of_its_type(deployer):
    plain, one_worker = create_model(deployer), create_model(deployer, SAGEMAKER_MODEL_SERVER_WORKERS="1")
    config = deployer.name("config")
    deployer.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "XLarge", "ModelName": plain, "InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 1},
        {"VariantName": "Large", "ModelName": plain, "InstanceType": "ml.c5.large", "InitialInstanceCount": 1},
        {"VariantName": "OneWorker", "ModelName": one_worker, "InstanceType": "ml.c5.xlarge",
         "InitialInstanceCount": 1}])
    endpoint = deployer.endpoint(config)

    processes = {variant: len(processes_in_group(deployer.invoke(endpoint, {}, TargetVariant=variant)["pid"]))
                 for variant in ("XLarge", "Large", "OneWorker")}

    assert processes == {"XLarge": 4, "Large": 2, "OneWorker": 1}


def test_a_hung_instance_is_replaced_and_requests_to_it_time_out(emulator, deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model(), count=1))
    hung = deployer.invoke(endpoint, {})["pid"]

    os.killpg(hung, signal.SIGSTOP)  # every process of the instance: it accepts nothing, answers nothing
    try:
        with pytest.raises(ClientError) as caught:
            deployer.invoke(endpoint, {})
        assert caught.value.response["Error"]["Code"] == "ModelError"
        assert "timed out while waiting for a response from container primary" in caught.value.response["Error"]["Message"]

        # The health check kills it and the fleet starts a replacement.
        wait_until(lambda: processes_in_group(hung) == [], 30, "the hung instance killed")
        replacement = wait_until(lambda: _pid_if_served(deployer, endpoint), 60, "a replacement serving")
    finally:
        if processes_in_group(hung):
            os.killpg(hung, signal.SIGCONT)

    assert replacement != hung
    variant = deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 1
    assert any("failed 3 health checks in a row: GET /ping on worker port" in line
               for line in _log_lines(emulator, endpoint))


def test_delete_endpoint_during_model_fn_leaves_no_process(deployer, tmp_path):
    marker = tmp_path / "model_fn-started"
    model = create_model(deployer, HANGING_MODEL_FN, MODEL_FN_MARKER=str(marker))
    endpoint = deployer.endpoint(deployer.config(model), wait=False)
    wait_until(marker.exists, 60, "model_fn started")
    instance = int(wait_until(marker.read_text, 5, "model_fn wrote its pid"))
    assert processes_in_group(instance)

    deployer.sm.delete_endpoint(EndpointName=endpoint)

    wait_until(lambda: processes_in_group(instance) == [], 30, "every process of the instance gone")
    with pytest.raises(ClientError) as caught:
        wait_until(lambda: not deployer.sm.describe_endpoint(EndpointName=endpoint), 30, "the endpoint deleted")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def _pid_if_served(deployer, endpoint: str) -> int | None:
    try:
        return deployer.invoke(endpoint, {})["pid"]
    except ClientError:
        return None


def _log_lines(emulator, endpoint: str) -> list[str]:
    logs = emulator.client("logs")
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    lines = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
        lines += [event["message"] for event in events]
    return lines
