"""The release DAG's ``benchmark`` task group, for a pipeline with a ``benchmark:`` section.

``benchmark.benchmark_candidates`` measures every candidate for real (``engine: load_test``: each on a
temporary endpoint under Locust; ``engine: inference_recommender``: one Advanced Inference Recommender
job), then ``benchmark.choose_configuration`` runs the chapter's selection over the section's
requirements and what was measured, writes the report (HTML and JSON) and returns, among others:

* ``production_variants``: the endpoint's variant with the chosen configuration, what
  ``ensure_endpoint_config`` deploys;
* ``autoscaling_target`` (XCom key of ``benchmark.choose_configuration``): measured requests per second
  per instance x ``safety_factor`` x 60, i.e. SageMakerVariantInvocationsPerInstance per minute (AWS's
  guidance), what ``apply_scaling`` takes as ``target_value``; None when the choice is serverless.
"""

from __future__ import annotations

import dataclasses
import io
import tarfile
from typing import Any

from airflow.sdk import TaskGroup, task
from sagemaker_ops.pipeline.models import PipelineConfig

DEPLOYABLE = {"real-time", "serverless"}
XCOM_AUTOSCALING_TARGET = "autoscaling_target"
CHOOSE_TASK_ID = "benchmark.choose_configuration"


def benchmark_tasks(pipeline: PipelineConfig, model_name: object) -> tuple[TaskGroup, Any] | None:
    """The group, and its choice task (``.output["production_variants"]``, ``.output["autoscaling_target"]``);
    None without a ``benchmark:`` section."""
    config = pipeline.benchmark
    if config is None:
        return None
    with TaskGroup("benchmark", tooltip="benchmark the candidates, choose one") as group:
        measured = _measure(pipeline, model_name)
        choice = choose_configuration(measured, _settings(pipeline), model_name)
    return group, choice


