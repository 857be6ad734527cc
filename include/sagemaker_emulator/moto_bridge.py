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
    backend = _cloudwatch(region)
    for start in range(0, len(data), METRIC_DATA_PER_CALL):
        backend.put_metric_data(namespace, data[start:start + METRIC_DATA_PER_CALL])


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


def publish(topic_arn: str, message: str) -> None:
    """Publish to an SNS topic in the topic's own region."""
    from moto.sns.models import sns_backends

    region = topic_arn.split(":")[3]
    sns_backends[ACCOUNT_ID][region].publish(message, arn=topic_arn)
