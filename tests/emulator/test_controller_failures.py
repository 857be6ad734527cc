"""Failures are never silent: whatever breaks inside a controller task, the endpoint ends with a
FailureReason (never stuck in Creating/Updating/Deleting), the emulator logs it, and no worker process
of the failed step is left running. Faults are injected through the test-only /_emulator surface."""

from __future__ import annotations

import os
import signal

import pytest
import requests
from botocore.exceptions import ClientError

from tests.emulator.conftest import ECHO_MODEL, wait_until, workers_of


def inject(emulator, stage: str, endpoint: str, message: str) -> None:
    response = requests.post(f"{emulator.url}/_emulator/faults",
                             json={"stage": stage, "endpoint": endpoint, "message": message}, timeout=10)
    assert response.status_code == 201, response.text


def create_with_name(deployer, config: str, name: str) -> None:
    deployer.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    deployer.endpoints.append(name)


def test_a_create_that_raises_fails_the_endpoint_and_stops_its_workers(emulator, deployer):
    config = deployer.config(deployer.model(), count=2)
    name = deployer.name("endpoint")
    inject(emulator, "create", name, "disk on fire")
    create_with_name(deployer, config, name)

    described = deployer.wait_settled(name)
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == (
        "An internal error occurred while creating the endpoint: InjectedFault: disk on fire. Retry the request.")
    assert workers_of(name) == []  # both instances had started: both are stopped
    assert f"Creating endpoint {name} failed unexpectedly" in emulator.log_text()
    with pytest.raises(ClientError) as caught:
        deployer.invoke(name, {"values": [1]})
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_an_update_that_raises_keeps_the_old_config_serving(emulator, deployer):
    old_config = deployer.config(deployer.model(factor=2))
    endpoint = deployer.endpoint(old_config)
    new_config = deployer.config(deployer.model(factor=10))
    inject(emulator, "update", endpoint, "network partition")
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)

    described = deployer.wait_settled(endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", old_config)
    assert described["FailureReason"] == (
        "An internal error occurred while updating the endpoint: InjectedFault: network partition. "
        "Retry the request.")
    assert deployer.invoke(endpoint, {"values": [1]})["result"] == [2]
    # Only the blue instance's processes run: the green fleet was stopped.
    assert len({os.getpgid(pid) for pid in workers_of(endpoint)}) == 1


def test_a_capacity_change_that_raises_scales_back_and_keeps_serving(emulator, deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model(), count=1))
    inject(emulator, "update_variants", endpoint, "quota exceeded")
    deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])

    described = deployer.wait_settled(endpoint)
    variant = described["ProductionVariants"][0]
    assert described["EndpointStatus"] == "InService"
    assert "InjectedFault: quota exceeded" in described["FailureReason"]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (1, 1)
    wait_until(lambda: len({os.getpgid(pid) for pid in workers_of(endpoint)}) == 1, 30, "the extra instance to stop")
    assert deployer.invoke(endpoint, {"values": [1]})["result"] == [2]


def test_a_delete_that_raises_fails_the_endpoint_and_a_second_delete_removes_it(emulator, deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    inject(emulator, "delete", endpoint, "stuck volume")
    deployer.sm.delete_endpoint(EndpointName=endpoint)

    described = deployer.wait_settled(endpoint, in_progress=("Deleting",))
    assert described["EndpointStatus"] == "Failed"
    assert "while deleting the endpoint: InjectedFault: stuck volume" in described["FailureReason"]

    deployer.sm.delete_endpoint(EndpointName=endpoint)
    deployer.sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig={"Delay": 0.2})
    assert workers_of(endpoint) == []


def test_current_instance_count_follows_instances_that_die_and_are_replaced(emulator, deployer, tmp_path):
    # A replacement of this tiny model serves within ~0.3 s; once the marker exists, model_fn takes 3 s,
    # so the moment with one instance lasts long enough to be seen.
    slow_marker = tmp_path / "slow-start"
    code = ECHO_MODEL.replace("def model_fn(model_dir):\n",
                              f"def model_fn(model_dir):\n    if os.path.exists({str(slow_marker)!r}):\n"
                              f"        time.sleep(3)\n", 1)
    endpoint = deployer.endpoint(deployer.config(deployer.model(code), count=2))
    victim = deployer.invoke(endpoint, {"values": [1]})["pid"]  # the instance's process group
    slow_marker.touch()
    os.killpg(victim, signal.SIGKILL)

    def current_count() -> int:
        return deployer.sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]["CurrentInstanceCount"]

    wait_until(lambda: current_count() == 1, 30, "CurrentInstanceCount to drop to 1")
    wait_until(lambda: current_count() == 2, 60, "the replacement to count again")
    assert deployer.sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"


def test_a_malformed_fault_request_is_refused(emulator):
    response = requests.post(f"{emulator.url}/_emulator/faults", json={"stage": "explode", "endpoint": "x"},
                             timeout=10)
    assert response.status_code == 400
    assert "stage must be one of create, update, update_variants, delete" in response.json()["message"]