def _measure(pipeline: PipelineConfig, model_name: object) -> Any:
    config, waiter = pipeline.benchmark, pipeline.endpoint.waiter
    candidates = [dataclasses.asdict(c) for c in config.candidates]
    waits = {"waiter_delay": min(waiter.delay_seconds, 2),
             "waiter_max_attempts": max(1, waiter.max_attempts * waiter.delay_seconds // 2)}
    # One benchmark per model version: a re-run of the release reuses it, so the choice (and the endpoint
    # config and scaling target that follow from it) stays the same and the release converges.
    model = "{{ ti.xcom_pull(task_ids='ensure_model', key='model_name') }}"
    if config.engine == "inference_recommender":
        from sagemaker_ops.operators.inference_recommender import InferenceRecommenderOperator

        payload_url = upload_sample_payload(config.payload, f"{config.report_s3_uri}/{model}/payload.tar.gz")
        return InferenceRecommenderOperator(
            task_id="benchmark_candidates", job_name=f"{model}-bench",
            model_name=model_name, role_arn=pipeline.model.role_arn, sample_payload_url=payload_url,
            content_types=[config.content_type], endpoint_configurations=[c.endpoint_configuration()
                                                                          for c in config.candidates],
            latency_sla_ms=config.latency_sla_ms, traffic_pattern=config.traffic_pattern,
            stopping_conditions=config.stopping_conditions(), tags=pipeline.aws_tags,
            deferrable=waiter.deferrable, **waits).output
    from sagemaker_ops.operators.benchmark import BenchmarkCandidatesOperator

    return BenchmarkCandidatesOperator(
        task_id="benchmark_candidates", model_name=model_name, candidates=candidates, payload=config.payload,
        content_type=config.content_type, traffic_shape=config.traffic_shape,
        result_s3_prefix=f"{config.report_s3_uri}/{model}", name_prefix=f"{pipeline.name}-bench",
        tags=pipeline.aws_tags, **waits).output


@task
def upload_sample_payload(payload: str, uri: str) -> str:
    """Inference Recommender's sample payloads: a tar.gz of request files in S3."""
    from sagemaker_ops.hooks.s3 import S3OpsHook

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = payload.encode()
        info = tarfile.TarInfo("payload-1")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    S3OpsHook().write_bytes(buffer.getvalue(), uri, "application/gzip")
    return uri


def _settings(pipeline: PipelineConfig) -> dict[str, Any]:
    """What the choice needs of the pipeline file, as JSON for the task's arguments."""
    from sagemaker_ops.operators.sagemaker_resources import production_variant_request

    config = pipeline.benchmark
    return {"pipeline": pipeline.name, "requirements": dataclasses.asdict(config.requirements),
            "latency_sla_ms": config.latency_sla_ms, "percentile": config.percentile,
            "safety_factor": config.safety_factor, "report_s3_uri": config.report_s3_uri,
            "variant": production_variant_request(pipeline.endpoint.variants[0]),
            "candidate_counts": {f"{c.instance_type} x{c.instance_count or 1}": c.instance_count
                                 for c in config.candidates if c.instance_type}}


@task(multiple_outputs=True)
def choose_configuration(measured: dict[str, Any], settings: dict[str, Any], model_name: str, dag_run=None) -> dict:
    """The chapter's selection over what was measured; the report; the variant to deploy and the scaling target.

    A run triggered with ``{"scaling_target": "pipeline"}`` keeps the ``scaling:`` section's own
    target_value (e.g. a demo of the chapter's target of 10 invocations per instance); the default,
    ``"benchmark"``, sets it from the measured capacity."""
    import logging

    from sagemaker_ops.operators.load_test import GENERATOR_BUSY_SHARE
    from sagemaker_ops.workload_selection import MeasuredCandidate, Requirements, select_workload

    log = logging.getLogger("airflow.task")
    fields = {f.name for f in dataclasses.fields(MeasuredCandidate)}
    candidates = [MeasuredCandidate(**{k: v for k, v in c.items() if k in fields}) for c in measured["candidates"]]
    selection = select_workload(Requirements(**settings["requirements"]), candidates)
    for candidate in measured["candidates"]:  # the generator must not be what limited a measured capacity
        if (candidate.get("generator_cpu_share") or 0) > GENERATOR_BUSY_SHARE:
            selection.reasons.append(f"Note: measuring {candidate['name']}, the load generator used "
                                     f"{candidate['generator_cpu_share']:.0%} of a core: it may have limited that "
                                     "capacity, not the endpoint.")
    selection.reasons.extend(host_limit_notes(candidates, _endpoint_url()))
    for reason in selection.reasons:
        log.info("%s", reason)
    if selection.option not in DEPLOYABLE or selection.candidate is None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"The selection recommends {selection.option}, which this release does not "
                                   "deploy (it deploys real-time or serverless endpoints): "
                                   + " ".join(selection.reasons))
    chosen = next(c for c in candidates if c.name == selection.candidate)
    target, source = None, ((dag_run.conf if dag_run is not None else None) or {}).get("scaling_target", "benchmark")
    if source not in ("benchmark", "pipeline"):
        raise ValueError(f"The run's conf scaling_target must be benchmark or pipeline, got {source!r}.")
    if source == "pipeline":
        selection.reasons.append("The run's conf says scaling_target=pipeline: the scaling section keeps its own "
                                 "target_value.")
        log.info("%s", selection.reasons[-1])
    elif chosen.kind == "instance":
        target = round(chosen.max_rps_per_instance * settings["safety_factor"] * 60, 1)
        log.info("Autoscaling target: %.1f req/s per instance x %g x 60 = %s invocations per instance per minute",
                 chosen.max_rps_per_instance, settings["safety_factor"], target)
    document = {**{k: settings[k] for k in ("pipeline", "latency_sla_ms", "percentile", "safety_factor")},
                "candidates": measured["candidates"], "selection": selection.as_dict(), "autoscaling_target": target}
    report = _write_report(document, f"{settings['report_s3_uri']}/{model_name}")
    return {"option": selection.option, "candidate": selection.candidate, "reasons": selection.reasons,
            "production_variants": [_variant(settings, chosen)], XCOM_AUTOSCALING_TARGET: target, **report}


def host_limit_notes(candidates: list, endpoint_url: str | None, host_cores: int | None = None) -> list[str]:
    """When the endpoints ran on this machine (an emulator on loopback), a candidate with more vCPUs than the
    machine has cores was measured against the host's limit, not its instance type's: say so."""
    import os
    from urllib.parse import urlparse

    if not endpoint_url or urlparse(endpoint_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return []
    from sagemaker_rules.instance_catalog import instance_type

    cores = host_cores or os.cpu_count() or 1
    notes = []
    for candidate in candidates:
        if candidate.kind != "instance" or not candidate.instance_type:
            continue
        vcpus = instance_type(candidate.instance_type).vcpus * candidate.instance_count
        if vcpus > cores:
            notes.append(f"Note: {candidate.name} has {vcpus} vCPUs but ran on this machine's {cores} cores (the "
                         f"emulator at {endpoint_url}): its figures are the host's limit, not the instance type's.")
    return notes


def _endpoint_url() -> str | None:
    """The AWS connection's endpoint_url (the emulator's address; None on AWS)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    return AwsGenericHook(aws_conn_id="aws_default", client_type="sagemaker").conn_config.endpoint_url


def _variant(settings: dict[str, Any], chosen: Any) -> dict[str, Any]:
    """The pipeline's variant (name, weight) on the chosen configuration."""
    variant = {k: v for k, v in settings["variant"].items()
               if k not in ("InstanceType", "InitialInstanceCount", "ServerlessConfig")}
    if chosen.kind == "serverless":
        return {**variant, "ServerlessConfig": {"MemorySizeInMB": chosen.memory_size_mb,
                                                "MaxConcurrency": chosen.max_concurrency}}
    count = settings["candidate_counts"].get(chosen.name) or settings["variant"].get("InitialInstanceCount") or 1
    return {**variant, "InstanceType": chosen.instance_type, "InitialInstanceCount": count}


def _write_report(document: dict[str, Any], prefix: str) -> dict[str, str]:
    from sagemaker_ops.benchmark_report import render_benchmark_report
    from sagemaker_ops.hooks.s3 import S3OpsHook

    s3 = S3OpsHook()
    report_uri, document_uri = f"{prefix}/report.html", f"{prefix}/benchmark.json"
    s3.write_json(document, document_uri)
    s3.write_bytes(render_benchmark_report(document).encode("utf-8"), report_uri, "text/html")
    return {"report_s3_uri": report_uri, "document_s3_uri": document_uri}
