"""Operators that call a SageMaker endpoint (the runtime API)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowException
from sagemaker_ops.hooks.sagemaker_runtime import SageMakerRuntimeHook
from sagemaker_ops.specs import json_differences

if TYPE_CHECKING:
    from airflow.sdk import Context

# Keep XCom small: a smoke-test answer is a handful of labels, anything longer is cut.
MAX_PREDICTION_CHARS = 4096
MAX_SHOWN_CHARS = 500


class SmokeTestFailed(AirflowException):
    """The endpoint answered, but not what the smoke test expected."""


def _shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class SmokeTestEndpointOperator(AwsBaseOperator[SageMakerRuntimeHook]):
    """
    Invoke an endpoint with a sample payload and check the answer.

    Give ``expected_body`` to require the response body (stripped of surrounding whitespace) to
    equal it, or ``expected_json`` to require the JSON answer to contain it (dicts: every expected
    key, recursively; lists: same length, item by item; numbers by value). With neither, any
    successful answer passes. Returns ``{"endpoint_name", "invoked_variant", "content_type",
    "prediction"}``.

    :param endpoint_name: the endpoint to invoke.
    :param payload: the request body (not templated: it is sent byte for byte).
    :param content_type: the request's Content-Type, e.g. ``text/csv``.
    :param accept: the response type asked for, e.g. ``application/json``.
    :param expected_body: the exact answer expected. Mutually exclusive with ``expected_json``.
    :param expected_json: a JSON value the answer must contain (None: no JSON check).
    :param target_variant: invoke this production variant instead of letting SageMaker pick.
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: AWS region name.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    aws_hook_class = SageMakerRuntimeHook
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "content_type", "accept", "expected_body", "expected_json", "target_variant"
    )
    template_fields_renderers: ClassVar[dict] = {"expected_json": "json"}
    ui_color = "#b3e5fc"

    def __init__(
        self,
        *,
        endpoint_name: str,
        payload: str | bytes,
        content_type: str = "text/csv",
        accept: str = "application/json",
        expected_body: str | None = None,
        expected_json: Any = None,
        target_variant: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)  # lets downstream tasks use .output["<key>"]
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.payload = payload
        self.content_type = content_type
        self.accept = accept
        self.expected_body = expected_body
        self.expected_json = expected_json
        self.target_variant = target_variant

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        answer = self.hook.invoke_endpoint(
            self.endpoint_name,
            self.payload,
            content_type=self.content_type,
            accept=self.accept,
            target_variant=self.target_variant,
        )
        body = answer.body.decode("utf-8", errors="replace")
        self.log.info(
            "Endpoint %s (variant %s) answered: %s", self.endpoint_name, answer.invoked_variant, _shorten(body)
        )
        prediction = self._check(body)
        return {
            "endpoint_name": self.endpoint_name,
            "invoked_variant": answer.invoked_variant,
            "content_type": answer.content_type,
            "prediction": prediction,
        }

    def _validate(self) -> None:
        if not isinstance(self.endpoint_name, str) or not self.endpoint_name:
            raise ValueError(f"endpoint_name must be a non-empty string, got {self.endpoint_name!r}.")
        if not isinstance(self.payload, str | bytes) or not self.payload:
            raise ValueError("payload must be a non-empty str or bytes (the request body to send).")
        if self.expected_body is not None and self.expected_json is not None:
            raise ValueError("Pass expected_body or expected_json, not both.")
        if self.expected_body is not None and not isinstance(self.expected_body, str):
            raise TypeError(f"expected_body must be a string, got {type(self.expected_body).__name__}.")

    def _check(self, body: str) -> Any:
        """Compare the answer with what is expected; return the prediction to publish."""
        if self.expected_body is not None:
            if body.strip() != self.expected_body.strip():
                raise SmokeTestFailed(
                    f"Smoke test of endpoint {self.endpoint_name} failed: expected body "
                    f"{_shorten(self.expected_body.strip())!r}, got {_shorten(body.strip())!r}."
                )
            return _shorten(body.strip(), MAX_PREDICTION_CHARS)
        parsed = self._parse_json(body)
        if self.expected_json is not None:
            differences = json_differences(self.expected_json, parsed)
            if differences:
                raise SmokeTestFailed(
                    f"Smoke test of endpoint {self.endpoint_name} failed: {'; '.join(differences)} "
                    f"(expected {_shorten(json.dumps(self.expected_json))}, got {_shorten(body.strip())})."
                )
        if isinstance(parsed, str) or len(json.dumps(parsed)) > MAX_PREDICTION_CHARS:
            return _shorten(body.strip(), MAX_PREDICTION_CHARS)
        return parsed

    def _parse_json(self, body: str) -> Any:
        try:
            return json.loads(body)
        except ValueError as error:
            if self.expected_json is None:
                return body.strip()  # no JSON expected: any answer passes, published as text
            raise SmokeTestFailed(
                f"Smoke test of endpoint {self.endpoint_name} failed: expected a JSON answer containing "
                f"{_shorten(json.dumps(self.expected_json))}, got non-JSON {_shorten(body.strip())!r} ({error})."
            ) from error
