"""Runs Inference Recommender jobs: for each candidate, a temporary endpoint of real workers, a load test
by the job's traffic pattern, the metrics AWS reports, and the endpoint torn down.

Every candidate's model, endpoint config and endpoint are created through the SageMaker backend, as a
user's would be, so the same workers, router and metrics serve them; they are deleted when the load test
ends, is stopped or fails, and when creating them fails. Candidates run one after another unless
MaxParallelOfTests allows more and the host has the cores (recommendations.plan_job).

Time scale: the traffic pattern's DurationInSeconds and JobDurationInSeconds are AWS seconds and run
divided by the emulator's time scale (a 120 s stair lasts 6 s at 20x). Throughput is never scaled: a
window's invocations per minute are its answered requests per real second times 60.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.config import Settings
from sagemaker_emulator.controllers.load_test import LoadTest, Window, chosen_window, stop_reason
from sagemaker_emulator.runtime.archive import extract_model_archive
from sagemaker_emulator.runtime.instance_health import proportional_set_bytes
from sagemaker_emulator.runtime.router import Router
from sagemaker_emulator.s3_uri import parse_s3_uri
from sagemaker_emulator.sagemaker.errors import AwsError
from sagemaker_emulator.sagemaker.models import SageMakerBackend, Status
from sagemaker_emulator.sagemaker.recommendations import (VARIANT_NAME, BenchmarkStep, JobStatus, RecommendationJob)
from sagemaker_emulator.sagemaker.typed_requests import CreateEndpointRequest, EndpointConfigSpec, ModelSpec
from sagemaker_rules.instance_catalog import instance_type

log = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/InferenceRecommendationsJobs"
METRIC_NAMESPACE = "/aws/sagemaker/InferenceRecommendationsJobs"
POLL_SECONDS = 0.05
TEARDOWN_SECONDS = 120.0  # a temporary endpoint's workers get this long to stop (real seconds)
MAX_PAYLOAD_FILES = 100


class StepFailed(Exception):
    """The step ends FAILED with this FailureReason."""


class RecommenderController:
    """Implements ``recommendations.JobRunner`` for one region."""

    def __init__(self, settings: Settings, router: Router, backend: SageMakerBackend):
        self.settings = settings
        self.router = router
        self.backend = backend
        self.region = backend.region
        self._tasks: dict[str, asyncio.Task] = {}
        self._stops: dict[str, asyncio.Event] = {}

    def start(self, job: RecommendationJob) -> None:
        self._stops[job.name] = asyncio.Event()
        self._tasks[job.name] = asyncio.get_running_loop().create_task(self._run(job))

    def stop(self, job: RecommendationJob) -> None:
        self._stops[job.name].set()  # the running steps end their load tests and tear down

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- one job ----------------------------------------------------------------------------------

    async def _run(self, job: RecommendationJob) -> None:
        logs = JobLog(self.region, job.name)
        stopped = self._stops[job.name]
        try:
            if job.status == JobStatus.PENDING:  # not stopped before it began
                job.move_to(JobStatus.IN_PROGRESS)
            payloads = await asyncio.to_thread(load_payloads, job.plan.payload_url)
            logs.write(f"Job {job.name}: {len(job.steps)} load tests, {len(payloads)} sample payloads, "
                       f"{len(job.plan.load)} traffic windows each, time scale {self.settings.time_scale:g}.")
            deadline = (time.monotonic() + self.settings.scaled(job.plan.job_seconds)
                        if job.plan.job_seconds else None)
            slots = asyncio.Semaphore(job.plan.parallel)
            await asyncio.gather(*(self._step(job, index, step, payloads, slots, deadline, logs)
                                   for index, step in enumerate(job.steps, start=1)))
            self._finish(job, stopped.is_set())
        except StepFailed as failure:
            job.move_to(JobStatus.FAILED, str(failure))
        except asyncio.CancelledError:
            job.move_to(JobStatus.STOPPED)
            raise
        except Exception as error:  # an emulator fault must still end the job, visibly
            log.exception("inference recommendations job %s failed in the emulator", job.name)
            job.move_to(JobStatus.FAILED, f"InternalServerError: {type(error).__name__}: {error}")
        finally:
            for step in job.steps:  # steps the job never ran end with it
                if step.status in (JobStatus.PENDING, JobStatus.IN_PROGRESS):
                    failed = job.status == JobStatus.FAILED
                    step.status = JobStatus.FAILED if failed else JobStatus.STOPPED
                    step.failure_reason = job.failure_reason if failed else None
            ending = f": {job.failure_reason}" if job.failure_reason else "."
            logs.write(f"Job {job.name} ended {job.status}{ending}")
            logs.flush()
            self._tasks.pop(job.name, None)

    @staticmethod
    def _finish(job: RecommendationJob, stopped: bool) -> None:
        if stopped:
            job.move_to(JobStatus.STOPPED)
        elif any(s.status == JobStatus.COMPLETED for s in job.steps):
            job.move_to(JobStatus.COMPLETED)
        else:
            reasons = "; ".join(f"{s.candidate.describe()}: {s.failure_reason}" for s in job.steps)
            job.move_to(JobStatus.FAILED, f"All {len(job.steps)} load tests failed. {reasons}")

    async def _step(self, job: RecommendationJob, index: int, step: BenchmarkStep, payloads: list[bytes],
                    slots: asyncio.Semaphore, deadline: float | None, logs: "JobLog") -> None:
        stopped = self._stops[job.name]
        async with slots:
            if stopped.is_set():
                step.status = JobStatus.STOPPED
                return
            if deadline is not None and time.monotonic() >= deadline:
                step.status, step.failure_reason = JobStatus.FAILED, (
                    f"The job reached its JobDurationInSeconds ({job.plan.job_seconds}) before this load test began.")
                return
            step.status = JobStatus.IN_PROGRESS
            names = temporary_names(job.name, index)
            step.endpoint_name = names["endpoint"]
            try:
                await self._create_endpoint(job, step, names, stopped)
                if not stopped.is_set():
                    await self._measure(job, step, payloads, stopped, deadline, logs)
            except (StepFailed, AwsError) as failure:
                reason = failure.message if isinstance(failure, AwsError) else str(failure)
                step.status, step.failure_reason = JobStatus.FAILED, reason
                logs.write(f"Load test {index} ({step.candidate.describe()}) failed: {reason}")
            except Exception as error:  # an emulator fault fails this step, visibly; the others go on
                log.exception("load test %s of job %s failed in the emulator", index, job.name)
                step.status = JobStatus.FAILED
                step.failure_reason = f"InternalServerError: {type(error).__name__}: {error}"
            finally:
                await self._teardown(names)
                if step.status == JobStatus.IN_PROGRESS:
                    step.status = JobStatus.STOPPED

    # -- the temporary endpoint -------------------------------------------------------------------

    async def _create_endpoint(self, job: RecommendationJob, step: BenchmarkStep, names: dict[str, str],
                               stopped: asyncio.Event) -> None:
        model = self.backend.get_model(job.model_name).spec.to_aws()
        environment = dict(step.candidate.environment)
        for container in filter(None, [model.get("PrimaryContainer"), *(model.get("Containers") or ())]):
            container["Environment"] = {**(container.get("Environment") or {}), **environment}
        model["ModelName"] = names["model"]
        self.backend.create_model(ModelSpec.from_aws(model))
        variant: dict[str, Any] = {"VariantName": VARIANT_NAME, "ModelName": names["model"]}
        if step.candidate.serverless is not None:
            variant["ServerlessConfig"] = dict(step.candidate.serverless)
        else:
            variant.update(InstanceType=step.candidate.instance_type, InitialInstanceCount=1)
        self.backend.create_endpoint_config(EndpointConfigSpec.from_aws(
            {"EndpointConfigName": names["config"], "ProductionVariants": [variant]}))
        self.backend.create_endpoint(CreateEndpointRequest.from_aws(
            {"EndpointName": names["endpoint"], "EndpointConfigName": names["config"]}))
        while not stopped.is_set():
            endpoint = self.backend.endpoints.get(names["endpoint"].lower())
            if endpoint is None or endpoint.status == Status.FAILED:
                reason = endpoint.failure_reason if endpoint else "the endpoint disappeared"
                raise StepFailed(f"The endpoint for this load test could not be created: {reason}")
            if endpoint.status == Status.IN_SERVICE:
                return
            await asyncio.sleep(POLL_SECONDS)

    async def _teardown(self, names: dict[str, str]) -> None:
        """Delete the endpoint (its workers stop), its config and its model, whatever state they are in."""
        try:
            endpoint = self.backend.endpoints.get(names["endpoint"].lower())
            if endpoint is not None:
                self.backend.delete_endpoint({"EndpointName": names["endpoint"]})
                give_up = time.monotonic() + TEARDOWN_SECONDS
                while self.backend.endpoints.get(names["endpoint"].lower()) is endpoint \
                        and endpoint.status == Status.DELETING and time.monotonic() < give_up:
                    await asyncio.sleep(POLL_SECONDS)
            if names["config"].lower() in self.backend.endpoint_configs:
                self.backend.delete_endpoint_config({"EndpointConfigName": names["config"]})
            if names["model"].lower() in self.backend.models:
                self.backend.delete_model({"ModelName": names["model"]})
        except Exception:  # noqa: BLE001 - say what was left behind, never hide it
            log.exception("could not remove the temporary endpoint %s", names["endpoint"])

    # -- the load test ----------------------------------------------------------------------------

    async def _measure(self, job: RecommendationJob, step: BenchmarkStep, payloads: list[bytes],
                       stopped: asyncio.Event, deadline: float | None, logs: "JobLog") -> None:
        endpoint = step.endpoint_name
        headers = {"Content-Type": job.plan.content_type, **({"Accept": job.plan.accept} if job.plan.accept else {})}

        async def invoke(body: bytes) -> None:
            await self.router.invoke(self.region, endpoint, headers, body)

        setup_ms = await self._model_setup_ms(step, invoke, payloads[0])
        test = LoadTest(invoke, payloads, lambda: self._serving_pids(endpoint),
                        lambda pids: sum(proportional_set_bytes(p) for p in pids))
        windows: list[Window] = []
        reason = None
        step.started = time.time()
        try:
            for load in job.plan.load:
                seconds = self.settings.scaled(load.seconds)
                if deadline is not None:
                    seconds = min(seconds, deadline - time.monotonic())
                if seconds <= 0 or stopped.is_set():
                    break
                windows.append(await test.run_window(load.users, seconds, stopped))
                await self._publish(job.name, endpoint, windows[-1])
                logs.write(_window_line(step, windows[-1], job.plan.stopping.percentile))
                reason = stop_reason(windows, job.plan.stopping)
                if reason:
                    break
        finally:
            await test.close()
            step.ended = time.time()
        if stopped.is_set():
            return
        self._record(job, step, windows, reason, setup_ms, test.first_error, logs)

    def _record(self, job: RecommendationJob, step: BenchmarkStep, windows: list[Window], reason: str | None,
                setup_ms: int | None, first_error: str | None, logs: "JobLog") -> None:
        if not windows or not any(w.latencies_ms for w in windows):
            raise StepFailed("No invocation of the load test succeeded"
                             + (f": {first_error}" if first_error else " before the job's time ran out."))
        window = chosen_window(windows, job.plan.stopping, reason)
        step.metrics = benchmark_metrics(step, window, job.plan.stopping.percentile, setup_ms)
        step.note = host_limit_note(step, window, os.cpu_count() or 1)
        step.status, step.recommendation_id = JobStatus.COMPLETED, str(uuid.uuid4())
        logs.write(f"Load test of {step.candidate.describe()} ended ({reason or 'traffic pattern done'}): "
                   f"{step.metrics}" + (f". Note: {step.note}" if step.note else ""))

    async def _model_setup_ms(self, step: BenchmarkStep, invoke, body: bytes) -> int | None:
        """A serverless candidate's cold start: the first invocation with no worker warm, less a warm one."""
        routes = self.router.routes.get((self.region, step.endpoint_name.lower()))
        if step.candidate.serverless is None or routes is None or routes.fleets[VARIANT_NAME].ready:
            return None
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            await invoke(body)
            timings.append(time.perf_counter() - started)
        return max(0, round((timings[0] - timings[1]) * 1000))

    def _serving_pids(self, endpoint: str) -> list[int]:
        routes = self.router.routes.get((self.region, endpoint.lower()))
        if routes is None:
            return []
        return [pid for instance in routes.fleets[VARIANT_NAME].ready for pid in instance.pids]

    async def _publish(self, job_name: str, endpoint: str, window: Window) -> None:
        """The IR job's CloudWatch metrics (/aws/sagemaker/InferenceRecommendationsJobs) for one window."""
        dimensions = [{"Name": "JobName", "Value": job_name}, {"Name": "EndpointName", "Value": endpoint}]
        latencies = window.latencies_ms
        data = [{"MetricName": "ClientInvocations", "Value": float(len(latencies)), "Unit": "Count"},
                {"MetricName": "ClientInvocationErrors", "Value": float(window.errors), "Unit": "Count"},
                {"MetricName": "NumberOfUsers", "Value": float(window.users), "Unit": "Count"}]
        if latencies:
            data.append({"MetricName": "ClientLatency", "Unit": "Milliseconds", "StatisticValues": {
                "SampleCount": float(len(latencies)), "Sum": sum(latencies), "Minimum": min(latencies),
                "Maximum": max(latencies)}})
        for datum in data:
            datum["Dimensions"] = dimensions
        try:
            await asyncio.to_thread(moto_bridge.put_metric_data, self.region, METRIC_NAMESPACE, data)
        except Exception:  # noqa: BLE001 - metrics are a view; the load test goes on
            log.exception("could not publish the load test metrics of %s", endpoint)


