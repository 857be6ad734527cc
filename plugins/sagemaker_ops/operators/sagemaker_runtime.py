"""Operators that call a SageMaker endpoint (the runtime API): smoke tests, async smoke tests, traffic checks."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sagemaker_ops.hooks.s3 import S3OpsHook
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook
from sagemaker_ops.hooks.sagemaker_runtime import SageMakerRuntimeHook
from sagemaker_ops.operators.base import SageMakerOpsOperator, check_waiter_arguments, store_arguments
from sagemaker_ops.specs import check_resource_name, json_differences
from sagemaker_ops.traffic_split import TEST_DESCRIPTION, check_split
from sagemaker_ops.variant_weights import current_weights

if TYPE_CHECKING:
    from airflow.sdk import Context

# Keep XCom small: a smoke-test answer is a handful of labels, anything longer is cut.
MAX_PREDICTION_CHARS = 4096
MAX_SHOWN_CHARS = 500


class SmokeTestFailed(AirflowException):
    """The endpoint answered, but not what the smoke test expected."""


def _shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class _InvokeEndpointOperator(SageMakerOpsOperator[SageMakerRuntimeHook]):
    """
    Sends requests to an endpoint through the runtime API.

    :param endpoint_name: the endpoint to invoke.
    :param content_type: the request's Content-Type, e.g. ``text/csv``.
    :param accept: the response type asked for, e.g. ``application/json``.
    """

    aws_hook_class = SageMakerRuntimeHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "content_type", "accept")

    @store_arguments
    def __init__(self, *, endpoint_name: str, content_type: str = "text/csv", accept: str = "application/json",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)


class SmokeTestEndpointOperator(_InvokeEndpointOperator):
    """
    Invoke an endpoint with a sample payload and check the answer.

    Give ``expected_body`` to require the response body (stripped of surrounding whitespace) to
    equal it, or ``expected_json`` to require the JSON answer to contain it (dicts: every expected
    key, recursively; lists: same length, item by item; numbers by value). With neither, any
    successful answer passes. Returns ``{"endpoint_name", "invoked_variant", "content_type",
    "prediction"}``.

    :param payload: the request body (not templated: it is sent byte for byte).
    :param expected_body: the exact answer expected. Mutually exclusive with ``expected_json``.
    :param expected_json: a JSON value the answer must contain (None: no JSON check).
    :param target_variant: invoke this production variant instead of letting SageMaker pick.
    :param target_model: the model of a multi-model endpoint to invoke, e.g. ``sentiment_en.tar.gz``.
    :param target_container_hostname: the container of a Direct multi-container endpoint to invoke.
    ``endpoint_name``, ``content_type`` and ``accept`` are :class:`_InvokeEndpointOperator`'s.
    """

    template_fields: Sequence[str] = aws_template_fields(
        *_InvokeEndpointOperator.template_fields, "expected_body", "expected_json", "target_variant", "target_model",
        "target_container_hostname",
    )
    template_fields_renderers: ClassVar[dict] = {"expected_json": "json"}
    ui_color = "#b3e5fc"

    @store_arguments
    def __init__(
        self,
        *,
        payload: str | bytes,
        expected_body: str | None = None,
        expected_json: Any = None,
        target_variant: str | None = None,
        target_model: str | None = None,
        target_container_hostname: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        answer = self.hook.invoke_endpoint(
            self.endpoint_name,
            self.payload,
            content_type=self.content_type,
            accept=self.accept,
            target_variant=self.target_variant,
            target_model=self.target_model,
            target_container_hostname=self.target_container_hostname,
        )
        body = answer.body.decode("utf-8", errors="replace")
        target = self.target_model or self.target_container_hostname
        self.log.info(
            "Endpoint %s (variant %s%s) answered: %s", self.endpoint_name, answer.invoked_variant,
            f", target {target}" if target else "", _shorten(body)
        )
        prediction = self._check(body)
        result = {
            "endpoint_name": self.endpoint_name,
            "invoked_variant": answer.invoked_variant,
            "content_type": answer.content_type,
            "prediction": prediction,
        }
        if target:
            result["target"] = target
        return result

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


class AsyncSmokeTestEndpointOperator(SmokeTestEndpointOperator):
    """
    Smoke-test an asynchronous endpoint: put the payload in S3, InvokeEndpointAsync, wait for the answer.

    The payload is uploaded content-addressed (``<input_s3_uri>/<sha256>.<ext>``, so a re-run
    writes the same object), the endpoint is invoked with ``InputLocation``, and the S3 hook waits
    for an object at the ``OutputLocation`` or ``FailureLocation`` SageMaker returned, looking every
    ``waiter_delay`` seconds at most ``waiter_max_attempts`` times. An object at the failure
    location fails the task with its content; the answer at the output location is judged as :class:`SmokeTestEndpointOperator`
    judges a real-time answer (``expected_json`` / ``expected_body``).

    Returns ``{"endpoint_name", "inference_id", "input_location", "output_location", "prediction"}``.

    :param input_s3_uri: the S3 prefix the request payload is written under, e.g. ``s3://bucket/async-inputs``.
    :param waiter_delay: seconds between two looks at the output and failure locations.
    :param waiter_max_attempts: how many looks before giving up.
    The other parameters are :class:`SmokeTestEndpointOperator`'s (targets excepted: InvokeEndpointAsync
    has no targeted routing).
    """

    template_fields: Sequence[str] = (*SmokeTestEndpointOperator.template_fields, "input_s3_uri")

    @store_arguments
    def __init__(self, *, input_s3_uri: str, waiter_delay: int = 5, waiter_max_attempts: int = 60,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        s3 = S3OpsHook(**self._hook_parameters)
        input_location = self._upload_payload(s3)
        queued = self.hook.invoke_endpoint_async(
            self.endpoint_name, input_location, content_type=self.content_type, accept=self.accept
        )
        self.log.info("Endpoint %s queued inference %s; its answer goes to %s", self.endpoint_name,
                      queued.inference_id, queued.output_location)
        body = self._answer(s3, queued.output_location, queued.failure_location)
        self.log.info("Endpoint %s answered asynchronously: %s", self.endpoint_name, _shorten(body))
        return {
            "endpoint_name": self.endpoint_name,
            "inference_id": queued.inference_id,
            "input_location": input_location,
            "output_location": queued.output_location,
            "prediction": self._check(body),
        }

    def _validate(self) -> None:
        super()._validate()
        if self.target_variant or self.target_model or self.target_container_hostname:
            raise ValueError("InvokeEndpointAsync has no targeted routing: pass no target_* to an async smoke test.")
        if not isinstance(self.input_s3_uri, str) or not self.input_s3_uri.startswith("s3://") \
                or len(self.input_s3_uri.rstrip("/")) <= len("s3://"):
            raise ValueError(f"input_s3_uri must be an S3 URI like s3://bucket/prefix, got {self.input_s3_uri!r}.")
        check_waiter_arguments(self)

    def _upload_payload(self, s3: S3OpsHook) -> str:
        payload = self.payload.encode("utf-8") if isinstance(self.payload, str) else self.payload
        extension = {"text/csv": "csv", "application/json": "json"}.get(self.content_type.split(";")[0], "bin")
        location = f"{self.input_s3_uri.rstrip('/')}/{hashlib.sha256(payload).hexdigest()}.{extension}"
        s3.write_bytes(payload, location, self.content_type)
        return location

    def _answer(self, s3: S3OpsHook, output_location: str, failure_location: str | None) -> str:
        """The answer SageMaker wrote; fail with the error it wrote instead, or when it wrote nothing in time."""
        found = s3.wait_for_any([location for location in (failure_location, output_location) if location],
                                waiter_delay=self.waiter_delay, waiter_max_attempts=self.waiter_max_attempts)
        if found is None:
            raise SmokeTestFailed(
                f"Endpoint {self.endpoint_name} wrote no answer to {output_location} within "
                f"{self.waiter_max_attempts} looks {self.waiter_delay} s apart."
            )
        if found != output_location:
            raise SmokeTestFailed(
                f"Asynchronous inference on endpoint {self.endpoint_name} failed ({found}): "
                f"{_shorten(s3.read_text(found).strip())}"
            )
        return s3.read_text(output_location)


class TrafficSplitMismatch(AirflowFailException):
    """The observed split contradicts the weights (a retry would only re-draw the sample)."""


class TrafficSplitCheckOperator(_InvokeEndpointOperator):
    """
    Send real requests to an endpoint, count who served them, and test the split against the weights.

    Each of ``invocations`` InvokeEndpoint calls (no TargetVariant) is counted by its
    ``InvokedProductionVariant``. The counts are tested against the traffic shares that the
    endpoint's current variant weights imply (``weight / sum of weights``, read with
    DescribeEndpoint; or ``expected_weights``) with a two-sided exact binomial test per variant,
    Bonferroni-corrected: the task fails when any variant's p-value is below
    ``significance / number of variants``, so a correct router fails it with probability at most
    ``significance`` (see :mod:`sagemaker_ops.traffic_split`). The log shows the test, the
    threshold and a table of weights, expected and observed shares, counts and p-values.

    Returns ``{"endpoint_name", "invocations", "test", "significance", "threshold", "consistent",
    "counts", "weights", "expected_shares", "observed_shares", "p_values", "variants"}``.

    :param payload: the request body sent each time (not templated: sent byte for byte).
    :param payload_file: a file holding the request body, instead of ``payload`` (templated path).
    :param invocations: how many requests to send (each one a real invocation).
    :param significance: the family-wise significance level, e.g. 0.001.
    :param expected_weights: variant name to weight to test against; default: the endpoint's
        current weights.
    ``endpoint_name``, ``content_type`` and ``accept`` are :class:`_InvokeEndpointOperator`'s.
    """

    template_fields: Sequence[str] = aws_template_fields(
        *_InvokeEndpointOperator.template_fields, "payload_file", "invocations", "significance", "expected_weights"
    )
    template_fields_renderers: ClassVar[dict] = {"expected_weights": "json"}
    ui_color = "#d1c4e9"

    @store_arguments
    def __init__(
        self,
        *,
        payload: str | bytes | None = None,
        payload_file: str | None = None,
        invocations: int = 200,
        significance: float = 0.001,
        expected_weights: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        body = self._validated_body()
        weights = dict(self.expected_weights or self._current_weights())
        counts = self._count_invoked_variants(body)
        report = check_split(counts, weights, float(self.significance))
        self.log.info(
            "Traffic split of endpoint %s over %d invocations; %s; significance %g, so threshold %.3g:\n%s",
            self.endpoint_name, report.invocations, TEST_DESCRIPTION, report.significance, report.threshold,
            report.table(),
        )
        if not report.consistent:
            p_values = {v.variant: float(f"{v.p_value:.3g}") for v in report.variants}
            raise TrafficSplitMismatch(
                f"The traffic split of endpoint {self.endpoint_name} is inconsistent with weights {weights} at "
                f"significance {report.significance:g}: counts {dict(counts)}, p-values {p_values}."
            )
        return {"endpoint_name": self.endpoint_name, **report.to_dict()}

    def _validated_body(self) -> str | bytes:
        """Check the arguments; return the request body (``payload`` or the content of ``payload_file``)."""
        check_resource_name("endpoint_name", self.endpoint_name)
        if (self.payload is None) == (self.payload_file is None):
            raise ValueError("Pass payload or payload_file (exactly one).")
        body = self.payload
        if self.payload_file is not None:
            try:
                body = Path(self.payload_file).read_bytes()
            except OSError as error:
                raise ValueError(f"payload_file {self.payload_file!r} cannot be read: {error.strerror}.") from error
        if not isinstance(body, str | bytes) or not body:
            raise ValueError("The request body (payload or payload_file) must be non-empty str or bytes.")
        if not isinstance(self.invocations, int) or isinstance(self.invocations, bool) or self.invocations < 1:
            raise ValueError(f"invocations must be an integer >= 1, got {self.invocations!r}.")
        if not isinstance(self.significance, int | float) or not 0 < self.significance < 1:
            raise ValueError(f"significance must be a number between 0 and 1, got {self.significance!r}.")
        if self.expected_weights is not None and not isinstance(self.expected_weights, Mapping):
            raise TypeError(f"expected_weights must map variant names to weights, got {self.expected_weights!r}.")
        return body

    def _current_weights(self) -> dict[str, float]:
        endpoint = SageMakerOpsHook(**self._hook_parameters).describe_or_none("endpoint", self.endpoint_name)
        if endpoint is None or endpoint["EndpointStatus"] != "InService":
            status = endpoint["EndpointStatus"] if endpoint else "missing"
            raise AirflowException(f"Endpoint {self.endpoint_name} is {status}; the split is checked on an "
                                   "InService endpoint.")
        return current_weights(endpoint)

    def _count_invoked_variants(self, body: str | bytes) -> Counter:
        counts: Counter = Counter()
        for _ in range(self.invocations):
            answer = self.hook.invoke_endpoint(
                self.endpoint_name, body, content_type=self.content_type, accept=self.accept
            )
            counts[answer.invoked_variant or "<none>"] += 1
        return counts
