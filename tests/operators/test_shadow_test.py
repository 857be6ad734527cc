"""ShadowTestOperator against the emulator: a candidate deployed as a real shadow fleet beside production,
compared from its captured answers and its CloudWatch metrics, the endpoint restored afterwards.

Production multiplies by 2. A candidate that also multiplies by 2 agrees; one that multiplies by 3 answers
differently; a broken one raises on every request. Callers keep getting production's answers throughout.
"""

from __future__ import annotations

import json
import uuid

import pytest

from sagemaker_ops.load_test.background import BackgroundCalls
from sagemaker_ops.operators.shadow_test import ShadowTestFailed, ShadowTestOperator
from tests.emulator.conftest import BUCKET, ECHO_MODEL, Deployer

# The echo model without the process ids in its answer, so two fleets' answers can be equal.
MODEL = ECHO_MODEL.replace(', "pid": os.getpgid(0),\n            "serving_pid": os.getpid()}', "}")
BROKEN = MODEL.replace("def predict_fn(data, model):\n",
                       'def predict_fn(data, model):\n    raise RuntimeError("the candidate is broken")\n')
SLOW = MODEL.replace("def predict_fn(data, model):\n", "def predict_fn(data, model):\n    time.sleep(0.5)\n")
PAYLOADS = [{"values": [1, 2]}, {"values": [0.5]}, {"values": [7]}]
THRESHOLDS = {"min_agreement": 1.0, "max_error_rate": 0.0, "max_latency_p99_increase_ms": 60_000}


@pytest.fixture
def deployer(emulator):
    helper = Deployer(emulator)
    yield helper
    helper.cleanup()


@pytest.fixture
def production(deployer) -> tuple[str, str]:
    """A live endpoint on one production variant (factor 2), and its config."""
    config = deployer.config(deployer.model(MODEL, factor=2), variant="Live")
    return deployer.endpoint(config), config


class Callers(BackgroundCalls):
    """Clients invoking the endpoint throughout, each request with its own InferenceId."""

    def __init__(self, deployer: Deployer, endpoint: str):
        super().__init__()
        self.deployer, self.endpoint = deployer, endpoint
        self.answers: list[tuple[str, list[float], list[float]]] = []  # (variant, sent, answered)
        self.sent = 0

    def call(self) -> None:
        self.sent += 1
        values = [self.sent % 10]
        answer = self.deployer.invoke(self.endpoint, {"values": values}, InferenceId=f"caller-{uuid.uuid4().hex}")
        self.answers.append((answer["variant"], values, answer["result"]))

    def failed(self, error: Exception) -> None:
        self.errors.append(str(error))

    def all_production(self) -> bool:
        return all(variant == "Live" and answered == [v * 2 for v in sent] for variant, sent, answered in self.answers)


def shadow_test(endpoint: str, candidate: str, **kwargs) -> ShadowTestOperator:
    settings = {"payloads": PAYLOADS, "requests": 12, "thresholds": THRESHOLDS, **kwargs}
    return ShadowTestOperator(task_id="shadow_test", endpoint_name=endpoint, candidate_model_name=candidate,
                              capture_s3_uri=f"s3://{BUCKET}/shadow-tests/{uuid.uuid4().hex[:8]}",
                              waiter_delay=1, waiter_max_attempts=120, **settings)


def assert_restored(deployer: Deployer, endpoint: str, config: str) -> None:
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", config)
    assert "ShadowProductionVariants" not in described


def test_an_agreeing_candidate_passes_and_callers_keep_production_answers(deployer, production):
    endpoint, config = production
    with Callers(deployer, endpoint) as callers:
        result = shadow_test(endpoint, deployer.model(MODEL, factor=2)).execute({})
    assert callers.answers and not callers.errors and callers.all_production()
    # The test's 12 requests and the callers' (which carry an InferenceId too) are all paired.
    assert (result["requests_sent"], result["agreement"]) == (12, 1.0) and result["pairs"] >= 12
    assert result["breaches"] == [] and result["production_config_name"] == config
    assert result["shadow"]["invocations"] >= 12 and result["shadow"]["error_rate"] == 0
    assert result["shadow"]["latency_p99_ms"] > 0 and result["production"]["latency_p99_ms"] > 0
    json.dumps(result)  # a small JSON result
    assert_restored(deployer, endpoint, config)


def test_a_candidate_answering_differently_fails_naming_agreement(deployer, production):
    endpoint, config = production
    with pytest.raises(ShadowTestFailed) as failure:
        shadow_test(endpoint, deployer.model(MODEL, factor=3)).execute({})
    message = str(failure.value)
    assert f"the endpoint is back on {config}" in message
    assert "- agreement: measured 0.00% over 12 pairs, at least 100.00% required" in message
    assert "error rate" not in message
    assert_restored(deployer, endpoint, config)