def benchmark_metrics(step: BenchmarkStep, window: Window, percentile: str, setup_ms: int | None) -> dict[str, Any]:
    """RecommendationMetrics as AWS reports them, read at one measured window (one instance)."""
    max_invocations = int(window.invocations_per_minute)
    metrics: dict[str, Any] = {"MaxInvocations": max_invocations,
                               "ModelLatency": round(window.latency_ms(percentile))}
    if step.candidate.instance_type:
        catalogued = instance_type(step.candidate.instance_type)
        metrics["CostPerHour"] = catalogued.price_per_hour_usd
        if max_invocations > 0:
            metrics["CostPerInference"] = catalogued.price_per_hour_usd / (max_invocations * 60)
        metrics["CpuUtilization"] = round(100 * window.cpu_seconds / (window.seconds * catalogued.vcpus), 2)
        memory_mib = catalogued.memory_mib
    else:
        memory_mib = step.candidate.serverless["MemorySizeInMB"]
    metrics["MemoryUtilization"] = round(100 * window.memory_bytes / (memory_mib * 1024 * 1024), 2)
    if setup_ms is not None:
        metrics["ModelSetupTime"] = setup_ms
    return metrics


def host_limit_note(step: BenchmarkStep, window: Window, host_cores: int) -> str | None:
    """Says when this machine, not the candidate, may have bounded the measurement."""
    notes = []
    if step.candidate.instance_type:
        vcpus = instance_type(step.candidate.instance_type).vcpus
        if vcpus > host_cores:
            notes.append(f"{step.candidate.instance_type} has {vcpus} vCPUs but this host has {host_cores} cores: "
                         f"its {vcpus} serving processes shared {host_cores} cores, so the host, not the instance "
                         "type, may have limited MaxInvocations")
    busy = window.emulator_cpu_seconds / window.seconds if window.seconds else 0.0
    if busy > 0.9:
        notes.append(f"the emulator's own process (router and load generator) was busy {busy:.0%} of a core, so "
                     "it may have limited MaxInvocations")
    return "; ".join(notes) or None


