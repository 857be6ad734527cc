"""LoadTestOperator: load an endpoint with Locust, in its own process, and store what was measured in S3."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from sagemaker_ops.hooks.s3 import S3OpsHook
from sagemaker_ops.hooks.sagemaker_runtime import SageMakerRuntimeHook
from sagemaker_ops.load_test.plan import MODELS, LoadTestPlan, LoadTestPlanError, build_stages
from sagemaker_ops.operators.base import SageMakerOpsOperator, check_positive, store_arguments
from sagemaker_ops.specs import check_resource_name

if TYPE_CHECKING:
    from airflow.sdk import Context

GENERATOR_BUSY_SHARE = 0.8  # the Locust process is one gevent loop: near a whole core it limits what it measures


class LoadTestOperator(SageMakerOpsOperator[SageMakerRuntimeHook]):
    """
    Load an endpoint (here or on AWS) with Locust following a traffic shape; write the result to S3.

    Locust runs as its own process (:mod:`sagemaker_ops.load_test.locustfile`), its progress lines
    streamed into this task's log; every request is signed with SigV4 with the connection's
    credentials, which reach that process through its environment only. ``model`` picks how load
    is generated: ``users`` (closed: Locust users in a loop, like Inference Recommender's), 
    ``arrival_rate`` (open: requests due on a fixed timeline, latency from the intended send time,
    late and unsent requests counted) or ``async`` (InvokeEndpointAsync; latency = time to the
    result in S3). A request after an idle period counts as ``after_idle`` (a serverless cold start).

    The result document (totals, one entry per stage of the shape, the capacity: the stage with the
    highest throughput that served) is written to ``result_s3_uri``. Returns ``{"endpoint_name",
    "result_s3_uri", "throughput_rps", "max_rps", "latency_ms" (at capacity), "errors", "late",
    "unsent", "after_idle_requests"}``.

    :param endpoint_name: the endpoint to load.
    :param payload: the request body.
    :param traffic_shape: ``{"kind": constant|ramp|steps|spike, ...}`` (see :mod:`sagemaker_ops.load_test.plan`);
        values are users (``users``, ``async``) or requests per second (``arrival_rate``).
    :param result_s3_uri: where the result JSON goes (an object URI).
    :param model: ``users``, ``arrival_rate`` or ``async``.
    :param content_type: the requests' Content-Type.
    :param accept: the Accept header.
    :param target_variant: send every request to this production variant.
    :param max_in_flight: ``arrival_rate``: at most this many requests in flight (connections).
    :param late_after_ms: ``arrival_rate``: a request sent later than this after its due time is late.
    :param idle_seconds: a request after this long with nothing in flight is counted as after idle.
    :param async_input_s3_uri: ``async``: where the payload is uploaded for InvokeEndpointAsync.
    :param max_error_rate: fail the task when more than this share of the requests failed (None: never).
    """

    aws_hook_class = SageMakerRuntimeHook
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "payload", "traffic_shape", "result_s3_uri", "target_variant", "async_input_s3_uri")
    template_fields_renderers: ClassVar[dict] = {"traffic_shape": "json"}
    ui_color = "#ffe0b2"

    @store_arguments
    def __init__(self, *, endpoint_name: str, payload: str, traffic_shape: dict[str, Any], result_s3_uri: str,
                 model: str = "users", content_type: str = "text/csv", accept: str = "application/json",
                 target_variant: str | None = None, max_in_flight: int = 64, late_after_ms: float = 10.0,
                 idle_seconds: float = 5.0, async_input_s3_uri: str | None = None,
                 max_error_rate: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from sagemaker_ops.load_test.runner import credentials_environment, run_load_test

        plan = self._plan()
        s3 = S3OpsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)
        if self.model == "async":
            s3.write_bytes(self.payload.encode(), self.async_input_s3_uri, self.content_type)
        result = run_load_test(plan, credentials_environment(self.hook.get_credentials()), self.log)
        s3.write_json(result, self.result_s3_uri)
        self._log_steps(result)
        return self._summary(result)

    def _plan(self) -> LoadTestPlan:
        check_resource_name("endpoint_name", self.endpoint_name)
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}.")
        if not isinstance(self.traffic_shape, dict):
            raise ValueError(f"traffic_shape must be a mapping with a kind, got {self.traffic_shape!r}.")
        check_positive("max_in_flight", self.max_in_flight)
        if self.model == "async" and not self.async_input_s3_uri:
            raise ValueError("async_input_s3_uri is required with model='async' (InvokeEndpointAsync reads the "
                             "request from S3).")
        try:
            stages = build_stages(self.traffic_shape)
        except LoadTestPlanError as error:
            raise ValueError(str(error)) from None
        runtime = self.hook.conn
        s3_endpoint = S3OpsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).conn.meta.endpoint_url
        return LoadTestPlan(
            runtime_url=runtime.meta.endpoint_url, region=runtime.meta.region_name, endpoint_name=self.endpoint_name,
            payload=self.payload, content_type=self.content_type, accept=self.accept, model=self.model,
            stages=stages, target_variant=self.target_variant, max_in_flight=self.max_in_flight,
            late_after_ms=self.late_after_ms, idle_seconds=self.idle_seconds,
            async_input_location=self.async_input_s3_uri, extra={"s3_endpoint_url": s3_endpoint},
        )

    def _log_steps(self, result: dict[str, Any]) -> None:
        self.log.info("%-14s %8s %9s %9s %9s %9s %7s", "stage", "value", "req/s", "p50 ms", "p99 ms", "requests",
                      "errors")
        for step in result["steps"]:
            latency = step["latency_ms"]
            self.log.info("%-14s %8g %9.1f %9.1f %9.1f %9d %7d", step["name"], step["value"], step["throughput_rps"],
                          latency.get("p50", 0), latency.get("p99", 0), step["requests"], step["errors"])
        generator = result.get("generator", {})
        if generator.get("cpu_share_of_a_core", 0) > GENERATOR_BUSY_SHARE:
            self.log.warning("The load generator used %.0f%% of a core: it, not the endpoint, may have limited the "
                             "throughput measured.", 100 * generator["cpu_share_of_a_core"])
        totals = result["totals"]
        self.log.info("Late: %d, unsent: %d, unfinished: %d, after idle: %d; status codes %s; result in %s",
                      totals["late"], totals["unsent"], totals["unfinished"], result["after_idle"]["requests"],
                      json.dumps(totals["status_codes"]), self.result_s3_uri)

    def _summary(self, result: dict[str, Any]) -> dict[str, Any]:
        totals, capacity = result["totals"], result["capacity"] or {}
        if self.max_error_rate is not None and totals["requests"]:
            rate = totals["errors"] / totals["requests"]
            if rate > self.max_error_rate:
                raise RuntimeError(f"{totals['errors']} of {totals['requests']} requests to {self.endpoint_name} "
                                   f"failed ({rate:.1%} > max_error_rate {self.max_error_rate:.1%}); e.g. "
                                   f"{totals['error_samples'][:2]}")
        return {
            "endpoint_name": self.endpoint_name, "result_s3_uri": self.result_s3_uri,
            "throughput_rps": totals["throughput_rps"], "max_rps": capacity.get("throughput_rps", 0.0),
            "latency_ms": capacity.get("latency_ms", {}), "errors": totals["errors"], "late": totals["late"],
            "unsent": totals["unsent"], "after_idle_requests": result["after_idle"]["requests"],
        }
