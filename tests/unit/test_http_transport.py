"""The emulator's two HTTP ends on the invocation path: the worker's model server (model_server.py) and
the router's client to it (worker_client.py), talking over real sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sagemaker_emulator.runtime.model_server import ModelServer, Request, Response
from sagemaker_emulator.runtime.worker_client import WorkerClient, WorkerConnectionError


def echo(request: Request) -> Response:
    if request.path == "/missing":
        return Response(404, b"no such thing", "text/plain")
    body = f"{request.method} {request.path}?{request.query} {request.headers.get('x-tag', '')} ".encode()
    return Response(200, body + request.body, "text/plain", {"X-Seen": request.headers.get("content-type", "")})


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


async def started(handler, **options) -> tuple[ModelServer, int]:
    sock = listening_socket()
    server = ModelServer(handler, **options)
    await server.start([sock])
    return server, sock.getsockname()[1]


async def exchange(port: int, raw: bytes, *, until_closed: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    try:
        if until_closed:
            return await asyncio.wait_for(reader.read(), 5)
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()


def test_pipelined_requests_on_one_connection_are_answered_in_order_then_closed_when_asked():
    async def scenario():
        server, port = await started(echo)
        raw = (b"POST /invocations?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Tag: first\r\n\r\nabc"
               b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Tag: second\r\n"
               b"Connection: close\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n")
        answer = await exchange(port, raw, until_closed=True)
        await server.stop(1)
        return answer

    answer = asyncio.run(scenario())
    first, second = answer.split(b"HTTP/1.1 200 OK")[1:]
    assert first.endswith(b"POST /invocations?a=1 first abc")
    assert b"Connection: close" in second and second.endswith(b"POST /invocations? second def")


def test_unknown_paths_head_requests_and_handler_headers():
    async def scenario():
        server, port = await started(echo)
        missing = await exchange(port, b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                 until_closed=True)
        head = await exchange(port, b"HEAD /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              until_closed=True)
        typed = await exchange(port, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                                     b"Content-Length: 0\r\nConnection: close\r\n\r\n", until_closed=True)
        await server.stop(1)
        return missing, head, typed

    missing, head, typed = asyncio.run(scenario())
    assert missing.startswith(b"HTTP/1.1 404 Not Found\r\n") and missing.endswith(b"no such thing")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n"), "HEAD answers carry no body"
    assert b"X-Seen: text/csv\r\n" in typed


def test_expect_100_continue_and_a_body_over_the_limit():
    async def scenario():
        server, port = await started(echo, max_body_bytes=10)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"body")
        final = await asyncio.wait_for(reader.readuntil(b"body"), 5)
        writer.close()
        too_large = await exchange(port, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
                                         b"01234567890", until_closed=True)
        await server.stop(1)
        return interim, final, too_large

    interim, final, too_large = asyncio.run(scenario())
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
    assert too_large.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert b"larger than 10 bytes" in too_large


def test_client_reuses_one_keep_alive_connection_for_sequential_requests():
    async def scenario():
        server, port = await started(echo)
        client = WorkerClient()
        answers = [await client.request(port, "POST", "/invocations", [("Content-Type", "application/json")],
                                        f"[{n}]".encode(), timeout=5) for n in range(3)]
        connections = len(server.connections)
        await client.close()
        await server.stop(1)
        return answers, connections

    answers, connections = asyncio.run(scenario())
    assert [a.status for a in answers] == [200, 200, 200]
    assert answers[2].body.endswith(b"[2]") and answers[2].headers["x-seen"] == "application/json"
    assert connections == 1


def test_client_large_bodies_round_trip():
    async def scenario():
        server, port = await started(echo)
        client = WorkerClient()
        body = bytes(range(256)) * 8192  # 2 MiB: written in slices under flow control
        answer = await client.request(port, "POST", "/invocations", [], body, timeout=10)
        await client.close()
        await server.stop(1)
        return answer, body

    answer, body = asyncio.run(scenario())
    assert answer.status == 200 and answer.body.endswith(body)


def test_client_time_limit_and_a_worker_that_goes_away():
    async def scenario():
        hung: list[asyncio.Future] = []

        def never_answers(request: Request) -> asyncio.Future:
            hung.append(asyncio.get_running_loop().create_future())
            return hung[-1]

        server, port = await started(never_answers)
        client = WorkerClient()
        with pytest.raises(TimeoutError):
            await client.request(port, "POST", "/invocations", [], b"{}", timeout=0.2)
        outcome = asyncio.ensure_future(client.request(port, "POST", "/invocations", [], b"{}", timeout=30))
        while len(hung) < 2:
            await asyncio.sleep(0.01)
        for connection in list(server.connections):  # the worker dies mid-request
            connection.close()
        with pytest.raises(WorkerConnectionError, match="closed the connection"):
            await outcome
        await server.stop(1)
        with pytest.raises(WorkerConnectionError, match="Cannot connect"):
            await client.request(port, "POST", "/invocations", [], b"{}", timeout=5)
        pooled = client.pooled_ports  # a worker that went away leaves no pool behind
        await client.close()
        return port, pooled

    port, pooled = asyncio.run(scenario())
    assert port not in pooled
