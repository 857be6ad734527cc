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


def cloudwatch(region: str) -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[ACCOUNT_ID][region]


def logs(region: str) -> Any:
    from moto.logs.models import logs_backends

    return logs_backends[ACCOUNT_ID][region]


def s3() -> Any:
    """moto's S3 for our account (buckets are global to the partition, not per region)."""
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["aws"]


def sns(region: str) -> Any:
    from moto.sns.models import sns_backends

    return sns_backends[ACCOUNT_ID][region]
