"""A minimal HTTP/1.1 keep-alive client for the load generator's hot path: one pre-encoded request, many times.

Why not Locust's FastHttpSession (geventhttpclient)? Measured on this project's 2-core machine against
the emulator (``bench/load_generator.py``): it spends ~270 us of CPU per request (URL parsing, header
objects, redirects, cookies), the generator then takes a third of the CPU the endpoint needs and
reaches about half of wrk's throughput; this client spends ~80 us (one ``sendall`` of bytes built once a
second, a Content-Length or chunked read) and reaches 80% or more. Plain sockets: under Locust they are
gevent's (monkey-patched), so a blocked read yields to the other users.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024


class ConnectionClosed(OSError):
    """The server closed the connection before a whole answer arrived."""


def encode_request(method: str, url: str, headers: dict[str, str], body: bytes) -> bytes:
    """The request's bytes on the wire: request line, Host, the headers, Content-Length, the body."""
    parts = urlsplit(url)
    lines = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
             f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() not in ("host", "content-length")]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class KeepAliveConnection:
    """One persistent connection to ``url``'s host (TLS for https), reopened when the server closes it;
    ``timeout`` bounds connecting."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.address = (parts.hostname or "localhost", parts.port or (443 if self.tls else 80))
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def request(self, data: bytes) -> tuple[int, bytes]:
        """Send ``data`` (a whole request), read the answer: ``(status, body)``. A reused connection the
        server had closed is reopened once and the request sent again (nothing of it was answered)."""
        reused = self.sock is not None
        try:
            return self._exchange(data)
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            return self._exchange(data)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _exchange(self, data: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(data)
        head = self._read_head()
        status = int(head[9:12])
        fields = head.lower()  # one search per header instead of a parsed mapping: this runs per request
        if b"\r\ntransfer-encoding: chunked" in fields:
            body = self._read_chunked()
        else:
            body = self._read_exactly(_content_length(fields))
        if b"\r\nconnection: close" in fields:
            self.close()
        return status, body

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # No timeout on reads (a gevent timer per read costs CPU on every request): the test's end
        # bounds a request that never gets an answer, and counts it unfinished.
        sock.settimeout(None)
        if self.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.address[0])
        return sock

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed("the server closed the connection")
        self.buffer += chunk

    def _read_head(self) -> bytes:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ConnectionClosed("response head too large")
            self._fill()
        head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
        return head

    def _read_exactly(self, length: int) -> bytes:
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def _read_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
        return line

    def _read_chunked(self) -> bytes:
        body = b""
        while size := int(self._read_line().split(b";")[0], 16):
            body += self._read_exactly(size)
            self._read_line()
        while self._read_line():  # trailers, up to the empty line
            pass
        return body


def _content_length(head: bytes) -> int:
    """The Content-Length of a lower-cased response head (0 without one)."""
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    end = head.find(b"\r\n", start + 2)
    return int(head[start + 17:end if end >= 0 else None])
