"""moto, in-process: its WSGI app behind our aiohttp server, and direct access to its backends.

Every AWS service we do not implement ourselves (S3, IAM, STS, CloudWatch, CloudWatch Logs,
Application Auto Scaling, SNS, ...) is moto's. Requests reach moto's own dispatcher unchanged, in a
thread pool because moto is synchronous.
"""

from __future__ import annotations

import asyncio
import io
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import web

ACCOUNT_ID = "123456789012"  # moto's default account; our SageMaker uses the same one


class MotoGateway:
    """Forward an aiohttp request to moto's WSGI dispatcher and stream back its answer."""

    def __init__(self, threads: int = 8):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from sagemaker_emulator import cloudwatch_percentiles

        cloudwatch_percentiles.install()  # percentiles in GetMetricStatistics / GetMetricData
        self._app = DomainDispatcherApplication(create_backend_app)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="moto")

    async def __call__(self, request: web.Request) -> web.Response:
        body = await request.read()
        environ = self._environ(request, body)
        status, headers, payload = await asyncio.get_running_loop().run_in_executor(
            self._pool, self._call_wsgi, environ)
        response = web.Response(status=status, body=payload)
        for name, value in headers:
            lowered = name.lower()
            # A HEAD answer has no body but must keep the length of the object it describes.
            if lowered == "content-length" and request.method == "HEAD":
                response.headers[name] = value
            elif lowered not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                response.headers.add(name, value)
        return response

    def _environ(self, request: web.Request, body: bytes) -> dict[str, Any]:
        raw_path, _, query = request.raw_path.partition("?")
        host, _, port = (request.host or "localhost").partition(":")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": request.raw_path,
            "SERVER_NAME": host,
            "SERVER_PORT": port or "80",
            "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
            "REMOTE_ADDR": request.remote or "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ_key = f"HTTP_{key}"
                environ[environ_key] = f"{environ[environ_key]},{value}" if environ_key in environ else value
        return environ

    def _call_wsgi(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = headers
            return lambda chunk: None

        chunks = self._app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return started["status"], started["headers"], payload

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# -- the backends, behind named operations ---------------------------------------------------------
# Everything the emulator asks of moto's backends goes through the functions below, so that a moto
# upgrade that moves a backend or changes a signature is a change to this file only. They are
# synchronous (moto is): call them from a thread when a payload may be large.

METRIC_DATA_PER_CALL = 1000  # PutMetricData's limit per request


class NoSuchBucket(LookupError):
    """The bucket does not exist in the emulator's S3."""


def _s3() -> Any:
    """moto's S3 for our account (buckets are global to the partition, not per region)."""
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["aws"]


def _bucket(name: str) -> Any:
    from moto.s3.exceptions import MissingBucket

    try:
        return _s3().get_bucket(name)
    except MissingBucket:
        raise NoSuchBucket(f"NoSuchBucket: the bucket {name} does not exist") from None


def put_object(bucket: str, key: str, body: bytes, content_type: str | None = None) -> None:
    _bucket(bucket)
    stored = _s3().put_object(bucket, key, body)
    if content_type:
        stored.set_metadata({"Content-Type": content_type})


def object_size(bucket: str, key: str) -> int | None:
    """The object's size in bytes, None if there is no such key (NoSuchBucket if no such bucket)."""
    _bucket(bucket)
    found = _s3().get_object(bucket, key)
    return None if found is None else found.size


def get_object(bucket: str, key: str) -> bytes | None:
    """The object's bytes, None if there is no such key (NoSuchBucket if no such bucket)."""
    _bucket(bucket)
    found = _s3().get_object(bucket, key)
    return None if found is None else found.value


def list_keys(bucket: str, prefix: str) -> list[str]:
    """Every key that starts with ``prefix``, sorted."""
    keys, _, _, _ = _s3().list_objects(_bucket(bucket), prefix, None, None, None)
    return sorted(key.name for key in keys)


def put_metric_data(region: str, namespace: str, data: list[dict[str, Any]]) -> None:
    """PutMetricData. A datum may also carry ``Distribution``: ``[[value, count], ...]`` beside its
    ``StatisticValues``; it is stored as one statistic set (what moto's GetMetricStatistics reads)
    that remembers the distribution, which metric_data_since hands to the alarm evaluator for
    percentiles (moto would store ``Values``/``Counts`` as one object per counted value)."""
    backend = _cloudwatch(region)
    plain = [datum for datum in data if "Distribution" not in datum]
    for start in range(0, len(plain), METRIC_DATA_PER_CALL):
        backend.put_metric_data(namespace, plain[start:start + METRIC_DATA_PER_CALL])
    for datum in data:
        if "Distribution" in datum:
            backend.metric_data.append(_distribution_datum(namespace, datum))


def _distribution_datum(namespace: str, datum: dict[str, Any]) -> Any:
    from moto.cloudwatch.models import MetricAggregatedDatum

    stats = datum["StatisticValues"]
    stored = MetricAggregatedDatum(namespace=namespace, name=datum["MetricName"], min_stat=float(stats["Minimum"]),
                                   max_stat=float(stats["Maximum"]), sample_count=float(stats["SampleCount"]),
                                   sum_stat=float(stats["Sum"]), dimensions=datum.get("Dimensions", []),
                                   timestamp=_as_naive_utc(datum.get("Timestamp")), unit=datum.get("Unit"))
    stored.distribution = [(float(value), int(count)) for value, count in datum["Distribution"]]
    return stored


def _cloudwatch(region: str) -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[ACCOUNT_ID][region]


def _logs(region: str) -> Any:
    from moto.logs.models import logs_backends

    return logs_backends[ACCOUNT_ID][region]


def ensure_log_stream(region: str, group: str, stream: str) -> None:
    """Create the log group and stream unless they exist (as the SageMaker agents do)."""
    backend = _logs(region)
    if group not in backend.groups:
        backend.create_log_group(group, tags={})
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)


