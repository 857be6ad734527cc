"""Shadow test: a candidate model answers a copy of the endpoint's traffic beside production, and is judged.

:class:`ShadowTestOperator` deploys the candidate as the endpoint's ``ShadowProductionVariants`` (data
capture on), sends traffic or waits for live traffic, restores the endpoint to its production config,
then compares the two variants from what was captured and measured: agreement of the answers, ModelLatency
percentiles and 4XX/5XX errors. A shadow that misses a threshold fails the task naming each miss.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook, is_already_exists
from sagemaker_ops.operators.base import WaitingOperator, check_positive, check_waiter_arguments, store_arguments
from sagemaker_ops.shadow_comparison import ShadowThresholds, VariantMeasures, agreement, breaches, pair_answers
from sagemaker_ops.specs import check_resource_name

if TYPE_CHECKING:
    from airflow.sdk import Context

PRODUCTION_CONFIG_TAG = "sagemaker-ops:production-config"  # on the shadow config: where to restore to
STATUS_QUERIES = ["EndpointStatus", "EndpointConfigName", "FailureReason"]
MAX_WINDOW_SECONDS = 24 * 3600


class ShadowTestFailed(AirflowFailException):
    """The shadow missed a threshold, or the endpoint could not be shadowed (a retry would not help)."""


class ShadowTestOperator(WaitingOperator[SageMakerOpsHook]):
    """
    Shadow-test ``candidate_model_name`` on ``endpoint_name`` and judge it against ``thresholds``.

    1. An endpoint config is made from the production config (its production variants unchanged) with
       the candidate as ``ShadowProductionVariants`` (``shadow_share`` of the requests copied to it,
       the production variant's instance type and count unless given) and data capture of inputs and
       outputs at 100% under ``capture_s3_uri`` (replacing the production config's own capture for the
       test's duration); the endpoint is updated to it (EndpointSettled waiter, in the worker).
    2. Traffic: ``payloads`` are sent ``requests`` times in turn, each with its own ``InferenceId``
       (callers get production's answers only), or, without payloads, live traffic is awaited for
       ``traffic_window_seconds`` (only callers' requests that carry an ``InferenceId`` can be paired).
    3. The endpoint is restored to the production config, also when a step above fails; a retry finds
       the production config from a tag on the shadow config and converges.
    4. The captured records of both variants are paired by ``inferenceId`` and their answers compared
       (JSON numbers within ``thresholds.numeric_tolerance``); ModelLatency p50/p99 and Invocation4XX/5XX
       per variant come from CloudWatch. Each missed threshold is listed with measured vs allowed.

    When CloudWatch returns no percentiles (ExtendedStatistics unsupported by the service answering),
    p99 is taken as the period's Maximum and p50 as its Average, and ``latency_statistics`` says so:
    a Maximum is never below the p99, so the latency check stays on the safe side.

    Returns ``{"endpoint_name", "production_config_name", "shadow_config_name", "capture_s3_uri",
    "requests_sent", "pairs", "agreement", "production", "shadow", "latency_statistics", "breaches",
    "passed"}`` (``production``/``shadow``: invocations, errors, error rate, latency p50/p99 in ms).

    :param endpoint_name: the live endpoint (one production variant).
    :param candidate_model_name: the model to shadow-test (an existing SageMaker model).
    :param capture_s3_uri: ``s3://bucket/prefix`` where both variants' answers are captured.
    :param thresholds: ``min_agreement``, ``max_error_rate``, ``max_latency_p99_ratio``,
        ``max_latency_p99_increase_ms``, ``numeric_tolerance`` (as in a pipeline YAML).
    :param production_config_name: the config to restore; default: the one the endpoint serves.
    :param payloads: request bodies (dicts/lists are sent as JSON) sent in turn; None: live traffic.
    :param requests: how many requests to send (default: one per payload).
    :param traffic_window_seconds: how long to wait for live traffic when no payloads are given.
    :param content_type: the ``ContentType`` (and ``Accept``) of the requests sent.
    :param shadow_variant_name: the shadow variant's name.
    :param shadow_share: the share of requests copied to the shadow (0-1].
    :param shadow_instance_type: the shadow's instance type (default: production's).
    :param shadow_instance_count: the shadow's instance count (default: production's).
    :param skip_if_nothing_to_compare: skip the task (instead of failing or testing a model against itself)
        when the endpoint does not exist yet (a release's first run) or already serves the candidate (a re-run).
    """

    aws_hook_class = SageMakerOpsHook
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "candidate_model_name", "capture_s3_uri", "thresholds", "production_config_name",
        "payloads", "requests", "traffic_window_seconds")
    template_fields_renderers: ClassVar[dict] = {"thresholds": "json", "payloads": "json"}
    ui_color = "#e1bee7"

    @store_arguments
    def __init__(self, *, endpoint_name: str, candidate_model_name: str, capture_s3_uri: str,
                 thresholds: dict[str, Any], production_config_name: str | None = None,
                 payloads: list[Any] | None = None, requests: int | None = None,
                 traffic_window_seconds: int | None = None, content_type: str = "application/json",
                 shadow_variant_name: str = "Shadow", shadow_share: float = 1.0,
                 shadow_instance_type: str | None = None, shadow_instance_count: int | None = None,
                 skip_if_nothing_to_compare: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    # -- validation -------------------------------------------------------------------------------

    def _validate(self) -> ShadowThresholds:
        """Check every argument before any AWS call; each error names the field and the fix."""
        if self.deferrable:  # accepted means honoured: the traffic and the comparison run in the worker
            raise ValueError("deferrable=True is not supported by ShadowTestOperator yet: it sends the traffic and "
                             "compares the answers in the worker; set deferrable=False.")
        check_resource_name("endpoint_name", self.endpoint_name)
        check_resource_name("candidate_model_name", self.candidate_model_name)
        check_resource_name("shadow_variant_name", self.shadow_variant_name)
        if self.production_config_name is not None:
            check_resource_name("production_config_name", self.production_config_name)
        if not isinstance(self.capture_s3_uri, str) or not self.capture_s3_uri.startswith("s3://") or \
                len(self.capture_s3_uri.rstrip("/")) <= len("s3://"):
            raise ValueError(f"capture_s3_uri must be an s3://bucket/prefix URI for the captured answers, "
                             f"got {self.capture_s3_uri!r}.")
        self._validate_traffic()
        share = self.shadow_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise ValueError(f"shadow_share is the share of requests copied to the shadow: give a number in (0, 1], "
                             f"got {share!r}.")
        if self.shadow_instance_count is not None:
            check_positive("shadow_instance_count", self.shadow_instance_count)
        check_waiter_arguments(self)
        return ShadowThresholds.parse(self.thresholds)

    def _validate_traffic(self) -> None:
        if self.payloads is None:
            if self.requests is not None:
                raise ValueError("requests is set but payloads is not: give payloads to send, or drop requests "
                                 "and set traffic_window_seconds to wait for live traffic.")
            if self.traffic_window_seconds is None:
                raise ValueError("Give payloads (requests to send) or traffic_window_seconds (how long to wait for "
                                 "live traffic).")
            check_positive("traffic_window_seconds", self.traffic_window_seconds, MAX_WINDOW_SECONDS)
            return
        if not isinstance(self.payloads, list) or not self.payloads:
            raise ValueError(f"payloads must be a non-empty list of request bodies, got {self.payloads!r}.")
        if self.traffic_window_seconds is not None:
            raise ValueError("Give either payloads (requests to send) or traffic_window_seconds (live traffic), "
                             "not both.")
        if self.requests is not None:
            check_positive("requests", self.requests)

    # -- the test ---------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        thresholds = self._validate()
        if self.skip_if_nothing_to_compare:
            self._skip_if_nothing_to_compare()
        self._wait_settled()
        production_config = self._production_config()
        shadow_config = self._ensure_shadow_config(production_config)
        capture_uri = self._capture_uri(shadow_config)
        started = datetime.now(timezone.utc)
        try:
            self._update_to(shadow_config)
            sent = self._traffic()
        finally:
            self._update_to(production_config)  # restoring also flushes the shadow config's capture
        ended = datetime.now(timezone.utc)
        result = self._compare(thresholds, production_config, capture_uri, sent, started, ended)
        result.update(production_config_name=production_config, shadow_config_name=shadow_config)
        if result["breaches"]:
            raise ShadowTestFailed(
                f"Shadow test of {self.candidate_model_name} on {self.endpoint_name} failed "
                f"({len(result['breaches'])} threshold(s) missed; the endpoint is back on {production_config}):\n- "
                + "\n- ".join(result["breaches"]))
        self.log.info("Shadow test of %s passed: agreement %s over %d pairs", self.candidate_model_name,
                      result["agreement"], result["pairs"])
        return result

    def _skip_if_nothing_to_compare(self) -> None:
        endpoint = self.hook.describe_or_none("endpoint", self.endpoint_name)
        if endpoint is None:
            raise AirflowSkipException(f"Endpoint {self.endpoint_name} does not exist yet: nothing to shadow "
                                       f"{self.candidate_model_name} against (the first release creates it).")
        config = self.hook.conn.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        if self.candidate_model_name in {variant["ModelName"] for variant in config["ProductionVariants"]}:
            raise AirflowSkipException(f"Endpoint {self.endpoint_name} already serves {self.candidate_model_name}: "
                                       "nothing new to shadow-test.")

    def _describe_endpoint(self) -> dict[str, Any]:
        endpoint = self.hook.describe_or_none("endpoint", self.endpoint_name)
        if endpoint is None:
            raise ShadowTestFailed(f"Endpoint {self.endpoint_name} does not exist; a shadow test needs a live "
                                   "endpoint (deploy it first).")
        return endpoint

    def _wait_settled(self) -> dict[str, Any]:
        """Wait out an update in progress (ours, on a retry); the endpoint must end InService."""
        if self._describe_endpoint()["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating"):
            try:
                self.hook.wait_with_logging("EndpointSettled", {"EndpointName": self.endpoint_name},
                                            f"endpoint {self.endpoint_name}", STATUS_QUERIES,
                                            self.waiter_delay, self.waiter_max_attempts)
            except Exception as error:  # noqa: BLE001 - judged from the endpoint's state just below
                self.log.warning("Waiting for %s: %s", self.endpoint_name, error)
        endpoint = self._describe_endpoint()
        if endpoint["EndpointStatus"] != "InService":
            raise ShadowTestFailed(f"Endpoint {self.endpoint_name} is {endpoint['EndpointStatus']} "
                                   f"({endpoint.get('FailureReason') or 'no FailureReason'}); a shadow test needs "
                                   "it InService.")
        return endpoint

    def _production_config(self) -> str:
        """The config to restore: given, else the served one, else (a retry) the one the shadow config names."""
        if self.production_config_name:
            return self.production_config_name
        served = self._describe_endpoint()["EndpointConfigName"]
        config = self.hook.conn.describe_endpoint_config(EndpointConfigName=served)
        if not config.get("ShadowProductionVariants"):
            return served
        tags = self.hook.conn.list_tags(ResourceArn=config["EndpointConfigArn"]).get("Tags", [])
        named = [tag["Value"] for tag in tags if tag["Key"] == PRODUCTION_CONFIG_TAG]
        if not named:
            raise ShadowTestFailed(f"Endpoint {self.endpoint_name} serves {served}, which already has a shadow "
                                   "variant not made by this operator: give production_config_name, the config "
                                   "to restore after the test.")
        return named[0]

    def _ensure_shadow_config(self, production_config: str) -> str:
        """The production config plus the candidate as shadow, capture on; same settings, same name."""
        config = self.hook.conn.describe_endpoint_config(EndpointConfigName=production_config)
        variants = config["ProductionVariants"]
        if len(variants) != 1 or config.get("ShadowProductionVariants"):
            raise ShadowTestFailed(f"Endpoint config {production_config} has {len(variants)} production variants"
                                   f"{' and a shadow' if config.get('ShadowProductionVariants') else ''}; a shadow "
                                   "test needs exactly one production variant and no shadow (AWS's rule).")
        request = self._shadow_config_request(production_config, variants[0])
        try:
            self.hook.conn.create_endpoint_config(**request)
            self.log.info("Created shadow config %s", request["EndpointConfigName"])
        except ClientError as error:
            if not is_already_exists(error):
                raise
        return request["EndpointConfigName"]

    def _shadow_config_request(self, production_config: str, production: dict[str, Any]) -> dict[str, Any]:
        shadow = {"VariantName": self.shadow_variant_name, "ModelName": self.candidate_model_name,
                  "InstanceType": self.shadow_instance_type or production["InstanceType"],
                  "InitialInstanceCount": self.shadow_instance_count or production["InitialInstanceCount"],
                  # The share copied is the shadow's weight over the production weight.
                  "InitialVariantWeight": float(self.shadow_share) * production.get("InitialVariantWeight", 1.0)}
        settings = json.dumps([production_config, shadow, self.capture_s3_uri], sort_keys=True)
        name = f"{production_config[:46]}-shadow-{hashlib.sha256(settings.encode()).hexdigest()[:9]}"
        capture_uri = self._capture_uri(name)
        return {"EndpointConfigName": name, "ProductionVariants": [production], "ShadowProductionVariants": [shadow],
                "DataCaptureConfig": {"EnableCapture": True, "InitialSamplingPercentage": 100,
                                      "DestinationS3Uri": capture_uri,
                                      "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                                      "CaptureContentTypeHeader": {"JsonContentTypes": [self.content_type]}},
                "Tags": [{"Key": PRODUCTION_CONFIG_TAG, "Value": production_config}]}

    def _capture_uri(self, shadow_config: str) -> str:
        """Each shadow config captures under its own prefix, so one test never reads another's records."""
        return f"{self.capture_s3_uri.rstrip('/')}/{shadow_config}"

    def _update_to(self, config_name: str) -> None:
        """UpdateEndpoint to ``config_name`` unless it serves it already, then wait until InService on it."""
        endpoint = self._wait_settled()
        if endpoint["EndpointConfigName"] == config_name:
            return
        self.log.info("Updating %s from %s to %s", self.endpoint_name, endpoint["EndpointConfigName"], config_name)
        self.hook.conn.update_endpoint(EndpointName=self.endpoint_name, EndpointConfigName=config_name)
        endpoint = self._wait_settled()
        if endpoint["EndpointConfigName"] != config_name:
            raise ShadowTestFailed(f"Endpoint {self.endpoint_name} ended InService on {endpoint['EndpointConfigName']}"
                                   f", not on {config_name}: {endpoint.get('FailureReason') or 'no FailureReason'}")

    def _traffic(self) -> int:
        """Send the payloads (returns how many were sent), or wait for live traffic (returns 0)."""
        if self.payloads is None:
            self.log.info("Waiting %d s for live traffic on %s", self.traffic_window_seconds, self.endpoint_name)
            time.sleep(self.traffic_window_seconds)
            return 0
        from sagemaker_ops.hooks.sagemaker_runtime import SageMakerRuntimeHook

        runtime = SageMakerRuntimeHook(**self._hook_parameters).conn
        run = uuid.uuid4().hex[:12]
        count = self.requests or len(self.payloads)
        for index in range(count):
            payload = self.payloads[index % len(self.payloads)]
            body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
            runtime.invoke_endpoint(EndpointName=self.endpoint_name, Body=body, ContentType=self.content_type,
                                    Accept=self.content_type, InferenceId=f"shadow-test-{run}-{index}")
        self.log.info("Sent %d requests to %s", count, self.endpoint_name)
        return count

    # -- the comparison ---------------------------------------------------------------------------

    def _compare(self, thresholds: ShadowThresholds, production_config: str, capture_uri: str, sent: int,
                 started: datetime, ended: datetime) -> dict[str, Any]:
        production_variant = self.hook.conn.describe_endpoint_config(
            EndpointConfigName=production_config)["ProductionVariants"][0]["VariantName"]
        measures, statistics = self._measures([production_variant, self.shadow_variant_name], started, ended, sent)
        production, shadow = measures[production_variant], measures[self.shadow_variant_name]
        # Every answer the shadow gave (its invocations but its errors) should be captured: wait for them too.
        shadow_answers = int(shadow.invocations - shadow.errors_4xx - shadow.errors_5xx) if sent else 0
        records = self._captured(capture_uri, {production_variant: sent, self.shadow_variant_name: shadow_answers},
                                 started)
        pairs = pair_answers(records.get(production_variant, []), records.get(self.shadow_variant_name, []))
        rate = agreement(pairs, thresholds.numeric_tolerance)
        return {"endpoint_name": self.endpoint_name, "capture_s3_uri": capture_uri, "requests_sent": sent,
                "pairs": len(pairs), "agreement": rate, "production": _summary(production),
                "shadow": _summary(shadow), "latency_statistics": statistics,
                "breaches": breaches(thresholds, rate, len(pairs), production, shadow)}

    def _captured(self, capture_uri: str, expected: dict[str, int],
                  started: datetime) -> dict[str, list[dict[str, Any]]]:
        """The capture records of the window by variant, polled until each variant has its ``expected`` count."""
        from sagemaker_ops.hooks.s3 import S3OpsHook

        s3 = S3OpsHook(**self._hook_parameters)
        bucket, prefix = s3.parse_s3_url(capture_uri)
        prefix = f"{prefix.strip('/')}/{self.endpoint_name}/"
        for _attempt in range(self.waiter_max_attempts):
            records: dict[str, list[dict[str, Any]]] = {}
            for key in s3.list_keys(bucket_name=bucket, prefix=prefix) or []:
                variant = key[len(prefix):].split("/", 1)[0]
                lines = s3.read_key(key, bucket_name=bucket).splitlines()
                records.setdefault(variant, []).extend(
                    record for record in map(json.loads, filter(None, lines)) if _within(record, started))
            missing = {variant: count - len(records.get(variant, [])) for variant, count in expected.items()}
            if all(count <= 0 for count in missing.values()):
                return records
            time.sleep(self.waiter_delay)
        self.log.warning("Answers not captured under %s after %d looks, by variant: %s", capture_uri,
                         self.waiter_max_attempts, missing)
        return records


    def _measures(self, variants: list[str], started: datetime, ended: datetime,
                  sent: int) -> tuple[dict[str, VariantMeasures], str]:
        """Each variant's invocations, errors and ModelLatency over the window, from CloudWatch; when requests
        were sent, polled until production's invocations are all counted (metrics arrive after a delay), then
        read once more a look later: a slow shadow's copies finish, and are published, after production's."""
        from sagemaker_ops.hooks.cloudwatch import CloudWatchHook

        cloudwatch = CloudWatchHook(**self._hook_parameters).conn
        start = started.replace(microsecond=0) - timedelta(seconds=1)
        period = max(60, -(-int((ended - start).total_seconds() + 120) // 60) * 60)  # one period: the window
        for _attempt in range(self.waiter_max_attempts):
            end = datetime.now(timezone.utc) + timedelta(seconds=60)
            statistics = {variant: _variant_statistics(cloudwatch, self.endpoint_name, variant, start, end, period)
                          for variant in variants}
            if statistics[variants[0]]["Invocations"]["Sum"] >= sent:
                time.sleep(self.waiter_delay)
                statistics = {variant: _variant_statistics(cloudwatch, self.endpoint_name, variant, start, end,
                                                           period) for variant in variants}
                break
            time.sleep(self.waiter_delay)
        measures = {variant: _measures_of(stats) for variant, stats in statistics.items()}
        percentiles = all(stats["ModelLatency"]["p99"] is not None for stats in statistics.values()
                          if stats["ModelLatency"]["SampleCount"])
        return measures, ("p50/p99 (ExtendedStatistics)" if percentiles else
                          "Average/Maximum (CloudWatch returned no percentiles)")


METRICS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency")


def _variant_statistics(cloudwatch: Any, endpoint: str, variant: str, start: datetime, end: datetime,
                        period: int) -> dict[str, dict[str, float | None]]:
    """Sum, SampleCount, Average, Maximum, p50, p99 of each metric over the window, across its datapoints."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    found = {}
    for metric in METRICS:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dimensions, StartTime=start, EndTime=end,
            Period=period, Statistics=["Sum", "SampleCount", "Average", "Maximum"],
            ExtendedStatistics=["p50", "p99"])["Datapoints"]
        found[metric] = _combined(points)
    return found


def _combined(points: list[dict[str, Any]]) -> dict[str, float | None]:
    """Datapoints of several periods as one: sums added, the worst maximum and p99, p50 weighted by count."""
    count = sum(float(p.get("SampleCount", 0)) for p in points)
    extended = [p.get("ExtendedStatistics") or {} for p in points]
    p50s = [(e["p50"], float(p.get("SampleCount", 0))) for e, p in zip(extended, points) if "p50" in e]
    p99s = [e["p99"] for e in extended if "p99" in e]
    return {"Sum": sum(float(p.get("Sum", 0)) for p in points), "SampleCount": count,
            "Average": sum(float(p.get("Sum", 0)) for p in points) / count if count else None,
            "Maximum": max((float(p["Maximum"]) for p in points if "Maximum" in p), default=None),
            "p50": sum(v * n for v, n in p50s) / sum(n for _v, n in p50s) if p50s and count else None,
            "p99": max(p99s) if p99s else None}


def _measures_of(statistics: dict[str, dict[str, float | None]]) -> VariantMeasures:
    latency = statistics["ModelLatency"]  # microseconds
    p50 = latency["p50"] if latency["p50"] is not None else latency["Average"]
    p99 = latency["p99"] if latency["p99"] is not None else latency["Maximum"]
    return VariantMeasures(invocations=statistics["Invocations"]["Sum"] or 0.0,
                           errors_4xx=statistics["Invocation4XXErrors"]["Sum"] or 0.0,
                           errors_5xx=statistics["Invocation5XXErrors"]["Sum"] or 0.0,
                           latency_p50_ms=None if p50 is None else p50 / 1000,
                           latency_p99_ms=None if p99 is None else p99 / 1000)


def _within(record: dict[str, Any], started: datetime) -> bool:
    """Whether a capture record belongs to this test's window (an earlier try's records do not)."""
    at = (record.get("eventMetadata") or {}).get("inferenceTime")
    if not at:
        return True
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return moment >= started - timedelta(seconds=1)  # inferenceTime has whole seconds


def _summary(measures: VariantMeasures) -> dict[str, Any]:
    return {"invocations": measures.invocations, "errors_4xx": measures.errors_4xx,
            "errors_5xx": measures.errors_5xx, "error_rate": measures.error_rate,
            "latency_p50_ms": measures.latency_p50_ms, "latency_p99_ms": measures.latency_p99_ms}
