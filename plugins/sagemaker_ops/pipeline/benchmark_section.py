"""The ``benchmark:`` section: which configurations the release benchmarks, how, and what it needs.

::

    benchmark:
      engine: load_test                  # load_test (our Locust, seconds per candidate) | inference_recommender
      candidates:                        # 1-10 configurations, each benchmarked for real
        - instance_type: ml.c5.large     # instance_count: the count deployed if chosen (default: the variant's)
        - instance_type: ml.c5.xlarge
        - serverless: {memory_size_mb: 2048, max_concurrency: 5}
      traffic_shape: {kind: steps, start: 2, step: 6, count: 3, step_seconds: 2}   # load_test: users per step
      traffic:                           # inference_recommender: its TrafficPattern
        stairs: {duration_seconds: 120, steps: 3, users_per_step: 2}
        # or phases: [{initial_users: 1, spawn_rate: 1, duration_seconds: 120}]
      sla: {latency_ms: 100, percentile: P95}   # the latency every chosen configuration must meet
      max_invocations: 30000             # a stopping condition (per minute; optional)
      requirements:                      # the chapter's selection criteria (workload_selection)
        mode: online                     # online | batch
        payload_size_kb: 1               # default: the payload file's size
        max_processing_seconds: 1
        traffic_pattern: steady          # steady | variable | intermittent
        cold_start_tolerant: false
        expected_peak_rps: 50
        monthly_budget_usd: 500
      safety_factor: 0.5                 # autoscaling target = max RPS per instance x this x 60
      payload_file: ../data/iris_sample.csv   # default: the first smoke test's payload and content type
      report_s3_uri: s3://bucket/benchmarks/iris   # default: s3://<artifacts.bucket>/benchmarks/<name>

Checked before any AWS call, each problem naming its field: instance types from the catalog,
serverless memory sizes and concurrency as AWS allows them, Inference Recommender's ranges for
the traffic pattern, one production variant to apply the choice to, a safety factor in (0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_ops.pipeline.endpoint_section import SERVERLESS_MAX_CONCURRENCY, SERVERLESS_MEMORY_SIZES_MB
from sagemaker_ops.pipeline.fields import INSTANCE_TYPE_PATTERN, S3_URI, FieldReader, join
from sagemaker_ops.pipeline.models import EndpointConfig, SmokeTestConfig
from sagemaker_ops.workload_selection import TRAFFIC_PATTERNS, Requirements

ENGINES = ("load_test", "inference_recommender")
DEFAULT_TRAFFIC_SHAPE = {"kind": "steps", "start": 2, "step": 6, "count": 3, "step_seconds": 2}
FIELDS = {"engine", "traffic_shape", "candidates", "traffic", "sla", "max_invocations", "requirements",
          "safety_factor", "payload_file",
          "content_type", "report_s3_uri"}
REQUIREMENT_FIELDS = {"mode", "payload_size_kb", "max_processing_seconds", "traffic_pattern", "cold_start_tolerant",
                      "expected_peak_rps", "monthly_budget_usd"}
PERCENTILES = ("P95", "P99")  # what ModelLatencyThresholds accepts
# Inference Recommender's documented ranges (sagemaker-api.md §3.1).
PHASE_SECONDS, INITIAL_USERS, SPAWN_RATE, USERS_PER_STEP = (120, 3600), (1, 3), (0, 3), (1, 3)
MAX_CANDIDATES = 10


@dataclass(frozen=True)
class BenchmarkCandidate:
    """One configuration to benchmark: instances (``instance_count`` None: the variant's count) or serverless."""

    instance_type: str | None = None
    instance_count: int | None = None
    memory_size_mb: int | None = None
    max_concurrency: int | None = None

    def endpoint_configuration(self) -> dict[str, Any]:
        """As CreateInferenceRecommendationsJob's ``EndpointConfigurations`` takes it."""
        if self.instance_type:
            return {"InstanceType": self.instance_type}
        return {"ServerlessConfig": {"MemorySizeInMB": self.memory_size_mb, "MaxConcurrency": self.max_concurrency}}


@dataclass(frozen=True)
class BenchmarkConfig:
    engine: str
    traffic_shape: dict[str, Any]  # the load_test engine's (sagemaker_ops.load_test.plan)
    candidates: tuple[BenchmarkCandidate, ...]
    traffic_pattern: dict[str, Any]  # the API's TrafficPattern
    latency_sla_ms: float | None
    percentile: str
    requirements: Requirements
    safety_factor: float
    payload: str
    content_type: str
    report_s3_uri: str
    max_invocations: int | None = None
    variant_name: str = "AllTraffic"
    requirements_given: dict[str, Any] = field(default_factory=dict)

    def stopping_conditions(self) -> dict[str, Any]:
        conditions: dict[str, Any] = {"FlatInvocations": "Stop"}
        if self.latency_sla_ms is not None:
            conditions["ModelLatencyThresholds"] = [{"Percentile": self.percentile,
                                                     "ValueInMilliseconds": int(self.latency_sla_ms)}]
        if self.max_invocations is not None:
            conditions["MaxInvocations"] = self.max_invocations
        return conditions


def read_benchmark(fields: FieldReader, data: dict, endpoint: EndpointConfig | None,
                   smoke_tests: tuple[SmokeTestConfig, ...] | None, bucket: str, pipeline_name: str | None
                   ) -> BenchmarkConfig | None:
    fields.no_unknown_keys(data, "benchmark", FIELDS)
    engine = fields.choice(data, "benchmark", "engine", ENGINES, default="load_test")
    shape = _traffic_shape(fields, data)
    candidates = _candidates(fields, data)
    payload, content_type = _payload(fields, data, smoke_tests)
    sla = fields.mapping(data.get("sla"), "benchmark.sla")
    fields.no_unknown_keys(sla, "benchmark.sla", {"latency_ms", "percentile"})
    latency = fields.number(sla, "benchmark.sla", "latency_ms", minimum=1, default=None) \
        if sla.get("latency_ms") is not None else None
    percentile = fields.choice(sla, "benchmark.sla", "percentile", PERCENTILES, default="P95")
    safety = fields.number(data, "benchmark", "safety_factor", minimum=0.01, default=0.5)
    if safety is not None and safety > 1:
        fields.fail("benchmark.safety_factor", "must be at most 1 (a share of the measured capacity)", safety)
    requirements, given = _requirements(fields, data, len(payload.encode()), latency, percentile)
    variant = _single_variant(fields, endpoint)
    traffic = _traffic(fields, data)
    max_invocations = fields.integer(data, "benchmark", "max_invocations", minimum=1, maximum=30000, default=None)
    if fields.errors:
        return None
    return BenchmarkConfig(
        engine=engine, traffic_shape=shape, candidates=candidates, traffic_pattern=traffic,
        latency_sla_ms=latency,
        percentile=percentile, requirements=requirements, safety_factor=safety, payload=payload,
        content_type=content_type, max_invocations=max_invocations,
        report_s3_uri=(fields.string(data, "benchmark", "report_s3_uri", default=f"s3://{bucket}/benchmarks/"
                                     f"{pipeline_name}", **S3_URI) or "").rstrip("/"),
        variant_name=variant, requirements_given=given,
    )


def _traffic_shape(fields: FieldReader, data: dict) -> dict[str, Any]:
    from sagemaker_ops.load_test.plan import LoadTestPlanError, build_stages

    shape = fields.mapping(data.get("traffic_shape", DEFAULT_TRAFFIC_SHAPE), "benchmark.traffic_shape")
    try:
        build_stages(shape)
    except LoadTestPlanError as error:
        fields.fail("benchmark.traffic_shape", f"is invalid: {error}")
    return shape


def _candidates(fields: FieldReader, data: dict) -> tuple[BenchmarkCandidate, ...]:
    items = fields.item_list(data, "benchmark", "candidates", "configurations (instance_type or serverless)")
    if len(items) > MAX_CANDIDATES:
        fields.fail("benchmark.candidates", f"may list at most {MAX_CANDIDATES} configurations (an Inference "
                                            "Recommender job's limit)", len(items))
    candidates = []
    for index, item in enumerate(items):
        path = f"benchmark.candidates[{index}]"
        if not isinstance(item, Mapping) or ("instance_type" in item) == ("serverless" in item):
            fields.fail(path, "must be a mapping with instance_type (and instance_count) or serverless", item)
            continue
        item = dict(item)
        fields.no_unknown_keys(item, path, {"instance_type", "instance_count", "serverless"})
        if "instance_type" in item:
            candidates.append(BenchmarkCandidate(
                instance_type=fields.string(item, path, "instance_type", pattern=INSTANCE_TYPE_PATTERN,
                                            expectation="an instance type like ml.c5.large"),
                instance_count=fields.integer(item, path, "instance_count", minimum=1, default=None)))
            continue
        serverless = fields.mapping(item["serverless"], join(path, "serverless"), required=True)
        spath = join(path, "serverless")
        fields.no_unknown_keys(serverless, spath, {"memory_size_mb", "max_concurrency"})
        memory = serverless.get("memory_size_mb")
        if memory not in SERVERLESS_MEMORY_SIZES_MB:
            fields.fail(join(spath, "memory_size_mb"), f"must be one of {', '.join(map(str, SERVERLESS_MEMORY_SIZES_MB))}",
                        memory)
        candidates.append(BenchmarkCandidate(memory_size_mb=memory, max_concurrency=fields.integer(
            serverless, spath, "max_concurrency", minimum=1, maximum=SERVERLESS_MAX_CONCURRENCY)))
    _check_catalog(fields, candidates)
    fields.unique([str(c) for c in candidates], "benchmark.candidates", "configurations")
    return tuple(candidates)


def _check_catalog(fields: FieldReader, candidates: list[BenchmarkCandidate]) -> None:
    from sagemaker_rules.instance_catalog import UnknownInstanceType, instance_type

    for index, candidate in enumerate(candidates):
        if candidate.instance_type:
            try:
                instance_type(candidate.instance_type)
            except UnknownInstanceType as error:
                fields.fail(f"benchmark.candidates[{index}].instance_type", f"is unknown: {error}",
                            candidate.instance_type)


def _traffic(fields: FieldReader, data: dict) -> dict[str, Any]:
    """The TrafficPattern; default: stairs of 120 s (the shortest phase AWS accepts), 2 steps of 2 users."""
    traffic = fields.mapping(data.get("traffic"), "benchmark.traffic")
    fields.no_unknown_keys(traffic, "benchmark.traffic", {"stairs", "phases"})
    if "phases" in traffic:
        phases = []
        for index, phase in enumerate(fields.item_list(traffic, "benchmark.traffic", "phases", "phases")):
            path = f"benchmark.traffic.phases[{index}]"
            phase = fields.mapping(phase, path, required=True)
            fields.no_unknown_keys(phase, path, {"initial_users", "spawn_rate", "duration_seconds"})
            phases.append({"InitialNumberOfUsers": fields.integer(phase, path, "initial_users",
                                                                  minimum=INITIAL_USERS[0], maximum=INITIAL_USERS[1]),
                           "SpawnRate": fields.integer(phase, path, "spawn_rate", minimum=SPAWN_RATE[0],
                                                       maximum=SPAWN_RATE[1], default=1),
                           "DurationInSeconds": fields.integer(phase, path, "duration_seconds",
                                                               minimum=PHASE_SECONDS[0], maximum=PHASE_SECONDS[1])})
        return {"TrafficType": "PHASES", "Phases": phases}
    stairs = fields.mapping(traffic.get("stairs"), "benchmark.traffic.stairs")
    path = "benchmark.traffic.stairs"
    fields.no_unknown_keys(stairs, path, {"duration_seconds", "steps", "users_per_step"})
    return {"TrafficType": "STAIRS", "Stairs": {
        "DurationInSeconds": fields.integer(stairs, path, "duration_seconds", minimum=PHASE_SECONDS[0],
                                            maximum=PHASE_SECONDS[1], default=120),
        "NumberOfSteps": fields.integer(stairs, path, "steps", minimum=1, maximum=20, default=2),
        "UsersPerStep": fields.integer(stairs, path, "users_per_step", minimum=USERS_PER_STEP[0],
                                       maximum=USERS_PER_STEP[1], default=2)}}


def _payload(fields: FieldReader, data: dict, smoke_tests: tuple[SmokeTestConfig, ...] | None) -> tuple[str, str]:
    if "payload_file" in data:
        path = fields.file(data, "benchmark", "payload_file")
        content_type = fields.string(data, "benchmark", "content_type", default="text/csv")
        return (Path(path).read_text(encoding="utf-8") if path else ""), content_type
    if not smoke_tests:
        fields.fail("benchmark.payload_file", "is required when the pipeline has no smoke test to take it from")
        return "", "text/csv"
    first = smoke_tests[0]
    return first.payload, fields.string(data, "benchmark", "content_type", default=first.content_type)


def _requirements(fields: FieldReader, data: dict, payload_bytes: int, latency: float | None,
                  percentile: str | None) -> tuple[Requirements, dict[str, Any]]:
    path = "benchmark.requirements"
    given = fields.mapping(data.get("requirements"), path)
    fields.no_unknown_keys(given, path, REQUIREMENT_FIELDS)
    optional = {key: fields.number(given, path, key, minimum=0.001, default=None) if given.get(key) is not None
                else None for key in ("expected_peak_rps", "monthly_budget_usd")}
    size_kb = fields.number(given, path, "payload_size_kb", minimum=0.001, default=max(payload_bytes, 1) / 1024)
    requirements = Requirements(
        mode=fields.choice(given, path, "mode", ("online", "batch"), default="online"),
        payload_size_bytes=int((size_kb or 1) * 1024),
        max_processing_seconds=fields.number(given, path, "max_processing_seconds", minimum=0.001, default=1.0),
        latency_sla_ms=latency, latency_percentile=(percentile or "P95").lower(),
        traffic_pattern=fields.choice(given, path, "traffic_pattern", TRAFFIC_PATTERNS, default="steady"),
        cold_start_tolerant=fields.boolean(given, path, "cold_start_tolerant", default=False),
        expected_peak_rps=optional["expected_peak_rps"], monthly_budget_usd=optional["monthly_budget_usd"],
    )
    return requirements, given


def _single_variant(fields: FieldReader, endpoint: EndpointConfig | None) -> str:
    if endpoint is None:
        return "AllTraffic"
    if len(endpoint.variants) != 1:
        fields.fail("benchmark", "needs an endpoint with exactly one variant (the chosen configuration replaces "
                                 f"its instances), got {len(endpoint.variants)}")
    if endpoint.async_inference is not None:
        fields.fail("benchmark", "is for real-time and serverless endpoints (Inference Recommender loads "
                                 "synchronous endpoints); remove it or endpoint.async_inference")
    return endpoint.variants[0].name if endpoint.variants else "AllTraffic"