def put_log_events(region: str, group: str, stream: str, events: list[dict[str, Any]]) -> None:
    """``events``: ``{"timestamp": <epoch ms>, "message": str}`` in time order."""
    ensure_log_stream(region, group, stream)
    _logs(region).put_log_events(group, stream, events)


def publish(topic_arn: str, message: str, subject: str | None = None) -> None:
    """Publish to an SNS topic in the topic's own region."""
    from moto.sns.models import sns_backends

    region = topic_arn.split(":")[3]
    sns_backends[ACCOUNT_ID][region].publish(message, arn=topic_arn, subject=subject)


# -- CloudWatch alarms (evaluated by controllers/alarm_evaluator.py) --------------------------------

_ALARM_FIELDS = ("namespace", "metric_name", "period", "evaluation_periods", "datapoints_to_alarm",
                 "statistic", "extended_statistic", "comparison_operator", "threshold",
                 "treat_missing_data", "actions_enabled", "alarm_actions", "ok_actions",
                 "insufficient_data_actions", "unit", "state_value", "state_reason", "state_reason_data")


def alarm_states(region: str, names: list[str]) -> dict[str, str]:
    """``{alarm name: StateValue}`` for the named alarms that exist (missing names are left out)."""
    alarms = _cloudwatch(region).alarms
    return {name: alarms[name].state_value for name in names if name in alarms}


def cloudwatch_regions() -> list[str]:
    """The regions in which moto's CloudWatch has been used (holds alarms or metrics)."""
    from moto.cloudwatch.models import cloudwatch_backends

    return [region for region in list(cloudwatch_backends[ACCOUNT_ID].keys())]


def metric_alarms(region: str) -> list[dict[str, Any]]:
    """A snapshot of every single-metric alarm (metric-math and composite alarms are not included).

    ``token`` changes whenever PutMetricAlarm replaces the alarm (moto builds a new object), so a
    caller can tell an updated configuration from an unchanged one.
    """
    return [_alarm_snapshot(alarm) for alarm in list(_cloudwatch(region).alarms.values()) if _single_metric(alarm)]


def metric_alarm(region: str, name: str) -> dict[str, Any] | None:
    """The snapshot of one single-metric alarm (as metric_alarms gives it), None if there is none."""
    alarm = _cloudwatch(region).alarms.get(name)
    return _alarm_snapshot(alarm) if alarm is not None and _single_metric(alarm) else None


