"""Inference Recommender jobs: pure state and the API's rules. Running the load tests is the recommender
controller's work (controllers/recommender.py).

A job is planned at creation: its candidates (one BENCHMARK step each), the load steps its traffic
pattern gives (users per measurement window), and its stopping conditions. Describe, List, Stop, the
steps and GetScalingConfigurationRecommendation read what the runner measured; nothing here computes a
figure of its own beyond the API's arithmetic (CostPerInference, a scaling target).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sagemaker_emulator.sagemaker.errors import AwsError, ResourceNotFound, ValidationException
from sagemaker_emulator.sagemaker.listing import offset_page, page_results
from sagemaker_emulator.sagemaker.tags import tag_dict
from sagemaker_emulator.sagemaker.variants import require_cataloged
from sagemaker_rules.instance_catalog import instance_type


class JobStatus:
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


TERMINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED}
VARIANT_NAME = "AllTraffic"
# A Default job's candidates when ContainerConfig.SupportedInstanceTypes names none: a 2-vCPU and a
# 4-vCPU compute-optimised type and a 2-vCPU general-purpose one, all in the catalog. AWS picks from the
# model's metadata; the emulator has none to go by.
DEFAULT_INSTANCE_TYPES = ("ml.c5.large", "ml.c5.xlarge", "ml.m5.large")
DEFAULT_SERVERLESS = ({"MemorySizeInMB": 2048, "MaxConcurrency": 5}, {"MemorySizeInMB": 4096, "MaxConcurrency": 5})
# A job that gives no TrafficPattern: stairs of 60 s with 2 more users each (2, 4, 6, 8 users).
DEFAULT_STAIRS = {"DurationInSeconds": 60, "NumberOfSteps": 4, "UsersPerStep": 2}
MAX_TESTS = 10  # InferenceRecommendations holds at most 10 (botocore), as ResourceLimit allows
# Ranges AWS documents beside botocore's shapes (the API reference and the load-test guide).
MAX_JOB_SECONDS = 18_000
PHASE_SECONDS = (120, 3600)
INITIAL_USERS = (1, 3)
SPAWN_RATE = (0, 3)
MAX_INVOCATIONS = (1, 30_000)
DEFAULT_PERCENTILE = "P95"


class JobRunner(Protocol):
    """Implemented by the recommender controller: runs a job's load tests and reports back."""

    def start(self, job: "RecommendationJob") -> None: ...

    def stop(self, job: "RecommendationJob") -> None: ...


@dataclass(frozen=True)
class Candidate:
    """One endpoint configuration to load-test: an instance type or a serverless config, and the
    model environment of one combination of EnvironmentParameterRanges."""

    instance_type: str | None = None
    serverless: dict[str, int] | None = None
    environment: tuple[tuple[str, str], ...] = ()

    def model_configuration(self) -> dict[str, Any]:
        if not self.environment:
            return {}
        return {"EnvironmentParameters": [{"Key": k, "ValueType": "String", "Value": v} for k, v in self.environment]}

    def describe(self) -> str:
        kind = self.instance_type or f"serverless {self.serverless['MemorySizeInMB']} MB"
        return kind + "".join(f" {k}={v}" for k, v in self.environment)


@dataclass(frozen=True)
class LoadStep:
    """One measurement window: this many users for this many (AWS) seconds."""

    users: int
    seconds: float


@dataclass(frozen=True)
class StoppingRules:
    max_invocations: int | None = None  # per minute
    percentile: str = DEFAULT_PERCENTILE
    latency_threshold_ms: int | None = None
    stop_when_flat: bool = True


@dataclass(frozen=True)
class JobPlan:
    candidates: tuple[Candidate, ...]
    load: tuple[LoadStep, ...]
    stopping: StoppingRules
    payload_url: str
    content_type: str
    job_seconds: int | None  # JobDurationInSeconds, AWS seconds
    parallel: int = 1
    accept: str | None = None  # the first of SupportedResponseMIMETypes, sent as Accept