def test_numbers_within_the_tolerance_agree(deployer, production):
    endpoint, _config = production
    candidate = deployer.model(MODEL, factor=2.001)
    result = shadow_test(endpoint, candidate, payloads=[{"values": [1]}], requests=4,
                         thresholds={**THRESHOLDS, "numeric_tolerance": 0.01}).execute({})
    assert (result["pairs"], result["agreement"]) == (4, 1.0)


def test_a_raising_candidate_fails_naming_the_error_rate_while_callers_are_served(deployer, production):
    endpoint, config = production
    with Callers(deployer, endpoint) as callers, pytest.raises(ShadowTestFailed) as failure:
        shadow_test(endpoint, deployer.model(BROKEN), thresholds={"max_error_rate": 0.05}).execute({})
    assert callers.answers and not callers.errors and callers.all_production()
    message = str(failure.value)
    assert "- error rate: measured 100.00% (0 4XX + " in message and "at most 5.00% allowed" in message
    assert_restored(deployer, endpoint, config)


def test_a_slower_candidate_fails_naming_the_latency_increase(deployer, production):
    endpoint, config = production
    with pytest.raises(ShadowTestFailed) as failure:
        shadow_test(endpoint, deployer.model(SLOW, factor=2), requests=4,
                    thresholds={"min_agreement": 1.0, "max_latency_p99_increase_ms": 300}).execute({})
    message = str(failure.value)
    assert "- latency p99 increase: measured " in message and "at most 300 ms allowed" in message
    assert "agreement" not in message  # it answers as production does, only later
    assert_restored(deployer, endpoint, config)


def test_live_traffic_window_pairs_callers_requests_by_inference_id(deployer, production):
    endpoint, config = production
    with Callers(deployer, endpoint) as callers:
        result = shadow_test(endpoint, deployer.model(MODEL, factor=2), payloads=None, requests=None,
                             traffic_window_seconds=2).execute({})
    assert result["requests_sent"] == 0 and result["pairs"] > 0 and result["agreement"] == 1.0
    assert callers.all_production() and not callers.errors
    assert_restored(deployer, endpoint, config)


def test_a_retry_after_a_crash_on_the_shadow_config_converges(deployer, production):
    """A worker that died mid-test left the endpoint on the shadow config: the retry finds the production
    config from the shadow config's tag, runs the test and restores it."""
    endpoint, config = production
    candidate = deployer.model(MODEL, factor=2)
    operator = shadow_test(endpoint, candidate)
    shadow_config = operator._ensure_shadow_config(config)  # what the crashed try had deployed
    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=shadow_config)
    deployer.wait(endpoint)
    result = operator.execute({})  # the retry: the same task, the same settings
    assert (result["production_config_name"], result["shadow_config_name"]) == (config, shadow_config)
    assert result["agreement"] == 1.0
    assert_restored(deployer, endpoint, config)


def test_a_missing_endpoint_fails_clearly(emulator):
    with pytest.raises(ShadowTestFailed, match="Endpoint no-such-endpoint does not exist; a shadow test needs a "
                                               "live endpoint"):
        shadow_test("no-such-endpoint", "some-model").execute({})


@pytest.mark.parametrize(("settings", "message"), [
    ({"deferrable": True}, "deferrable=True is not supported by ShadowTestOperator yet"),
    ({"endpoint_name": "bad_name"}, "endpoint_name must be 1-63 letters"),
    ({"candidate_model_name": ""}, "candidate_model_name must be 1-63 letters"),
    ({"capture_s3_uri": "bucket/prefix"}, "capture_s3_uri must be an s3://bucket/prefix URI"),
    ({"payloads": []}, "payloads must be a non-empty list of request bodies"),
    ({"payloads": None}, "requests is set but payloads is not"),
    ({"payloads": None, "requests": None}, "Give payloads (requests to send) or traffic_window_seconds"),
    ({"traffic_window_seconds": 5}, "Give either payloads (requests to send) or traffic_window_seconds"),
    ({"payloads": None, "requests": None, "traffic_window_seconds": 0}, "traffic_window_seconds must be an integer"),
    ({"requests": 0}, "requests must be an integer >= 1, got 0"),
    ({"shadow_share": 0}, "shadow_share is the share of requests copied to the shadow"),
    ({"shadow_instance_count": 0}, "shadow_instance_count must be an integer >= 1"),
    ({"waiter_delay": 0}, "waiter_delay must be an integer >= 1"),
    ({"thresholds": {"min_agreement": 2}}, "thresholds.min_agreement is a share"),
])
def test_invalid_settings_are_refused_before_any_aws_call(settings, message):
    arguments = {"endpoint_name": "endpoint", "candidate_model_name": "candidate",
                 "capture_s3_uri": "s3://bucket/prefix", "payloads": PAYLOADS, "requests": 3,
                 "thresholds": THRESHOLDS, "aws_conn_id": "no-such-connection", **settings}
    with pytest.raises(ValueError) as error:
        ShadowTestOperator(task_id="shadow_test", **arguments).execute({})
    assert str(error.value).startswith(message)
