"""InferenceRecommenderOperator: run an Inference Recommender job and choose the configuration to deploy."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowException
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook
from sagemaker_ops.operators.base import WaitingOperator, check_waiter_arguments, store_arguments
from sagemaker_ops.recommendations import choose_recommendation, job_percentile, measured_candidate
from sagemaker_ops.specs import aws_tags, check_resource_name, check_tags

if TYPE_CHECKING:
    from airflow.sdk import Context

JOB_TYPES = ("Default", "Advanced")
UNSUCCESSFUL = ("FAILED", "STOPPED")


class InferenceRecommendationsJobFailed(AirflowException):
    """The job ended FAILED or STOPPED (the message carries its FailureReason)."""


class InferenceRecommenderOperator(WaitingOperator[SageMakerOpsHook]):
    """
    Run an Inference Recommender job (CreateInferenceRecommendationsJob), wait for it, and choose the
    recommended configuration that meets the latency SLA at the lowest CostPerInference, saying why.

    Idempotent by name: a job called ``job_name`` that already exists is described and reused (still
    running: waited for; COMPLETED: read), never created twice. A FAILED or STOPPED job fails the task
    with its FailureReason (a new ``job_name`` runs the benchmark again). The wait runs in the worker
    or, with ``deferrable``, in the triggerer; on AWS an Advanced job takes about two hours, so give
    ``waiter_delay`` x ``waiter_max_attempts`` room (e.g. 60 s x 180).

    Returns ``{"job_name", "job_arn", "recommendation_id", "instance_type", "instance_count",
    "serverless_config", "metrics", "reasons", "candidates"}`` (``candidates``: every recommendation
    as a measured candidate of :mod:`sagemaker_ops.workload_selection` with its raw ``metrics``).

    :param job_name: the job's name (1-64 characters).
    :param model_name: the SageMaker model to benchmark.
    :param role_arn: the role Inference Recommender assumes.
    :param sample_payload_url: an S3 URI of a tar.gz of sample requests.
    :param content_types: the requests' content types (``SupportedContentTypes``).
    :param endpoint_configurations: candidates as the API takes them: ``{"InstanceType": ...}`` or
        ``{"ServerlessConfig": {"MemorySizeInMB": ..., "MaxConcurrency": ...}}`` (Advanced jobs).
    :param latency_sla_ms: the largest acceptable ModelLatency (at the job's percentile); None: any.
    :param job_type: ``Advanced`` (the candidates, traffic and stopping conditions given) or ``Default``.
    :param traffic_pattern: the API's ``TrafficPattern`` (PHASES or STAIRS).
    :param stopping_conditions: the API's ``StoppingConditions``.
    :param resource_limit: the API's ``ResourceLimit``.
    :param job_duration_seconds: ``JobDurationInSeconds``.
    :param tags: tags for the job.
    """

    aws_hook_class = SageMakerOpsHook
    template_fields: Sequence[str] = aws_template_fields(
        "job_name", "model_name", "role_arn", "sample_payload_url", "endpoint_configurations", "latency_sla_ms")
    template_fields_renderers: ClassVar[dict] = {"endpoint_configurations": "json"}
    ui_color = "#d1c4e9"

    @store_arguments
    def __init__(self, *, job_name: str, model_name: str, role_arn: str, sample_payload_url: str,
                 content_types: Sequence[str] = ("text/csv",), endpoint_configurations: Sequence[dict] = (),
                 latency_sla_ms: float | None = None, job_type: str = "Advanced",
                 traffic_pattern: dict | None = None, stopping_conditions: dict | None = None,
                 resource_limit: dict | None = None, job_duration_seconds: int | None = None,
                 tags: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        job = self._describe()
        if job is None:
            self.hook.conn.create_inference_recommendations_job(**self._request())
            self.log.info("Started inference recommendations job %s (%s, %d candidate(s)).", self.job_name,
                          self.job_type, len(self.endpoint_configurations))
        else:
            self.log.info("Inference recommendations job %s exists (%s): reusing it.", self.job_name, job["Status"])
            if job["Status"] == "COMPLETED" or job["Status"] in UNSUCCESSFUL:
                return self._choose(job)
        if self.deferrable:
            from sagemaker_ops.triggers.inference_recommender import InferenceRecommendationsJobTrigger

            self.defer(trigger=InferenceRecommendationsJobTrigger(job_name=self.job_name, **self.trigger_arguments()),
                       method_name="execute_complete")
        try:
            self.hook.wait_with_logging("InferenceRecommendationsJobDone", {"JobName": self.job_name},
                                        f"inference recommendations job {self.job_name}", ["Status"],
                                        self.waiter_delay, self.waiter_max_attempts)
        except AirflowException as error:
            job = self._describe()
            if (job or {}).get("Status") not in UNSUCCESSFUL:
                raise AirflowException(f"Gave up waiting for inference recommendations job {self.job_name} "
                                       f"({(job or {}).get('Status')}): {error}") from error
            return self._choose(job)  # failed or stopped: as read just now
        return self._choose(self._describe())

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the deferred wait: read the job as it ended."""
        event = validate_execute_complete_event(event)
        job = self._describe()
        if event.get("status") != "success" and (job or {}).get("Status") not in UNSUCCESSFUL:
            raise AirflowException(f"Waiting for inference recommendations job {self.job_name} failed: "
                                   f"{event.get('message', event)}")
        return self._choose(job)

    def _validate(self) -> None:
        if not isinstance(self.job_name, str) or not 1 <= len(self.job_name) <= 64:
            raise ValueError(f"job_name must be 1-64 characters, got {self.job_name!r}.")
        check_resource_name("model_name", self.model_name)
        if self.job_type not in JOB_TYPES:
            raise ValueError(f"job_type must be one of {', '.join(JOB_TYPES)}, got {self.job_type!r}.")
        if self.job_type == "Advanced" and not self.endpoint_configurations:
            raise ValueError("endpoint_configurations is required for an Advanced job: list the candidates, e.g. "
                             "[{'InstanceType': 'ml.c5.large'}, {'ServerlessConfig': {'MemorySizeInMB': 2048, "
                             "'MaxConcurrency': 5}}].")
        if self.latency_sla_ms is not None and (not isinstance(self.latency_sla_ms, int | float)
                                                or self.latency_sla_ms <= 0):
            raise ValueError(f"latency_sla_ms must be a number > 0 (milliseconds), got {self.latency_sla_ms!r}.")
        check_tags(self.tags)
        check_waiter_arguments(self)

    def _describe(self) -> dict[str, Any] | None:
        return self.hook.describe_or_none("inference_recommendations_job", self.job_name)

    def _request(self) -> dict[str, Any]:
        input_config: dict[str, Any] = {
            "ModelName": self.model_name,
            "ContainerConfig": {"PayloadConfig": {"SamplePayloadUrl": self.sample_payload_url,
                                                  "SupportedContentTypes": list(self.content_types)}},
        }
        optional = {"EndpointConfigurations": list(self.endpoint_configurations) or None,
                    "TrafficPattern": self.traffic_pattern, "ResourceLimit": self.resource_limit,
                    "JobDurationInSeconds": self.job_duration_seconds}
        input_config.update({key: value for key, value in optional.items() if value is not None})
        request = {"JobName": self.job_name, "JobType": self.job_type, "RoleArn": self.role_arn,
                   "InputConfig": input_config}
        if self.stopping_conditions:
            request["StoppingConditions"] = self.stopping_conditions
        if self.tags:
            request["Tags"] = aws_tags(self.tags)
        return request

    def _choose(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["Status"] in UNSUCCESSFUL:
            raise InferenceRecommendationsJobFailed(
                f"Inference recommendations job {self.job_name} ended {job['Status']}: "
                f"{job.get('FailureReason') or 'no FailureReason given'}. Give the task a new job_name to run the "
                "benchmark again.")
        percentile = job_percentile(job)
        recommendations = job.get("InferenceRecommendations", [])
        self._log_table(recommendations, percentile)
        chosen, reasons = choose_recommendation(recommendations, self.latency_sla_ms, percentile)
        for reason in reasons:
            self.log.info("%s", reason)
        config = chosen["EndpointConfiguration"]
        return {
            "job_name": self.job_name, "job_arn": job["JobArn"], "recommendation_id": chosen.get("RecommendationId"),
            "instance_type": config.get("InstanceType"), "instance_count": config.get("InitialInstanceCount"),
            "serverless_config": config.get("ServerlessConfig"), "metrics": chosen["Metrics"], "reasons": reasons,
            "percentile": percentile,
            "candidates": [{**dataclasses.asdict(measured_candidate(r, percentile)), "metrics": r["Metrics"]}
                           for r in recommendations],
        }

    def _log_table(self, recommendations: list[dict[str, Any]], percentile: str) -> None:
        self.log.info("%-28s %10s %10s %12s %14s", "configuration", "inv/min", f"{percentile} ms", "$/hour",
                      "$/million inf")
        for recommendation in recommendations:
            measured = measured_candidate(recommendation, percentile)
            self.log.info("%-28s %10.0f %10s %12s %14s", measured.name, measured.max_rps * 60,
                          measured.latency_at(percentile.lower()), measured.cost_per_hour,
                          f"{measured.cost_per_million:.2f}" if measured.cost_per_million is not None else "-")
