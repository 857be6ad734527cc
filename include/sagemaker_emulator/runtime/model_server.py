"""The model server of a serving process: HTTP on the instance's port, predictions on one thread.

A single-model container serves SageMaker's container contract, ``GET /ping`` and ``POST /invocations``;
a multi-model one the ``/models`` API of ``multimodel_server.py``. Each serving process runs one
prediction at a time, in arrival order, on its inference thread, so ``/ping`` stays responsive while
a slow prediction runs (the model server's front end answers pings on AWS too).

The HTTP layer is small on purpose: every invocation crosses it twice on its way through the emulator
(router -> worker), so it is on the hot path of every benchmark. One ``asyncio.Protocol`` per
connection, httptools (llhttp) parsing the requests, a handler that returns a ``Response`` (or a
future of one), and the response written as one buffer. Keep-alive, ``Connection: close``, chunked
request bodies and ``Expect: 100-continue`` are honoured; requests on one connection are answered in
order; a body over ``max_body_bytes`` gets 413 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Union
from urllib.parse import unquote

import httptools

from sagemaker_emulator.runtime.handler import HandlerContext, Transformer, warm_default_codecs
from sagemaker_emulator.runtime.serving_processes import ServingProcess

log = logging.getLogger("sagemaker_emulator.worker")

MAX_REQUEST_BYTES = 1024**3  # async inference payloads reach 1 GB; the front end enforces 6 MB for real-time
SHUTDOWN_GRACE_SECONDS = 3  # lets an in-flight response finish after SIGTERM, but keeps exit prompt
LISTEN_BACKLOG = 1024
ONE_WRITE_LIMIT = 64 * 1024  # response bodies up to this size are joined to the head (one write)
HEADER_CODEC = ("utf-8", "surrogateescape")  # as aiohttp, so any header round-trips
STOP_POLL_SECONDS = 0.02


# --- Requests and responses ----------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    method: str
    path: str  # percent-decoded
    query: str  # raw query string, without "?"
    headers: dict[str, str]  # names lower-cased
    body: bytes
    keep_alive: bool = True


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


def json_response(document: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(document).encode(), "application/json")


Handler = Callable[[Request], Union[Response, Awaitable[Response]]]
NOT_FOUND = Response(404, b"404: Not Found", "text/plain; charset=utf-8")
METHOD_NOT_ALLOWED = Response(405, b"405: Method Not Allowed", "text/plain; charset=utf-8")
OK = Response(200)


# --- The inference thread -------------------------------------------------------------------------


class InferenceThread:
    """One thread that runs predictions one at a time, in arrival order, off the event loop.

    It does what ``run_in_executor`` on a one-thread ``ThreadPoolExecutor`` does, with less work
    per hand-off: a job is one ``SimpleQueue.put`` and its answer one ``call_soon_threadsafe``, with
    no ``concurrent.futures.Future`` chained to an asyncio one. Every invocation pays for the
    hand-off twice (there and back), so this is on the worker's hot path.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str = "inference"):
        self._loop = loop
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        # A daemon: a prediction still running at exit must not keep the process alive.
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def run(self, function: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Queue ``function(*args)``; the future resolves on the loop with its result or exception."""
        future = self._loop.create_future()
        self._jobs.put((future, function, args))
        return future

    def run_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Queue ``function(*args)`` without waiting for it (its failure is logged)."""
        self._jobs.put((None, function, args))

    def close(self) -> None:
        """Cancel the jobs still queued and end the thread once the current one returns."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None and job[0] is not None:
                job[0].cancel()
        self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, function, args = job
            if future is not None and future.cancelled():
                continue  # nobody waits for it any more
            try:
                result, error = function(*args), None
            except BaseException as raised:  # handed to the waiting request, as an executor does
                result, error = None, raised
            if future is None:
                if error is not None:
                    log.error("Background job %s failed", getattr(function, "__name__", function), exc_info=error)
                continue
            try:
                self._loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop has closed: the worker is exiting
                return


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


# --- The single-model container contract -------------------------------------------------------------


def single_model_handler(transformer: Transformer, inference: InferenceThread) -> Handler:
    """GET /ping and POST /invocations."""

    def handle(request: Request) -> Response | asyncio.Future:
        if request.path == "/invocations":
            if request.method != "POST":
                return METHOD_NOT_ALLOWED
            return inference.run(predict, transformer, request)
        if request.path == "/ping":
            # The server only listens once the model is loaded, so answering at all means healthy.
            return OK if request.method in ("GET", "HEAD") else METHOD_NOT_ALLOWED
        return NOT_FOUND

    return handle


def predict(transformer: Transformer, request: Request, model_name: str | None = None) -> Response:
    """One invocation through the handler contract; runs on the inference thread."""
    headers = request.headers
    result = transformer.transform(request.body, headers.get("content-type"), headers.get("accept"),
                                   HandlerContext(transformer.model_dir, headers))
    subject = "Invocation" if model_name is None else f"Invocation of {model_name}"
    if result.status >= 500:
        log.error("%s failed with status %d", subject, result.status, exc_info=result.error)
    elif result.error is not None:
        log.warning("%s rejected with status %d: %s", subject, result.status, result.error)
    return Response(result.status, result.body, result.content_type, result.headers, result.phrase)


# --- HTTP ---------------------------------------------------------------------------------------------


class ModelServer:
    """Serves one handler on already-bound listening sockets."""

    def __init__(self, handler: Handler, max_body_bytes: int = MAX_REQUEST_BYTES):
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.connections: set[_HttpConnection] = set()
        self.stopping = False  # once set, every connection closes after its current answer
        self._servers: list[asyncio.AbstractServer] = []

    async def start(self, sockets) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            self._servers.append(await loop.create_server(lambda: _HttpConnection(self), sock=sock,
                                                          backlog=LISTEN_BACKLOG))

    async def stop(self, grace: float) -> bool:
        """Stop accepting, let requests in flight finish for up to ``grace`` s, then close every
        connection. False if a request was still running when the time was up."""
        self.stopping = True
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            if not connection.busy:
                connection.close()
        deadline = time.monotonic() + grace
        while any(c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(STOP_POLL_SECONDS)
        finished = not any(c.busy for c in self.connections)
        for connection in list(self.connections):
            connection.close()
        return finished


class _HttpConnection(asyncio.Protocol):
    def __init__(self, server: ModelServer):
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._pending: deque[Request] = deque()  # parsed, not answered yet (pipelining)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._refused = False
        self.busy = False

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._server.connections.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._transport = None
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "Protocol upgrades are not supported.")
        except httptools.HttpParserError as error:
            if not self._refused:
                self._refuse(400, f"Invalid HTTP request: {error}")

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url, self._headers, self._body, self._size = b"", {}, [], 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode(*HEADER_CODEC).lower()] = value.decode(*HEADER_CODEC)

    def on_headers_complete(self) -> None:
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._server.max_body_bytes:
            self._refuse(413, f"The request body is larger than {self._server.max_body_bytes} bytes.")
            raise _Refused()
        if self._headers.get("expect", "").lower() == "100-continue":
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._server.max_body_bytes:  # chunked: no Content-Length to check up front
            self._refuse(413, f"The request body is larger than {self._server.max_body_bytes} bytes.")
            raise _Refused()
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self._url)
        request = Request(self._parser.get_method().decode("ascii"), unquote(url.path.decode(*HEADER_CODEC)),
                          url.query.decode(*HEADER_CODEC) if url.query else "", self._headers,
                          b"".join(self._body), self._parser.should_keep_alive())
        self._pending.append(request)
        if not self.busy:
            self._answer_next()

    # -- answering ------------------------------------------------------------------------------

    def _answer_next(self) -> None:
        if not self._pending or self._transport is None:
            self.busy = False
            return
        self.busy = True
        request = self._pending.popleft()
        try:
            outcome = self._server.handler(request)
        except Exception as error:  # a bug in a route: answer 500 rather than hang the connection
            log.exception("Handling %s %s failed", request.method, request.path)
            outcome = _internal_error(error)
        if isinstance(outcome, Response):
            self._send(request, outcome)
            return
        if inspect.isawaitable(outcome) and not isinstance(outcome, asyncio.Future):
            outcome = asyncio.ensure_future(outcome)
        outcome.add_done_callback(lambda done: self._settled(request, done))

    def _settled(self, request: Request, done: asyncio.Future) -> None:
        if done.cancelled():
            response = Response(503, b"The model server is shutting down.", "text/plain")
        elif (error := done.exception()) is not None:
            log.error("Handling %s %s failed", request.method, request.path, exc_info=error)
            response = _internal_error(error)
        else:
            response = done.result()
        self._send(request, response)

    def _send(self, request: Request, response: Response) -> None:
        if self._transport is None:  # the client went away while we worked
            self.busy = False
            return
        keep_alive = request.keep_alive and not self._server.stopping
        head, body = _encode(response, keep_alive, request.method == "HEAD")
        if len(body) <= ONE_WRITE_LIMIT:
            self._transport.write(head + body)
        else:
            self._transport.write(head)
            self._transport.write(body)
        if not keep_alive:
            self.busy = False
            self._transport.close()
            return
        self._answer_next()

    def _refuse(self, status: int, message: str) -> None:
        """Answer an unreadable request and close the connection (its framing can no longer be trusted)."""
        self._refused = True
        if self._transport is not None:
            head, body = _encode(Response(status, message.encode(), "text/plain"), False, False)
            self._transport.write(head + body)
            self._transport.close()


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


def _internal_error(error: BaseException) -> Response:
    return Response(500, f"Internal Server Error: {type(error).__name__}: {error}".encode(), "text/plain")


def _encode(response: Response, keep_alive: bool, head_only: bool) -> tuple[bytes, bytes]:
    status = response.status
    reason = response.reason or _REASONS.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {_single_line(reason)}", f"Content-Length: {len(response.body)}"]
    if response.content_type is not None:
        lines.append(f"Content-Type: {_single_line(response.content_type)}")
    for name, value in response.headers.items():
        lowered = name.lower()
        if lowered == "content-length" or (lowered == "content-type" and response.content_type is not None):
            continue  # the framing is ours, and the content type the handler returned wins, as in aiohttp
        lines.append(f"{_single_line(name)}: {_single_line(str(value))}")
    if not keep_alive:
        lines.append("Connection: close")
    lines.append("\r\n")
    return "\r\n".join(lines).encode(*HEADER_CODEC), b"" if head_only else response.body


def _single_line(text: str) -> str:
    """A handler may put anything in a header; a line break in one would split the response."""
    return text.replace("\r", " ").replace("\n", " ") if ("\r" in text or "\n" in text) else text


_REASONS = {status.value: status.phrase for status in HTTPStatus}


# --- Serving ----------------------------------------------------------------------------------------


async def serve(transformer: Transformer | None, args, status, started: float, process: ServingProcess,
                multi_model_handler: Callable[[InferenceThread], tuple[Handler, Callable[[], None]]] | None = None
                ) -> int:
    """Serve on this process's sockets until SIGTERM or SIGINT (no transformer: a multi-model server,
    whose handler and clean-up ``multi_model_handler`` builds). The first serving process reports
    ready and supervises the others; returns the exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    process.supervise(stop)
    # One thread: one prediction at a time, like one model-server worker.
    inference = InferenceThread(loop)
    if transformer is not None:
        handler, clean_up = single_model_handler(transformer, inference), (lambda: None)
    else:
        handler, clean_up = multi_model_handler(inference)
    server = ModelServer(handler)
    await server.start(process.sockets)  # bound before the fork (serving_processes.py)
    if process.primary:
        status.ready(process)
        log.info("Model server listening on http://%s:%d with %d worker process(es); start-up took %.2f s",
                 args.host, process.listeners.port, len(process.pids), time.monotonic() - started)
    if transformer is not None and transformer.uses_default_codecs:
        # numpy is kept out of start-up; load it now on the inference thread, before the first
        # request needs it, instead of making that request pay for the import.
        inference.run_soon(warm_default_codecs)
    await stop.wait()
    log.info("Stop signal received, shutting down")
    if not await server.stop(SHUTDOWN_GRACE_SECONDS):
        log.warning("A request was still running %d s after the stop signal; abandoning it", SHUTDOWN_GRACE_SECONDS)
    clean_up()
    inference.close()
    # The siblings got the same SIGTERM (the instance signals its process group) and need as long.
    return await process.finish(grace=SHUTDOWN_GRACE_SECONDS + 1)
