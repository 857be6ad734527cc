"""SigV4 request signing for the load generator (botocore's signer; no gevent, so tests can import it)."""

from __future__ import annotations

import os
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class Signer:
    """SigV4 headers for one request (same URL and body every time), signed again each new second.

    A SigV4 signature covers the method, URL, headers, body and ``X-Amz-Date`` (seconds): within one
    second the same request signs to the same headers, so they are computed once a second, not per
    request (signing costs about as much as sending).
    """

    def __init__(self, url: str, body: bytes, headers: dict[str, str], region: str, service: str = "sagemaker"):
        self.url, self.body, self.base_headers = url, body, headers
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        credentials = Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN")) if key and secret else None
        self.auth = SigV4Auth(credentials, service, region) if credentials else None
        self._second, self._headers = -1, dict(headers)

    def headers(self) -> dict[str, str]:
        second = int(time.time())
        if self.auth is not None and second != self._second:
            request = AWSRequest(method="POST", url=self.url, data=self.body, headers=dict(self.base_headers))
            self.auth.add_auth(request)
            self._second, self._headers = second, dict(request.headers.items())
        return self._headers
