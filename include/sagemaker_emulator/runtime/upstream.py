"""The router's HTTP/1.1 client for model workers: keep-alive connections, nothing else.

Every InvokeEndpoint is one POST from the router to a worker on the loopback interface. A general
client (aiohttp's ClientSession) spends more CPU on that hop than the rest of the router: request
and response objects, header multidicts, cookie and proxy handling, a separate task to write the
body, tracing hooks. The workers are our own processes, so the hop needs only a small part of HTTP:

* requests: ``POST`` with a ``Content-Length`` body, written with one ``write`` call;
* responses: ``Content-Length``, ``Transfer-Encoding: chunked`` or read-until-close framing,
  interim 1xx answers skipped, ``Connection: close`` honoured;
* connections: kept alive per worker and reused most-recently-used first, at most
  ``limit_per_worker`` open at once (callers beyond that wait for one), a connection that breaks,
  times out or answers out of turn is closed and never reused.

A worker that cannot be reached, or closes the connection before a whole answer arrived, raises
:class:`UpstreamConnectionError`; a deadline raises :class:`TimeoutError`.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Hashable

MAX_HEAD_BYTES = 64 * 1024  # status line + headers of one response
_NO_BODY = -1  # framing markers for _Connection._length
_CHUNKED = -2
_UNTIL_CLOSE = -3


class UpstreamConnectionError(ConnectionError):
    """The worker refused the connection or closed it before answering in full."""


class UpstreamResponse:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers  # lower-case names; repeated headers joined with ", "
        self.body = body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses at most one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future | None = None
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: dict[str, str] | None = None
        self._length = 0
        self._keep_alive = True
        self._chunks: list[bytes] = []
        self._chunk_left = 0  # bytes of the current chunk still to come; 0 means "a size line is next"

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None:
            # Bytes while no request is outstanding: the stream is out of step; never reuse it.
            self.close()
            return
        try:
            self._parse()
        except (ValueError, IndexError) as error:
            self._fail(UpstreamConnectionError(f"Invalid response from the worker: {error}"))

    def eof_received(self) -> bool:
        if self._waiter is not None and self._headers is not None and self._length == _UNTIL_CLOSE:
            self._finish(bytes(self._buffer))
        return False  # let the transport close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(UpstreamConnectionError("Server disconnected"))

    # -- request / response ------------------------------------------------------------------------

    def send(self, data: bytes, waiter: asyncio.Future) -> None:
        self._reset()
        self._waiter = waiter
        self.transport.write(data)

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def _finish(self, body: bytes) -> None:
        waiter, self._waiter = self._waiter, None
        if not self._keep_alive or self._buffer:
            self.close()  # the worker said close, or sent more than one answer
        if waiter is not None and not waiter.done():
            waiter.set_result(UpstreamResponse(self._status, self._headers or {}, body))

    def _parse(self) -> None:
        buffer = self._buffer
        while self._headers is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise ValueError("response headers too long")
                return
            lines = buffer[:end].decode("utf-8", "surrogateescape").split("\r\n")
            del buffer[:end + 4]
            version, status = lines[0].split(" ", 2)[:2]
            if not version.startswith("HTTP/1."):
                raise ValueError(f"unexpected status line {lines[0]!r}")
            if 100 <= int(status) < 200:
                continue  # an interim answer (100 Continue): the real one follows
            self._start(version, int(status), lines[1:])
        if self._length >= 0:
            if len(buffer) >= self._length:
                body = bytes(buffer[:self._length])
                del buffer[:self._length]
                self._finish(body)
        elif self._length == _NO_BODY:
            self._finish(b"")
        elif self._length == _CHUNKED:
            self._parse_chunks(buffer)
        # _UNTIL_CLOSE: the body ends when the worker closes the connection (eof_received)

    def _start(self, version: str, status: int, lines: list[str]) -> None:
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(f"malformed header line {line!r}")
            key, value = name.strip().lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._status, self._headers = status, headers
        connection = headers.get("connection", "").lower()
        self._keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        if status in (204, 304):
            self._length = _NO_BODY
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._length = _CHUNKED
        elif "content-length" in headers:
            self._length = int(headers["content-length"])
            if self._length < 0:
                raise ValueError("negative Content-Length")
        else:
            self._length, self._keep_alive = _UNTIL_CLOSE, False

    def _parse_chunks(self, buffer: bytearray) -> None:
        while True:
            if self._chunk_left == 0:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buffer[:end]).split(b";", 1)[0], 16)
                if size == 0:  # the last chunk: optional trailer lines, then an empty line
                    end = buffer.find(b"\r\n\r\n", end)  # the size line's CRLF starts it if no trailers
                    if end < 0:
                        return
                    del buffer[:end + 4]
                    self._finish(b"".join(self._chunks))
                    return
                del buffer[:end + 2]
                self._chunk_left = size
            if len(buffer) < self._chunk_left + 2:
                return
            self._chunks.append(bytes(buffer[:self._chunk_left]))
            del buffer[:self._chunk_left + 2]  # the chunk and its CRLF
            self._chunk_left = 0


class _Pool:
    """The keep-alive connections to one worker."""

    def __init__(self, host: str, port: int, limit: int):
        self.host = host
        self.port = port
        self.host_header = f"Host: {host}:{port}\r\n".encode()
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(limit)

    def take(self) -> _Connection | None:
        while self.idle:
            connection = self.idle.pop()
            if connection.open:
                return connection
        return None

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class UpstreamClient:
    """Keep-alive connection pools, one per worker, dropped with the worker's key object."""

    def __init__(self, limit_per_worker: int = 64):
        self.limit_per_worker = limit_per_worker
        self._pools: weakref.WeakKeyDictionary[Hashable, _Pool] = weakref.WeakKeyDictionary()

    async def post(self, key: Hashable, host: str, port: int, path: str, headers: list[tuple[str, str]],
                   body: bytes, timeout: float) -> UpstreamResponse:
        """POST ``body`` to ``http://host:port/path``; ``key`` identifies the worker (weakly held)."""
        pool = self._pools.get(key)
        if pool is None or pool.port != port or pool.host != host:
            pool = self._pools[key] = _Pool(host, port, self.limit_per_worker)
        head = [f"POST {path} HTTP/1.1\r\n".encode(), pool.host_header]
        for name, value in headers:
            encoded = f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")
            if b"\r" in encoded[:-2] or b"\n" in encoded[:-2]:
                raise ValueError(f"header {name} contains a line break")
            head.append(encoded)
        head.append(b"Content-Length: %d\r\n\r\n" % len(body))
        request = b"".join(head) + body
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout), pool.slots:
            connection = pool.take() or await self._connect(loop, pool)
            waiter = loop.create_future()
            try:
                connection.send(request, waiter)
                response = await waiter
            except BaseException:
                connection.close()  # a late or partial answer must never reach the next request
                raise
            if connection.open:
                pool.idle.append(connection)
            return response

    @staticmethod
    async def _connect(loop: asyncio.AbstractEventLoop, pool: _Pool) -> _Connection:
        try:
            _, connection = await loop.create_connection(_Connection, pool.host, pool.port)
        except OSError as error:
            raise UpstreamConnectionError(
                f"Cannot connect to host {pool.host}:{pool.port} [{error.strerror or error}]") from error
        return connection

    def close(self) -> None:
        for pool in list(self._pools.values()):
            pool.close()
        self._pools.clear()