def _single_metric(alarm: Any) -> bool:
    return not (alarm.rule or alarm.metric_data_queries or not alarm.metric_name)


def _alarm_snapshot(alarm: Any) -> dict[str, Any]:
    snapshot = {field: getattr(alarm, field) for field in _ALARM_FIELDS}
    # id() alone could be reused by the replacing object once the old one is freed
    token = (id(alarm), alarm.configuration_updated_timestamp)
    snapshot.update(name=alarm.name, arn=alarm.alarm_arn, token=token, description=alarm.description,
                    dimensions={d.name: d.value for d in alarm.dimensions},
                    state_updated=_as_utc(alarm.state_updated_timestamp),
                    configuration_updated=_as_utc(alarm.configuration_updated_timestamp))
    return snapshot


def set_alarm_state(region: str, name: str, state: str, reason: str, reason_data: str) -> bool:
    """Record a state (and its reason) on an alarm; False if the alarm no longer exists."""
    alarm = _cloudwatch(region).alarms.get(name)
    if alarm is None:
        return False
    alarm.update_state(reason, reason_data, state)
    return True


def restore_alarm_state(region: str, name: str, state: str, reason: str, reason_data: str,
                        updated: Any) -> None:
    """Put a state back on an alarm PutMetricAlarm just replaced (AWS keeps the state of an
    updated alarm; moto's new object starts afresh), without a history entry."""
    alarm = _cloudwatch(region).alarms.get(name)
    if alarm is not None:
        alarm.state_value, alarm.state_reason, alarm.state_reason_data = state, reason, reason_data
        alarm.state_updated_timestamp = updated.replace(tzinfo=None)


def metric_data_since(region: str, cursor: int) -> tuple[list[tuple], int]:
    """The datapoints stored since ``cursor`` (a position returned by the previous call; 0 at first).

    Each is ``(namespace, metric name, dimensions as a sorted tuple of (name, value), UTC timestamp,
    values, unit)`` where ``values`` is a float for a single value or ``(count, sum, min, max,
    distribution)`` for a statistic set (``distribution``: ``[(value, count), ...]`` or None, see
    put_metric_data). moto keeps every datapoint in one list in arrival order, so reading only the
    tail keeps each call proportional to what arrived. If the list shrank (a reset), reading
    restarts at 0.
    """
    from moto.cloudwatch.models import MetricAggregatedDatum

    stored = _cloudwatch(region).metric_data
    if len(stored) < cursor:
        cursor = 0
    end = len(stored)
    data = []
    for datum in stored[cursor:end]:
        dims = tuple(sorted((d.name, d.value) for d in datum.dimensions))
        if isinstance(datum, MetricAggregatedDatum):
            values: Any = (datum.sample_count, datum.sum, datum.min, datum.max,
                           getattr(datum, "distribution", None))
        else:
            values = float(datum.value)
        data.append((datum.namespace, datum.name, dims, _as_utc(datum.timestamp), values, datum.unit))
    return data, end


def _as_naive_utc(moment: Any) -> Any:
    """moto compares stored timestamps with naive UTC ones."""
    from datetime import timezone

    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment is not None and moment.tzinfo else moment


def _as_utc(moment: Any) -> Any:
    """moto keeps naive UTC datetimes for what it stamped and aware ones for what clients sent."""
    from datetime import timezone

    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# -- Application Auto Scaling (acted on by controllers/autoscaler.py) -------------------------------

# moto's enum of scalable dimensions lacks these SageMaker ones; without them moto refuses to store a
# serverless variant's provisioned concurrency as a scalable target.
_EXTRA_SCALABLE_DIMENSIONS = {"SAGEMAKER_VARIANT_DESIRED_PROVISIONED_CONCURRENCY":
                              "sagemaker:variant:DesiredProvisionedConcurrency"}


