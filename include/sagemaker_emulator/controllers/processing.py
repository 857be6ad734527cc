"""Runs processing jobs as AWS does: inputs from S3 into the container's /opt/ml/processing paths, the
container as a real OS process, its output to CloudWatch Logs, its outputs back to S3 at the end.

The one container the emulator can run is Model Monitor's analyzer (``sagemaker-model-monitor-analyzer``):
it is our ``data_quality`` package, started as ``python -m data_quality`` with the environment AWS
passes. Container paths under /opt/ml are mapped into the job's own folder of the emulator's workdir.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.config import Settings
from sagemaker_emulator.s3_uri import parse_s3_uri
from sagemaker_emulator.sagemaker.monitoring_schedules import COMPLETED_WITH_VIOLATIONS
from sagemaker_emulator.sagemaker.processing import JobStatus, ProcessingJob

log = logging.getLogger(__name__)

ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
CONTAINER_ROOT = "/opt/ml"
# The container's environment: what a process needs to start, none of the emulator's own settings or credentials.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")


class JobFailed(Exception):
    """The job ends Failed with this FailureReason."""


class ProcessingController:
    """Implements ``processing.JobRunner`` for one region."""

    def __init__(self, settings: Settings, region: str, concurrency: int = 2):
        self.settings = settings
        self.region = region
        self._slots = asyncio.Semaphore(concurrency)  # 2 cores: more jobs at once only share them
        self._tasks: dict[str, asyncio.Task] = {}
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    def start(self, job: ProcessingJob) -> None:
        self._tasks[job.name] = asyncio.get_running_loop().create_task(self._run(job))

    def stop(self, job: ProcessingJob) -> None:
        process = self._processes.get(job.name)
        if process is not None and process.returncode is None:
            process.terminate()  # _run sees the Stopping status and ends the job Stopped
        elif job.name in self._tasks:
            self._tasks[job.name].cancel()
            job.finish(JobStatus.STOPPED)

    async def close(self) -> None:
        for process in self._processes.values():
            if process.returncode is None:
                process.kill()
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- one job ----------------------------------------------------------------------------------

    async def _run(self, job: ProcessingJob) -> None:
        folder = self.settings.workdir / "processing" / job.name
        logs = JobLogs(self.region, job.name)
        try:
            async with self._slots:
                job.started = job.modified = time.time()
                _require_analyzer(job.spec.app_specification.image_uri)
                await asyncio.to_thread(download_inputs, job, folder)
                code = await self._container(job, folder, logs)
                if job.status == JobStatus.STOPPING:
                    job.finish(JobStatus.STOPPED)
                elif code != 0:
                    raise JobFailed(f"AlgorithmError: {_failure_text(folder, logs)}")
                else:
                    await asyncio.to_thread(upload_outputs, job, folder)
                    await asyncio.to_thread(self._publish_metrics, job, folder)
                    job.finish(JobStatus.COMPLETED, exit_message=_exit_message(job, folder))
        except JobFailed as failure:
            job.finish(JobStatus.FAILED, failure_reason=str(failure)[:1024])
        except asyncio.CancelledError:
            job.finish(JobStatus.STOPPED)
            raise
        except Exception as error:  # an emulator fault must still end the job, visibly
            log.exception("processing job %s failed in the emulator", job.name)
            job.finish(JobStatus.FAILED, failure_reason=f"InternalServerError: {error}")
        finally:
            logs.flush()
            self._processes.pop(job.name, None)
            self._tasks.pop(job.name, None)
            shutil.rmtree(folder, ignore_errors=True)

    async def _container(self, job: ProcessingJob, folder: Path, logs: "JobLogs") -> int:
        root = folder / "root"
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update({k: map_container_path(root, v) for k, v in (job.spec.environment or {}).items()})
        env["metrics_path"] = str(root / "output/metrics/cloudwatch/data-quality-metrics.jsonl")
        env["failure_path"] = str(root / "output/failure")
        (root / "output").mkdir(parents=True, exist_ok=True)
        for output in job.spec.outputs:
            Path(map_container_path(root, output.s3_output.local_path)).mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "data_quality", env=env, cwd=str(folder),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._processes[job.name] = process
        runtime = job.spec.max_runtime_seconds
        limit = self.settings.scaled(runtime) if runtime else None
        try:
            await asyncio.wait_for(logs.follow(process.stdout), timeout=limit)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise JobFailed(f"ClientError: the job exceeded its MaxRuntimeInSeconds of {runtime} seconds and was "
                            "stopped.")
        return await process.wait()

    def _publish_metrics(self, job: ProcessingJob, folder: Path) -> None:
        """What the container wrote to /opt/ml/output/metrics/cloudwatch goes to CloudWatch (AWS does it for it)."""
        metrics_file = folder / "root/output/metrics/cloudwatch/data-quality-metrics.jsonl"
        if not metrics_file.exists():
            return
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for line in metrics_file.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                by_namespace.setdefault(entry.pop("Namespace"), []).append(_metric_datum(entry))
        for namespace, data in by_namespace.items():
            moto_bridge.put_metric_data(self.region, namespace, data)


def _require_analyzer(image: str) -> None:
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    if repository != ANALYZER_REPOSITORY:
        raise JobFailed(f"ClientError: the emulator runs only Model Monitor's analyzer image (repository "
                        f"{ANALYZER_REPOSITORY}); {image} cannot run here. Run other processing code as an Airflow "
                        "task instead.")


def map_container_path(root: Path, value: str) -> str:
    """``/opt/ml/...`` inside the container is ``<job>/root/...`` on this machine."""
    if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
        return str(root / value[len(CONTAINER_ROOT):].lstrip("/"))
    return value


def download_inputs(job: ProcessingJob, folder: Path) -> None:
    for item in job.spec.processing_inputs:
        if item.s3_input is None:
            raise JobFailed(f"ClientError: input {item.input_name} is not an S3Input; the emulator reads "
                            "processing inputs from S3 only.")
        source = item.s3_input
        target = Path(map_container_path(folder / "root", source.local_path))
        target.mkdir(parents=True, exist_ok=True)
        bucket, prefix = parse_s3_uri(source.s3_uri)
        try:
            keys = moto_bridge.list_keys(bucket, prefix)
        except moto_bridge.NoSuchBucket:
            raise JobFailed(f"ClientError: the bucket of input {item.input_name} ({source.s3_uri}) does not "
                            "exist.") from None
        if not keys:
            raise JobFailed(f"ClientError: no objects found under {source.s3_uri} (input {item.input_name}).")
        keep = job.input_filters.get(item.input_name, lambda key: True)
        for key in filter(keep, keys):
            body = moto_bridge.get_object(bucket, key)
            if body is None:
                continue  # deleted since it was listed
            destination = target.joinpath(*_relative_key(prefix, key).parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(body)


def _relative_key(prefix: str, key: str) -> PurePosixPath:
    """Where an object lands below LocalPath: its key after the prefix's folder, never outside it."""
    if key == prefix:
        relative = key.rsplit("/", 1)[-1]
    elif prefix.endswith("/") or key[len(prefix):].startswith("/"):
        relative = key[len(prefix):].lstrip("/")
    else:
        relative = key[len(prefix.rsplit("/", 1)[0]) + 1:] if "/" in prefix else key
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise JobFailed(f"ClientError: the S3 key {key!r} cannot be placed safely below the input's LocalPath.")
    return path


