"""A lean keep-alive HTTP/1.1 client for the emulator's calls to its own model workers.

Why not aiohttp's client: on the invocation path it cost the router more CPU than everything else it
does per request (a request and a URL object, a timeout context, a response stream, per call). The
workers are local processes the emulator started itself, so the client can be small:

* one ``asyncio.Protocol`` per connection, with httptools (llhttp, Node's parser) reading the answer;
* a pool of idle keep-alive connections per worker port, at most ``MAX_CONNECTIONS_PER_WORKER`` open
  (a request beyond that waits for one to come back), each closed after ``IDLE_SECONDS`` unused;
* one event-loop timer per request for its time limit, instead of a timeout object and a task;
* the request head and a small body leave in one write (one segment on the wire); a large body goes
  out in slices under the transport's flow control rather than being copied into its buffer.

A connection that breaks (the worker died, or answered with garbage) raises ``WorkerConnectionError``;
no time left raises ``TimeoutError``. Either way that connection is never reused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httptools
from multidict import CIMultiDict

MAX_CONNECTIONS_PER_WORKER = 64
# Before the worker's own keep-alive limit (aiohttp's 75 s) can close one just as a request goes out.
IDLE_SECONDS = 30.0
ONE_WRITE_LIMIT = 64 * 1024  # bodies up to this size are joined to the head and sent in one write
SLICE_BYTES = 256 * 1024  # larger bodies are written in slices of this size
HEADER_CODEC = ("utf-8", "surrogateescape")  # what aiohttp uses on both sides, so any header round-trips


class WorkerConnectionError(ConnectionError):
    """The connection to a worker could not be opened, broke mid-request, or carried invalid HTTP."""


@dataclass(slots=True)
class WorkerResponse:
    status: int
    headers: CIMultiDict
    body: bytes


class WorkerClient:
    """Pooled keep-alive connections to every worker port the emulator calls."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self._pools: dict[int, _Pool] = {}

    async def request(self, port: int, method: str, path: str, headers: list[tuple[str, str]], body: bytes,
                      timeout: float) -> WorkerResponse:
        """One request/answer exchange with the worker on ``port``, within ``timeout`` seconds."""
        head = _request_head(method, path, f"{self.host}:{port}", headers, len(body))
        pool = self._pools.get(port)
        if pool is None:
            pool = self._pools[port] = _Pool(self.host, port, self._drop)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = await pool.acquire(deadline)
        try:
            response = await connection.exchange(head, body, deadline)
        except BaseException:  # timed out, broken or cancelled: the connection's state is unknown
            connection.abort()
            raise
        pool.release(connection)
        return response

    @property
    def pooled_ports(self) -> list[int]:
        """The worker ports with open connections or requests waiting for one."""
        return list(self._pools)

    def _drop(self, pool: "_Pool") -> None:
        """A pool with no connection left goes: workers come and go, their ports must not pile up."""
        if self._pools.get(pool.port) is pool:
            del self._pools[pool.port]

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _request_head(method: str, path: str, host: str, headers: list[tuple[str, str]], length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"the header {name!r} holds a line break and cannot be forwarded")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode(*HEADER_CODEC)


class _Pool:
    """The connections to one worker port: idle ones (most recently used last) and a count of all open."""

    def __init__(self, host: str, port: int, on_empty: Callable[["_Pool"], None]):
        self.host = host
        self.port = port
        self.on_empty = on_empty
        self.idle: list[_Connection] = []
        self.open = 0
        self.waiters: deque[asyncio.Future] = deque()  # requests waiting for a connection slot

    async def acquire(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        while True:
            while self.idle:
                connection = self.idle.pop()
                if connection.usable(loop.time()):
                    return connection
                connection.abort()  # idle too long or half-closed: its connection_lost forgets it
            if self.open < MAX_CONNECTIONS_PER_WORKER:
                return await self._connect(deadline)
            waiter = loop.create_future()
            self.waiters.append(waiter)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                connection = await waiter  # a released connection, or None: a slot is free
            finally:
                timer.cancel()
            if connection is not None:
                return connection

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        self.open += 1
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as error:
            self._slot_freed()
            raise WorkerConnectionError(f"Cannot connect to the worker at {self.host}:{self.port}: {error}") from None
        except BaseException:
            self._slot_freed()
            raise
        return connection

    def release(self, connection: _Connection) -> None:
        """Back into the pool after a complete exchange (or closed, if it cannot carry another)."""
        if not connection.reusable():
            connection.abort()
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = asyncio.get_running_loop().time()
        self.idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        """Called once per connection when it closes, whoever closed it."""
        if connection in self.idle:
            self.idle.remove(connection)
        self._slot_freed()

    def _slot_freed(self) -> None:
        self.open -= 1
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if self.open == 0:
            self.on_empty(self)

    def close(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(WorkerConnectionError("The emulator is shutting down."))
        self.waiters.clear()
        for connection in list(self.idle):
            connection.abort()


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time, its answer read by httptools callbacks."""

    def __init__(self, pool: _Pool):
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._keep_alive = False
        self._body_sent = True
        self._writable: asyncio.Future | None = None  # set while the transport asks us to pause writing
        self.closed = False
        self.idle_since = 0.0

    # -- used by the pool and the client ----------------------------------------------------------

    def usable(self, now: float) -> bool:
        return not self.closed and not self._transport.is_closing() and now - self.idle_since < IDLE_SECONDS

    def reusable(self) -> bool:
        return (self._keep_alive and self._body_sent and not self.closed
                and self._transport.get_write_buffer_size() == 0)

    def abort(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.abort()

    async def exchange(self, head: bytes, body: bytes, deadline: float) -> WorkerResponse:
        if self.closed:  # it broke while it was being handed over
            raise WorkerConnectionError("The worker closed the connection before the request was sent.")
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        self._keep_alive = False
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            if len(body) <= ONE_WRITE_LIMIT:
                self._transport.write(head + body)
            else:
                self._transport.write(head)
                self._body_sent = False
                self._body_sent = await self._write_slices(memoryview(body), waiter)
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def _write_slices(self, body: memoryview, answered: asyncio.Future) -> bool:
        """Write ``body`` under flow control; False if the answer (or a failure) came before all of it."""
        for start in range(0, len(body), SLICE_BYTES):
            if self._writable is not None:
                # Wait for the socket to drain, or for the answer/failure (it may come early).
                await asyncio.wait((self._writable, answered), return_when=asyncio.FIRST_COMPLETED)
                if answered.done():
                    return False
            self._transport.write(body[start:start + SLICE_BYTES])
        return True

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(WorkerConnectionError(f"The worker sent an invalid HTTP answer: {error}"))
            self._transport.abort()

    def eof_received(self) -> bool:
        return False  # the worker closed its side: close ours too

    def connection_lost(self, error: Exception | None) -> None:
        self.closed = True
        self._fail(WorkerConnectionError(
            f"The worker closed the connection before answering{f': {error}' if error else ''}."))
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._pool.forget(self)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # -- httptools callbacks --------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode(*HEADER_CODEC), value.decode(*HEADER_CODEC)))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        response = WorkerResponse(self._parser.get_status_code(), CIMultiDict(self._headers), b"".join(self._body))
        self._keep_alive = self._parser.should_keep_alive()
        self._headers, self._body = [], []
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        elif waiter is None:  # an answer nobody asked for: the connection is out of step
            self._transport.abort()

    def _fail(self, error: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