def _window_line(step: BenchmarkStep, window: Window, percentile: str) -> str:
    return (f"{step.endpoint_name}: {window.users} users, {window.seconds:.2f} s: "
            f"{window.invocations_per_minute:.0f} invocations/min, {percentile} "
            f"{window.latency_ms(percentile):.1f} ms, {window.errors} errors")


def temporary_names(job_name: str, index: int) -> dict[str, str]:
    """Names of a load test's model, config and endpoint: the job's, its test's number and a random tag."""
    stem = f"{job_name[:48].rstrip('-')}-{index}-{secrets.token_hex(3)}"
    return {"model": stem, "config": stem, "endpoint": stem}


def load_payloads(url: str) -> list[bytes]:
    """The sample payloads: every regular file of the SamplePayloadUrl tar.gz, in name order, extracted by
    the same safe extraction as model archives (no links, no paths outside, a size cap)."""
    bucket, key = parse_s3_uri(url)
    try:
        archive = moto_bridge.get_object(bucket, key)
    except moto_bridge.NoSuchBucket:
        archive = None
    if archive is None:
        raise StepFailed(f"ClientError: the sample payload archive {url} does not exist.")
    with tempfile.TemporaryDirectory(prefix="ir-payload-") as folder:
        path = Path(folder) / "payload.tar.gz"
        path.write_bytes(archive)
        try:
            extract_model_archive(path, Path(folder) / "files")
        except Exception as error:  # noqa: BLE001 - InvalidArchiveError, UnsafeArchiveError: the user's to fix
            raise StepFailed(f"ClientError: the sample payload archive {url} could not be extracted: {error}") from None
        files = sorted(p for p in (Path(folder) / "files").rglob("*") if p.is_file())[:MAX_PAYLOAD_FILES]
        payloads = [p.read_bytes() for p in files]
    if not payloads:
        raise StepFailed(f"ClientError: the sample payload archive {url} holds no files.")
    return payloads


class JobLog:
    """The job's log in CloudWatch Logs ``/aws/sagemaker/InferenceRecommendationsJobs``, stream ``<job>``."""

    def __init__(self, region: str, job_name: str):
        self.region = region
        self.stream = job_name
        self._pending: list[dict[str, Any]] = []

    def write(self, message: str) -> None:
        log.info("%s", message)
        self._pending.append({"timestamp": int(time.time() * 1000), "message": message})
        self.flush()  # a line per window: progress shows while the job runs

    def flush(self) -> None:
        if self._pending:
            try:
                moto_bridge.put_log_events(self.region, LOG_GROUP, self.stream, self._pending)
            except Exception:  # noqa: BLE001 - the log is a view; the job's result stands
                log.exception("could not write the log of job %s", self.stream)
            self._pending = []
