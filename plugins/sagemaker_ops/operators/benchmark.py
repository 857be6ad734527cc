"""BenchmarkCandidatesOperator: each candidate configuration on a temporary endpoint, loaded by Locust, torn down."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from sagemaker_ops.hooks.s3 import S3OpsHook
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook
from sagemaker_ops.hooks.sagemaker_runtime import SageMakerRuntimeHook
from sagemaker_ops.load_test.plan import LoadTestPlan, build_stages
from sagemaker_ops.operators.base import WaitingOperator, check_waiter_arguments, store_arguments
from sagemaker_ops.pipeline.benchmark_section import DEFAULT_TRAFFIC_SHAPE
from sagemaker_ops.specs import aws_tags, check_resource_name

if TYPE_CHECKING:
    from airflow.sdk import Context

VARIANT = "AllTraffic"


def candidate_name(candidate: dict[str, Any]) -> str:
    """``ml.c5.large x1`` or ``serverless 2048MB x5`` (as the report and the reasons call it)."""
    if candidate.get("instance_type"):
        return f"{candidate['instance_type']} x{candidate.get('instance_count') or 1}"
    return f"serverless {candidate['memory_size_mb']}MB x{candidate['max_concurrency']}"


def production_variant(candidate: dict[str, Any], model_name: str, variant_name: str = VARIANT) -> dict[str, Any]:
    """The candidate as a CreateEndpointConfig ProductionVariant."""
    if candidate.get("instance_type"):
        return {"VariantName": variant_name, "ModelName": model_name, "InstanceType": candidate["instance_type"],
                "InitialInstanceCount": candidate.get("instance_count") or 1, "InitialVariantWeight": 1.0}
    return {"VariantName": variant_name, "ModelName": model_name, "InitialVariantWeight": 1.0,
            "ServerlessConfig": {"MemorySizeInMB": candidate["memory_size_mb"],
                                 "MaxConcurrency": candidate["max_concurrency"]}}


def measured(candidate: dict[str, Any], result: dict[str, Any], result_s3_uri: str) -> dict[str, Any]:
    """What the report and the selection read of one candidate's load test: capacity (the step with the
    highest throughput that served), latency there, cost from the instance catalog (or the serverless
    price per GB-second and the measured mean latency), the per-step curve."""
    from sagemaker_rules.instance_catalog import instance_type
    from sagemaker_rules.serverless_pricing import serverless_cost_per_inference

    capacity = result["capacity"] or {"throughput_rps": 0.0, "latency_ms": {}}
    totals, rps = result["totals"], capacity["throughput_rps"]
    cost_per_hour = cost_per_inference = None
    if candidate.get("instance_type"):
        cost_per_hour = instance_type(candidate["instance_type"]).price_per_hour_usd * (candidate.get("instance_count")
                                                                                         or 1)
        cost_per_inference = cost_per_hour / (rps * 3600) if rps else None
    elif capacity["latency_ms"]:
        cost_per_inference = serverless_cost_per_inference(candidate["memory_size_mb"],
                                                           capacity["latency_ms"]["mean"] / 1000)
    after_idle = result["after_idle"]["latency_ms"]
    return {
        "name": candidate_name(candidate), "kind": "instance" if candidate.get("instance_type") else "serverless",
        "instance_type": candidate.get("instance_type"), "instance_count": candidate.get("instance_count") or 1,
        "memory_size_mb": candidate.get("memory_size_mb"), "max_concurrency": candidate.get("max_concurrency"),
        "max_rps": rps, "latency_ms": capacity["latency_ms"],
        "error_rate": totals["errors"] / totals["requests"] if totals["requests"] else 1.0,
        "cost_per_hour": cost_per_hour, "cost_per_inference": cost_per_inference,
        "cold_start_ms": after_idle.get("max") if candidate.get("memory_size_mb") else None,
        "steps": [{"name": s["name"], "users": s["value"], "throughput_rps": s["throughput_rps"],
                   "latency_ms": s["latency_ms"], "errors": s["errors"]} for s in result["steps"]],
        "result_s3_uri": result_s3_uri, "generator_cpu_share": result.get("generator", {}).get("cpu_share_of_a_core"),
    }


class BenchmarkCandidatesOperator(WaitingOperator[SageMakerOpsHook]):
    """
    Benchmark candidate configurations of a model: for each, a temporary endpoint config and endpoint
    (``<name_prefix>-<n>``), a Locust load test following ``traffic_shape`` (closed model: users per
    step), then both deleted, also when the test fails. A retry first deletes what an earlier try left.

    Each load test's result goes to ``<result_s3_prefix>/<n>.json`` and the summary to
    ``<result_s3_prefix>/candidates.json``; when that summary exists (the same prefix, e.g. the same model
    version, was benchmarked before) it is returned without measuring again. Returns ``{"candidates": [...]}``:
    per candidate its name, kind, capacity (``max_rps``), latency there, error rate, cost per hour and per
    inference, cold start (serverless) and per-step curve (see :func:`measured`).

    :param model_name: the SageMaker model every candidate serves.
    :param candidates: ``{"instance_type", "instance_count"}`` or ``{"memory_size_mb", "max_concurrency"}`` each.
    :param payload: the request body.
    :param result_s3_prefix: where the results go.
    :param name_prefix: the temporary endpoints' and configs' names (a number is appended).
    :param traffic_shape: the load test's shape (values are users).
    :param content_type: the requests' Content-Type.
    :param accept: the Accept header.
    :param tags: tags for the temporary resources.
    """

    aws_hook_class = SageMakerOpsHook
    template_fields: Sequence[str] = aws_template_fields("model_name", "candidates", "payload", "result_s3_prefix",
                                                         "name_prefix")
    template_fields_renderers: ClassVar[dict] = {"candidates": "json"}
    ui_color = "#ffe0b2"

    @store_arguments
    def __init__(self, *, model_name: str, candidates: Sequence[dict[str, Any]], payload: str, result_s3_prefix: str,
                 name_prefix: str, traffic_shape: dict[str, Any] | None = None, content_type: str = "text/csv",
                 accept: str = "application/json", tags: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from sagemaker_ops.load_test.runner import credentials_environment, run_load_test

        check_resource_name("model_name", self.model_name)
        check_resource_name("name_prefix", f"{self.name_prefix}-{len(self.candidates)}")
        check_waiter_arguments(self)
        stages = build_stages(self.traffic_shape or DEFAULT_TRAFFIC_SHAPE)
        runtime = SageMakerRuntimeHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)
        credentials = runtime.get_credentials()
        s3 = S3OpsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)
        summary_uri = f"{self.result_s3_prefix.rstrip('/')}/candidates.json"
        earlier = s3.read_json_or_none(summary_uri)
        if earlier is not None:
            self.log.info("Already benchmarked (%s): reusing those measurements.", summary_uri)
            return {**earlier, "reused": True}
        results = []
        for number, candidate in enumerate(self.candidates, 1):
            name = f"{self.name_prefix}-{number}"
            self.log.info("Benchmark %d/%d: %s on temporary endpoint %s", number, len(self.candidates),
                          candidate_name(candidate), name)
            self._remove(name)  # what an earlier try may have left
            try:
                self._deploy(name, candidate)
                plan = LoadTestPlan(runtime_url=runtime.conn.meta.endpoint_url, region=runtime.conn.meta.region_name,
                                    endpoint_name=name, payload=self.payload, content_type=self.content_type,
                                    accept=self.accept, model="users", stages=stages)
                result = run_load_test(plan, credentials_environment(credentials), self.log)
            finally:
                self._remove(name)
            uri = f"{self.result_s3_prefix.rstrip('/')}/{number}.json"
            s3.write_json({**result, "candidate": candidate}, uri)
            results.append(measured(candidate, result, uri))
            self.log.info("%s: %.1f req/s at capacity, latency %s ms", results[-1]["name"], results[-1]["max_rps"],
                          results[-1]["latency_ms"])
        s3.write_json({"candidates": results}, summary_uri)
        return {"candidates": results, "reused": False}

    def _deploy(self, name: str, candidate: dict[str, Any]) -> None:
        sagemaker = self.hook.conn
        tags = {"Tags": aws_tags(self.tags)} if self.tags else {}
        sagemaker.create_endpoint_config(EndpointConfigName=name,
                                         ProductionVariants=[production_variant(candidate, self.model_name)], **tags)
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, **tags)
        self.hook.wait_with_logging("EndpointSettled", {"EndpointName": name}, f"endpoint {name}",
                                    ["EndpointStatus", "FailureReason"], self.waiter_delay, self.waiter_max_attempts)

    def _remove(self, name: str) -> None:
        """Delete the temporary endpoint and config if they exist (nothing is left behind)."""
        if self.hook.describe_or_none("endpoint", name) is not None:
            self.hook.delete_endpoint(name)
            self.hook.wait_with_logging("EndpointDeletionComplete", {"EndpointName": name}, f"endpoint {name}",
                                        ["EndpointStatus"], self.waiter_delay, self.waiter_max_attempts)
        if self.hook.describe_or_none("endpoint_config", name) is not None:
            self.hook.conn.delete_endpoint_config(EndpointConfigName=name)