def teach_moto_scalable_dimensions() -> None:
    """Extend moto's ScalableDimensionValueSet (models and responses both read it by name)."""
    from enum import Enum

    from moto.applicationautoscaling import models, responses

    known = {member.name: member.value for member in models.ScalableDimensionValueSet}
    if set(_EXTRA_SCALABLE_DIMENSIONS) <= set(known):
        return
    extended = Enum("ScalableDimensionValueSet", {**known, **_EXTRA_SCALABLE_DIMENSIONS})  # type: ignore[misc]
    models.ScalableDimensionValueSet = extended
    responses.ScalableDimensionValueSet = extended


def _autoscaling(region: str) -> Any:
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    return applicationautoscaling_backends[ACCOUNT_ID][region]


def scalable_targets(region: str, namespace: str = "sagemaker") -> list[dict[str, Any]]:
    """Every registered scalable target of the namespace: resource_id, dimension, min, max, suspended, arn."""
    return [{"resource_id": t.resource_id, "dimension": t.scalable_dimension, "min": t.min_capacity,
             "max": t.max_capacity, "suspended": dict(t.suspended_state or {}), "arn": t.arn}
            for t in _autoscaling(region)._flatten_scalable_targets(namespace)]


def scalable_target(region: str, resource_id: str, dimension: str) -> dict[str, Any] | None:
    return next((t for t in scalable_targets(region)
                 if t["resource_id"] == resource_id and t["dimension"] == dimension), None)


def set_target_capacity_bounds(region: str, resource_id: str, dimension: str, low: int | None,
                               high: int | None) -> None:
    """A scheduled action's new MinCapacity / MaxCapacity (None keeps the bound)."""
    target = _autoscaling(region).targets.get(dimension, {}).get(resource_id)
    if target is not None:
        target.update(low, high, None)


def scaling_policies(region: str, namespace: str = "sagemaker") -> list[dict[str, Any]]:
    """Every scaling policy of the namespace: name, arn, resource_id, dimension, type, config, alarms."""
    return [{"name": p.policy_name, "arn": p.policy_arn, "resource_id": p.resource_id,
             "dimension": p.scalable_dimension, "type": p.policy_type, "config": dict(p._policy_body or {}),
             "alarms": [a.name for a in p.alarms]}
            for p in list(_autoscaling(region).policies.values()) if p.service_namespace == namespace]


def attach_policy_alarm(region: str, policy_arn: str, alarm: dict[str, Any]) -> dict[str, str]:
    """Create a CloudWatch metric alarm owned by a scaling policy (deleted with it, listed in its Alarms).

    ``alarm`` holds PutMetricAlarm's members in snake case (name, namespace, metric_name, ...)."""
    policy = next(p for p in _autoscaling(region).policies.values() if p.policy_arn == policy_arn)
    created = _cloudwatch(region).put_metric_alarm(**alarm)
    policy.alarms.append(created)
    return {"AlarmName": created.name, "AlarmARN": created.alarm_arn}


def delete_alarms(region: str, names: list[str]) -> None:
    _cloudwatch(region).delete_alarms(names)


def delete_scaling_policy(region: str, name: str, resource_id: str, dimension: str) -> None:
    """Remove a SageMaker target's policy and the alarms it owns (a deregistered target's policies go with it)."""
    _autoscaling(region).delete_scaling_policy(name, "sagemaker", resource_id, dimension)


def scheduled_actions(region: str, namespace: str = "sagemaker") -> list[dict[str, Any]]:
    """Every scheduled action: name, arn, resource_id, dimension, schedule, timezone, start, end, action."""
    return [{"name": a.scheduled_action_name, "arn": a.arn, "resource_id": a.resource_id,
             "dimension": a.scalable_dimension, "schedule": a.schedule, "timezone": a.timezone,
             "start": a.start_time, "end": a.end_time, "action": dict(a.scalable_target_action or {})}
            for a in list(_autoscaling(region).scheduled_actions) if a.service_namespace == namespace]


def delete_scheduled_actions(region: str, resource_id: str, dimension: str) -> None:
    backend = _autoscaling(region)
    backend.scheduled_actions = [a for a in backend.scheduled_actions
                                 if (a.resource_id, a.scalable_dimension) != (resource_id, dimension)]


def deregister_scalable_target(region: str, resource_id: str, dimension: str) -> None:
    backend = _autoscaling(region)
    backend.targets.get(dimension, {}).pop(resource_id, None)