def upload_outputs(job: ProcessingJob, folder: Path) -> None:
    for output in job.spec.outputs:
        destination = output.s3_output
        local = Path(map_container_path(folder / "root", destination.local_path))
        bucket, prefix = parse_s3_uri(destination.s3_uri)
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}"
            moto_bridge.put_object(bucket, key, path.read_bytes())


def _exit_message(job: ProcessingJob, folder: Path) -> str | None:
    """Monitoring executions tell violations apart from a clean run through the job's ExitMessage."""
    if job.monitoring_schedule_arn is None:
        return None
    for output in job.spec.outputs:
        report = Path(map_container_path(folder / "root", output.s3_output.local_path)) / "constraint_violations.json"
        if report.exists():
            count = len(json.loads(report.read_text()).get("violations", []))
            if count:
                return f"{COMPLETED_WITH_VIOLATIONS}: Job completed successfully with {count} violations."
    return "Completed: Job completed successfully with no violations."


def _failure_text(folder: Path, logs: "JobLogs") -> str:
    failure = folder / "root/output/failure"
    if failure.exists() and failure.read_text().strip():
        return failure.read_text().strip()
    return " ".join(logs.tail(5)) or "the container exited with a non-zero code and no message"


def _metric_datum(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("MetricName", "Dimensions", "Value", "StatisticValues", "Unit", "Timestamp")
    return {"Unit": "None", "Dimensions": [], **{k: entry[k] for k in keys if k in entry}}


class JobLogs:
    """The container's output in CloudWatch Logs ``/aws/sagemaker/ProcessingJobs``, stream ``<job>/algo-1-<time>``."""

    def __init__(self, region: str, job_name: str):
        self.region = region
        self.stream = f"{job_name}/algo-1-{int(time.time())}"
        self._pending: list[dict[str, Any]] = []
        self._recent: list[str] = []

    async def follow(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self._pending.append({"timestamp": int(time.time() * 1000), "message": text})
            self._recent = (self._recent + [text])[-20:]
            if len(self._pending) >= 100:
                self.flush()

    def tail(self, count: int) -> list[str]:
        return self._recent[-count:]

    def flush(self) -> None:
        if not self._pending:
            return
        moto_bridge.put_log_events(self.region, LOG_GROUP, self.stream, self._pending)
        self._pending = []

