"""AWS backends for operator tests.

``moto``: a moto server in this process (S3 and the SageMaker control plane; endpoints are
instantly InService; no UpdateEndpoint, no runtime), behind the Airflow connection ``moto``.
``emulator_aws``: the project's emulator (tests/conftest.py starts it), behind ``aws_default``.
Both are reached over HTTP, so the deferred path (aiobotocore) works too.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REGION = "us-east-1"
MOTO_CONN_ID = "moto"


@dataclass(frozen=True)
class AwsTarget:
    """Where an operator under test talks to: its connection id and the same address for assertions."""

    conn_id: str
    url: str

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> AwsTarget:
    """A freshly reset moto server and an Airflow connection ``moto`` pointing at it."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).close()
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"region_name": REGION, "endpoint_url": moto_url},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{MOTO_CONN_ID.upper()}", json.dumps(connection))
    return AwsTarget(conn_id=MOTO_CONN_ID, url=moto_url)


@pytest.fixture
def emulator_aws(emulator) -> AwsTarget:
    """The running emulator, reached through the ``aws_default`` connection tests/conftest.py defines."""
    return AwsTarget(conn_id="aws_default", url=emulator.url)
