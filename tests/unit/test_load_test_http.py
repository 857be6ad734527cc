"""The load generator's keep-alive client (sagemaker_ops.load_test.http) against a scripted local server."""

from __future__ import annotations

import socket
import threading

from sagemaker_ops.load_test.http import KeepAliveConnection, encode_request

ANSWERS = [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[2,4,6]",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[2,\r\n4\r\n4,6]\r\n0\r\n\r\n",
    b"HTTP/1.1 424 Failed Dependency\r\nContent-Length: 5\r\nConnection: close\r\n\r\nerror",
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",  # on a new connection, after the close
]


def scripted_server() -> tuple[int, list[bytes]]:
    """Answers each request with the next of ANSWERS; closes when an answer says so. Records requests."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        answers = iter(ANSWERS)
        for _ in range(2):
            connection, _ = listener.accept()
            with connection:
                for answer in answers:
                    received.append(connection.recv(65536))
                    connection.sendall(answer)
                    if b"Connection: close" in answer:
                        break
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], received


def test_content_length_chunked_and_connection_close():
    port, received = scripted_server()
    url = f"http://127.0.0.1:{port}/endpoints/iris/invocations"
    request = encode_request("POST", url, {"Content-Type": "application/json", "Authorization": "AWS4 x"}, b"[1,2,3]")
    connection = KeepAliveConnection(url)
    assert connection.request(request) == (200, b"[2,4,6]")
    assert connection.request(request) == (200, b"[2,4,6]")
    assert connection.request(request) == (424, b"error")
    assert connection.request(request) == (200, b"ok")  # reconnected after the server closed
    connection.close()
    assert received[0] == (f"POST /endpoints/iris/invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Content-Type: application/json\r\nAuthorization: AWS4 x\r\nContent-Length: 7\r\n\r\n"
                           "[1,2,3]").encode()
    assert len(received) == 4