@dataclass
class BenchmarkStep:
    """One BENCHMARK step: a candidate's load test, and what it measured."""

    candidate: Candidate
    status: str = JobStatus.PENDING
    endpoint_name: str | None = None
    metrics: dict[str, Any] | None = None
    failure_reason: str | None = None
    started: float | None = None
    ended: float | None = None
    recommendation_id: str | None = None
    note: str | None = None  # what limited the measurement besides the candidate (the job's log says it)

    def endpoint_configuration(self) -> dict[str, Any]:
        out: dict[str, Any] = {"EndpointName": self.endpoint_name or "", "VariantName": VARIANT_NAME}
        if self.candidate.serverless is not None:
            out["ServerlessConfig"] = dict(self.candidate.serverless)
        else:
            out.update(InstanceType=self.candidate.instance_type, InitialInstanceCount=1)
        return out

    def benchmark(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ModelConfiguration": self.candidate.model_configuration()}
        if self.endpoint_name:
            out["EndpointConfiguration"] = self.endpoint_configuration()
        if self.metrics is not None:
            out["Metrics"] = dict(self.metrics)
            out["EndpointMetrics"] = {"MaxInvocations": self.metrics["MaxInvocations"],
                                      "ModelLatency": self.metrics["ModelLatency"]}
        optional = {"FailureReason": self.failure_reason, "InvocationStartTime": self.started,
                    "InvocationEndTime": self.ended}
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def recommendation(self) -> dict[str, Any]:
        return {"RecommendationId": self.recommendation_id, "Metrics": dict(self.metrics or {}),
                "EndpointConfiguration": self.endpoint_configuration(),
                "ModelConfiguration": self.candidate.model_configuration(),
                "InvocationStartTime": self.started, "InvocationEndTime": self.ended}


@dataclass
class RecommendationJob:
    name: str
    arn: str
    request: dict[str, Any]  # as the caller sent it, Tags aside: Describe echoes InputConfig and StoppingConditions
    plan: JobPlan
    model_name: str
    status: str = JobStatus.PENDING
    failure_reason: str | None = None
    steps: list[BenchmarkStep] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    completed: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def move_to(self, status: str, failure_reason: str | None = None) -> None:
        if self.status in TERMINAL:
            return  # a job stopped while its last step was ending keeps its first end
        self.status, self.modified = status, time.time()
        if failure_reason is not None:
            self.failure_reason = failure_reason[:1024]
        if status in TERMINAL:
            self.completed = self.modified

    def describe(self) -> dict[str, Any]:
        out = {key: self.request[key] for key in ("JobName", "JobDescription", "JobType", "RoleArn", "InputConfig",
                                                   "StoppingConditions") if key in self.request}
        out.update(JobArn=self.arn, Status=self.status, CreationTime=self.created, LastModifiedTime=self.modified)
        optional = {"CompletionTime": self.completed, "FailureReason": self.failure_reason}
        out.update({k: v for k, v in optional.items() if v is not None})
        recommendations = [s.recommendation() for s in self.steps if s.status == JobStatus.COMPLETED]
        if recommendations:
            out["InferenceRecommendations"] = recommendations
        return out

    def summary(self) -> dict[str, Any]:
        out = {"JobName": self.name, "JobDescription": self.request.get("JobDescription", ""),
               "JobType": self.request["JobType"], "JobArn": self.arn, "Status": self.status,
               "CreationTime": self.created, "RoleArn": self.request["RoleArn"], "LastModifiedTime": self.modified,
               "ModelName": self.model_name}
        payload = self.request["InputConfig"].get("ContainerConfig", {}).get("PayloadConfig", {})
        optional = {"CompletionTime": self.completed, "FailureReason": self.failure_reason,
                    "SamplePayloadUrl": payload.get("SamplePayloadUrl")}
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


class InferenceRecommendations:
    """The Inference Recommender API for one account and region."""

    def __init__(self, arn_for: Callable[[str, str], str], get_model: Callable[[str], Any], runner: JobRunner,
                 host_cores: int):
        self._arn_for = arn_for
        self._get_model = get_model
        self.runner = runner
        self.host_cores = host_cores
        self.jobs: dict[str, RecommendationJob] = {}

    def lookups(self) -> dict[str, Callable[[str], RecommendationJob]]:
        return {"inference-recommendations-job": self.get}

    def get(self, name: str) -> RecommendationJob:
        job = self.jobs.get(name.lower())
        if job is None:
            raise ResourceNotFound(f"Inference recommendations job {name} does not exist.")
        return job

    def create_inference_recommendations_job(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["JobName"]
        if name.lower() in self.jobs:
            raise AwsError("ResourceInUse", f"Inference recommendations job {name} already exists "
                                            f"({self._arn_for('inference-recommendations-job', name)}).")
        inputs = params["InputConfig"]
        model_name = inputs.get("ModelName")
        if not model_name:
            raise ValidationException("InputConfig must name the model to benchmark: give InputConfig.ModelName "
                                      "(ModelPackageVersionArn is not supported by the emulator).")
        self._get_model(model_name)  # "Could not find model ..." as CreateEndpointConfig says it
        plan = plan_job(params, self.host_cores)
        request = {k: v for k, v in params.items() if k != "Tags"}
        job = RecommendationJob(name=name, arn=self._arn_for("inference-recommendations-job", name), request=request,
                                plan=plan, model_name=model_name, steps=[BenchmarkStep(c) for c in plan.candidates],
                                tags=tag_dict(params.get("Tags")))
        self.jobs[name.lower()] = job
        self.runner.start(job)
        return {"JobArn": job.arn}

    def describe_inference_recommendations_job(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.get(params["JobName"]).describe()

    def list_inference_recommendations_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [j.summary() for j in self.jobs.values()]
        if params.get("ModelPackageVersionArnEquals"):
            rows = []  # no job of the emulator benchmarks a model package
        page, token = page_results(rows, params, "JobName",
                                   equal={"StatusEquals": "Status", "ModelNameEquals": "ModelName"})
        return {"InferenceRecommendationsJobs": page, **token}

    def stop_inference_recommendations_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.get(params["JobName"])
        if job.status in TERMINAL:
            raise ValidationException(f"Inference recommendations job {job.name} has already ended with status "
                                      f"{job.status}; only a PENDING or IN_PROGRESS job can be stopped.")
        if job.status != JobStatus.STOPPING:
            job.move_to(JobStatus.STOPPING)
            self.runner.stop(job)
        return {}

    def list_inference_recommendations_job_steps(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.get(params["JobName"])
        steps = [{"StepType": "BENCHMARK", "JobName": job.name, "Status": s.status, "InferenceBenchmark": s.benchmark()}
                 for s in job.steps if params.get("Status") in (None, s.status)]
        page, token = offset_page(steps, params.get("NextToken"), int(params.get("MaxResults") or 100))
        return {"Steps": page, **token}

    def get_scaling_configuration_recommendation(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.get(params["InferenceRecommendationsJobName"])
        if job.status != JobStatus.COMPLETED:
            raise ValidationException(f"Inference recommendations job {job.name} is {job.status}: scaling "
                                      "recommendations come from a COMPLETED job.")
        step = _recommended_step(job, params.get("RecommendationId"), params.get("EndpointName"))
        return scaling_recommendation(job.name, step, params)


def _recommended_step(job: RecommendationJob, recommendation_id: str | None, endpoint: str | None) -> BenchmarkStep:
    if bool(recommendation_id) == bool(endpoint):
        raise ValidationException("Specify either RecommendationId or EndpointName, exactly one of them.")
    for step in job.steps:
        if step.status == JobStatus.COMPLETED and (step.recommendation_id == recommendation_id
                                                   or (endpoint and step.endpoint_name == endpoint)):
            return step
    named = f"RecommendationId {recommendation_id}" if recommendation_id else f"EndpointName {endpoint}"
    raise ValidationException(f"{named} is not among the recommendations of job {job.name}.")


def scaling_recommendation(job_name: str, step: BenchmarkStep, params: dict[str, Any]) -> dict[str, Any]:
    """Target tracking on SageMakerVariantInvocationsPerInstance at the measured capacity of one instance
    times TargetCpuUtilizationPerCore (AWS's guidance: max RPS x safety factor x 60, the factor 0.5 by
    default), and on CPUUtilization at that utilisation of every vCPU."""
    if step.candidate.serverless is not None:
        raise ValidationException(f"Recommendation {step.recommendation_id} is a serverless endpoint: it scales "
                                  "by itself up to MaxConcurrency; instance autoscaling does not apply.")
    target_percent = int(params.get("TargetCpuUtilizationPerCore") or 50)
    per_instance = step.metrics["MaxInvocations"]  # one instance was load-tested
    target = per_instance * target_percent / 100
    vcpus = instance_type(step.candidate.instance_type).vcpus
    policies = [
        {"TargetTracking": {"MetricSpecification": {"Predefined": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}, "TargetValue": target}},
        {"TargetTracking": {"MetricSpecification": {"Customized": {
            "MetricName": "CPUUtilization", "Namespace": "/aws/sagemaker/Endpoints", "Statistic": "Average"}},
            "TargetValue": float(target_percent * vcpus)}},
    ]
    # Application Auto Scaling's default cooldowns for SageMaker variants (300 s each way).
    scaling: dict[str, Any] = {"ScaleInCooldown": 300, "ScaleOutCooldown": 300, "ScalingPolicies": policies}
    objective = params.get("ScalingPolicyObjective") or {}
    if target > 0 and objective.get("MinInvocationsPerMinute") is not None:
        scaling["MinCapacity"] = max(1, math.ceil(objective["MinInvocationsPerMinute"] / target))
    if target > 0 and objective.get("MaxInvocationsPerMinute") is not None:
        scaling["MaxCapacity"] = max(scaling.get("MinCapacity", 1),
                                     math.ceil(objective["MaxInvocationsPerMinute"] / target))
    out = {"InferenceRecommendationsJobName": job_name, "RecommendationId": step.recommendation_id,
           "EndpointName": step.endpoint_name, "TargetCpuUtilizationPerCore": target_percent,
           "Metric": {"InvocationsPerInstance": per_instance, "ModelLatency": step.metrics["ModelLatency"]},
           "DynamicScalingConfiguration": scaling}
    if objective:
        out["ScalingPolicyObjective"] = objective
    return out


# -- planning: the request's rules, then candidates, load and stopping conditions ---------------------

def plan_job(params: dict[str, Any], host_cores: int) -> JobPlan:
    inputs = params["InputConfig"]
    job_seconds = inputs.get("JobDurationInSeconds")
    _in_range("InputConfig.JobDurationInSeconds", job_seconds, (1, MAX_JOB_SECONDS))
    load = _load_steps(inputs.get("TrafficPattern"), job_seconds)
    candidates = _candidates(params["JobType"], inputs)
    limit = inputs.get("ResourceLimit") or {}
    _in_range("InputConfig.ResourceLimit.MaxNumberOfTests", limit.get("MaxNumberOfTests"), (1, MAX_TESTS))
    _in_range("InputConfig.ResourceLimit.MaxParallelOfTests", limit.get("MaxParallelOfTests"), (1, MAX_TESTS))
    candidates = candidates[:limit.get("MaxNumberOfTests") or MAX_TESTS]
    container = inputs.get("ContainerConfig") or {}
    payload = container.get("PayloadConfig") or {}
    if not payload.get("SamplePayloadUrl"):
        raise ValidationException("InputConfig.ContainerConfig.PayloadConfig.SamplePayloadUrl is required: the S3 URI "
                                  "of a .tar.gz of sample request bodies the load test sends.")
    if not payload["SamplePayloadUrl"].startswith("s3://"):
        raise ValidationException(f"SamplePayloadUrl {payload['SamplePayloadUrl']} must be an s3:// URI of a "
                                  ".tar.gz archive in the emulator's S3.")
    content_types = payload.get("SupportedContentTypes") or []
    if not content_types:
        raise ValidationException("InputConfig.ContainerConfig.PayloadConfig.SupportedContentTypes is required: the "
                                  "Content-Type the sample payloads are sent with, e.g. [\"application/json\"].")
    # Tests running side by side would share the host's cores and measure each other: at most one test
    # per two host cores runs at a time.
    parallel = min(limit.get("MaxParallelOfTests") or 1, max(1, host_cores // 2))
    return JobPlan(candidates=tuple(candidates), load=load, stopping=_stopping(params), job_seconds=job_seconds,
                   payload_url=payload["SamplePayloadUrl"], content_type=content_types[0], parallel=parallel,
                   accept=(container.get("SupportedResponseMIMETypes") or [None])[0])


def _in_range(path: str, value: int | None, bounds: tuple[int, int]) -> None:
    if value is not None and not bounds[0] <= value <= bounds[1]:
        raise ValidationException(f"{path} is {value}; it must be between {bounds[0]} and {bounds[1]}.")


def _load_steps(pattern: dict[str, Any] | None, job_seconds: int | None) -> tuple[LoadStep, ...]:
    pattern = pattern or {"TrafficType": "STAIRS", "Stairs": DEFAULT_STAIRS}
    kind = pattern.get("TrafficType") or ("STAIRS" if "Stairs" in pattern else "PHASES")
    if kind == "PHASES":
        steps = _phase_steps(pattern.get("Phases"))
    else:
        stairs = pattern.get("Stairs")
        if not stairs or any(stairs.get(k) is None for k in ("DurationInSeconds", "NumberOfSteps", "UsersPerStep")):
            raise ValidationException("TrafficPattern STAIRS needs Stairs with DurationInSeconds, NumberOfSteps and "
                                      "UsersPerStep.")
        steps = tuple(LoadStep(stairs["UsersPerStep"] * (index + 1), stairs["DurationInSeconds"])
                      for index in range(stairs["NumberOfSteps"]))
    total = sum(step.seconds for step in steps)
    if job_seconds is not None and total > job_seconds:
        raise ValidationException(f"The traffic pattern lasts {total:.0f} seconds per load test, more than "
                                  f"InputConfig.JobDurationInSeconds ({job_seconds}).")
    return steps


def _phase_steps(phases: list[dict[str, Any]] | None) -> tuple[LoadStep, ...]:
    """Each phase starts InitialNumberOfUsers users and spawns SpawnRate more every minute."""
    if not phases:
        raise ValidationException("TrafficPattern PHASES needs at least one phase in Phases.")
    steps = []
    for index, phase in enumerate(phases, start=1):
        where = f"InputConfig.TrafficPattern.Phases.{index}"
        for member, bounds in (("InitialNumberOfUsers", INITIAL_USERS), ("SpawnRate", SPAWN_RATE),
                               ("DurationInSeconds", PHASE_SECONDS)):
            if phase.get(member) is None:
                raise ValidationException(f"{where}.{member} is required.")
            _in_range(f"{where}.{member}", phase[member], bounds)
        remaining, users = phase["DurationInSeconds"], phase["InitialNumberOfUsers"]
        while remaining > 0:
            steps.append(LoadStep(users, min(60, remaining)))
            remaining -= 60
            users += phase["SpawnRate"]
    return tuple(steps)


def _candidates(job_type: str, inputs: dict[str, Any]) -> list[Candidate]:
    configurations = inputs.get("EndpointConfigurations")
    if not configurations:
        configurations = _default_configurations(inputs.get("ContainerConfig") or {})
    candidates = []
    for index, configuration in enumerate(configurations, start=1):
        where = f"InputConfig.EndpointConfigurations.{index}"
        if bool(configuration.get("InstanceType")) == bool(configuration.get("ServerlessConfig")):
            raise ValidationException(f"{where} must give either InstanceType or ServerlessConfig, exactly one.")
        if configuration.get("InstanceType"):
            require_cataloged(configuration["InstanceType"], where)
        serverless = configuration.get("ServerlessConfig")
        if serverless and serverless["MemorySizeInMB"] % 1024:
            raise ValidationException(f"{where}.ServerlessConfig.MemorySizeInMB must be one of 1024, 2048, 3072, "
                                      f"4096, 5120 or 6144; got {serverless['MemorySizeInMB']}.")
        for environment in _environments(configuration.get("EnvironmentParameterRanges"), where):
            candidates.append(Candidate(configuration.get("InstanceType"), serverless, environment))
    if len(candidates) > MAX_TESTS:
        raise ValidationException(f"The endpoint configurations and their environment parameter ranges make "
                                  f"{len(candidates)} load tests; a job runs at most {MAX_TESTS}.")
    return candidates


def _default_configurations(container: dict[str, Any]) -> list[dict[str, Any]]:
    if container.get("SupportedEndpointType") == "Serverless":
        return [{"ServerlessConfig": dict(config)} for config in DEFAULT_SERVERLESS]
    return [{"InstanceType": name} for name in container.get("SupportedInstanceTypes") or DEFAULT_INSTANCE_TYPES]


def _environments(ranges: dict[str, Any] | None, where: str) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of the categorical parameters' values (one load test each)."""
    parameters = (ranges or {}).get("CategoricalParameterRanges") or []
    names = [p["Name"] for p in parameters]
    if len(names) != len(set(names)):
        raise ValidationException(f"{where}.EnvironmentParameterRanges names a parameter twice: {names}.")
    return [tuple(zip(names, values)) for values in itertools.product(*(p["Value"] for p in parameters))]


def _stopping(params: dict[str, Any]) -> StoppingRules:
    conditions = params.get("StoppingConditions") or {}
    _in_range("StoppingConditions.MaxInvocations", conditions.get("MaxInvocations"), MAX_INVOCATIONS)
    thresholds = conditions.get("ModelLatencyThresholds") or []
    percentile, threshold = DEFAULT_PERCENTILE, None
    if thresholds:
        percentile, threshold = thresholds[0].get("Percentile"), thresholds[0].get("ValueInMilliseconds")
        allowed = ("P95",) if params["JobType"] == "Advanced" else ("P95", "P99")
        if percentile not in allowed:
            raise ValidationException(f"StoppingConditions.ModelLatencyThresholds.1.Percentile is {percentile!r}; "
                                      f"{params['JobType']} jobs accept {' or '.join(allowed)}.")
        if threshold is None or threshold < 1:
            raise ValidationException("StoppingConditions.ModelLatencyThresholds.1.ValueInMilliseconds must be a "
                                      "positive number of milliseconds.")
    return StoppingRules(max_invocations=conditions.get("MaxInvocations"), percentile=percentile,
                         latency_threshold_ms=threshold,
                         stop_when_flat=conditions.get("FlatInvocations", "Stop") == "Stop")
