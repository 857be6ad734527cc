"""SmokeTestEndpointOperator: invoke through the runtime API and judge the answer.

moto's runtime returns canned answers (queued through its /moto-api), which is enough to drive
the real hook over HTTP; the emulator tests invoke a real model.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from sagemaker_ops.operators.sagemaker_runtime import SmokeTestEndpointOperator, SmokeTestFailed
from tests.operators.conftest import AwsTarget

PAYLOAD = "5.1,3.5,1.4,0.2\n6.4,3.2,4.5,1.5\n"


def queue_answer(target: AwsTarget, body: str, content_type: str = "application/json", variant: str = "AllTraffic"):
    answer = {"Body": body, "ContentType": content_type, "InvokedProductionVariant": variant, "CustomAttributes": ""}
    results = {"results": [answer]}
    request = urllib.request.Request(
        f"{target.url}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(results).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).close()


def smoke_test(target: AwsTarget, **overrides) -> dict:
    kwargs = {"task_id": "smoke_test", "endpoint_name": "iris", "payload": PAYLOAD, "aws_conn_id": target.conn_id}
    kwargs.update(overrides)
    return SmokeTestEndpointOperator(**kwargs).execute({})


def test_json_answer_containing_the_expected_labels_passes(moto: AwsTarget):
    queue_answer(moto, '["setosa", "versicolor"]')
    result = smoke_test(moto, expected_json=["setosa", "versicolor"])
    assert result == {
        "endpoint_name": "iris",
        "invoked_variant": "AllTraffic",
        "content_type": "application/json",
        "prediction": ["setosa", "versicolor"],
    }


def test_json_subset_ignores_extra_keys(moto: AwsTarget):
    queue_answer(moto, '{"labels": ["setosa"], "scores": [0.98]}')
    assert smoke_test(moto, expected_json={"labels": ["setosa"]})["prediction"]["scores"] == [0.98]


def test_wrong_json_answer_shows_expected_and_got(moto: AwsTarget):
    queue_answer(moto, '["setosa", "virginica"]')
    with pytest.raises(SmokeTestFailed) as raised:
        smoke_test(moto, expected_json=["setosa", "versicolor"])
    message = str(raised.value)
    assert "Smoke test of endpoint iris failed: [1]: expected 'versicolor', got 'virginica'" in message
    assert '(expected ["setosa", "versicolor"], got ["setosa", "virginica"])' in message


def test_non_json_answer_when_json_is_expected(moto: AwsTarget):
    queue_answer(moto, "setosa\n", "text/csv")
    with pytest.raises(SmokeTestFailed, match="expected a JSON answer containing .*got non-JSON 'setosa'"):
        smoke_test(moto, expected_json=["setosa"])


def test_exact_body_comparison_ignores_surrounding_whitespace(moto: AwsTarget):
    queue_answer(moto, "setosa\nversicolor\n", "text/csv")
    result = smoke_test(moto, accept="text/csv", expected_body="setosa\nversicolor")
    assert result["prediction"] == "setosa\nversicolor"


def test_wrong_body_shows_expected_and_got(moto: AwsTarget):
    queue_answer(moto, "virginica\n", "text/csv")
    with pytest.raises(SmokeTestFailed, match="expected body 'setosa', got 'virginica'"):
        smoke_test(moto, accept="text/csv", expected_body="setosa")


def test_without_expectations_any_answer_passes(moto: AwsTarget):
    queue_answer(moto, "anything", "text/plain")
    assert smoke_test(moto)["prediction"] == "anything"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"payload": ""}, "payload must be a non-empty str or bytes"),
        ({"endpoint_name": ""}, "endpoint_name must be a non-empty string"),
        ({"expected_body": "x", "expected_json": ["x"]}, "expected_body or expected_json, not both"),
    ],
)
def test_arguments_are_validated_in_execute(moto: AwsTarget, overrides: dict, message: str):
    with pytest.raises(ValueError, match=message):
        smoke_test(moto, **overrides)
