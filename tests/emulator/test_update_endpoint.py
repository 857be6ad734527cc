"""UpdateEndpoint: blue/green, all at once, with no failed request during the switch."""

from __future__ import annotations

import threading

from tests.emulator.conftest import ECHO_MODEL


def test_update_switches_config_without_failing_requests(deployer):
    old_model = deployer.model(factor=2)
    old_config = deployer.config(old_model, count=2)
    endpoint = deployer.endpoint(old_config)
    new_config = deployer.config(deployer.model(factor=10), count=1)

    answers, errors, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                answers.append(deployer.invoke(endpoint, {"values": [1]})["result"][0])
            except Exception as error:  # noqa: BLE001 - every failure is what the test counts
                errors.append(error)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)
        assert deployer.sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"
        described = deployer.wait(endpoint)
        after = len(answers)
        while len(answers) < after + 5:
            pass
    finally:
        stop.set()
        sender.join()

    assert errors == []
    assert described["EndpointConfigName"] == new_config
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert answers[0] == 2 and answers[-1] == 10
    # Traffic flips once: old answers, then new ones, never interleaved.
    flip = answers.index(10)
    assert set(answers[:flip]) == {2} and set(answers[flip:]) == {10}


def test_failed_update_keeps_serving_the_old_config(deployer):
    old_config = deployer.config(deployer.model(factor=3))
    endpoint = deployer.endpoint(old_config)
    broken = deployer.model(model_data_url=deployer.upload(
        {"code/inference.py": "def model_fn(d):\n    raise ValueError('bad weights')\n"}))
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=deployer.config(broken))
    described = deployer.wait_settled(endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == old_config
    assert "bad weights" in described["FailureReason"]
    assert deployer.invoke(endpoint, {"values": [1]})["result"] == [3]


def test_failed_endpoint_cannot_be_updated(deployer):
    broken = deployer.model(model_data_url="s3://emulator-tests/missing/model.tar.gz")
    endpoint = deployer.endpoint(deployer.config(broken), wait=False)
    assert deployer.wait_settled(endpoint)["EndpointStatus"] == "Failed"
    good = deployer.config(deployer.model(ECHO_MODEL))
    try:
        deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=good)
    except deployer.sm.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "ValidationException"
        assert "Failed" in error.response["Error"]["Message"]
    else:
        raise AssertionError("UpdateEndpoint on a Failed endpoint must be refused")
