"""S3 addresses, read one way everywhere in the emulator.

SageMaker takes S3 locations as ``s3://bucket/key`` and, in a few places (asynchronous inference's
InputLocation, output paths), as https URLs in virtual-hosted or path style. Every part of the
emulator that splits or builds one goes through here.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote

SCHEME = "s3://"


class S3Location(NamedTuple):
    """A bucket and a key (the key may be a prefix, or empty for the bucket's root)."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://bucket/key``, ``https://bucket.s3[.region].amazonaws.com/key`` or ``https://host/bucket/key``."""
    scheme, separator, rest = uri.partition("://")
    if not separator:
        raise ValueError(f"{uri!r} is not an S3 URI: it must look like s3://bucket/key.")
    host, _, path = rest.partition("/")
    if scheme == "s3":
        return S3Location(host, unquote(path))
    if ".s3" in host and not host.startswith("s3"):  # bucket.s3[.region].amazonaws.com/key
        return S3Location(host.split(".s3", 1)[0], unquote(path))
    bucket, _, key = path.partition("/")
    return S3Location(bucket, unquote(key))


def is_s3_uri(value: str) -> bool:
    """An ``s3://`` URI with a bucket name (what the emulator can read and write)."""
    return value.startswith(SCHEME) and bool(value[len(SCHEME):].partition("/")[0])


def join_s3_uri(base: str, *parts: str) -> str:
    """``base`` and relative parts with exactly one slash between each (empty parts are skipped)."""
    pieces = [base.rstrip("/")] + [part.strip("/") for part in parts if part and part.strip("/")]
    return "/".join(pieces)
