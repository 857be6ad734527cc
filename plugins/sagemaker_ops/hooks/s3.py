"""S3 hook for the files operators exchange: JSON documents, reports, datasets, by ``s3://`` URI."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook


class S3OpsHook(S3Hook):
    """
    The provider's :class:`~airflow.providers.amazon.aws.hooks.s3.S3Hook`, addressed by ``s3://`` URIs.

    Adds what the operators of this project do with S3 over and over: does an object exist, read or
    write one JSON document, upload a file unless the same bytes are already there (by a ``sha256``
    metadata entry), download to a path, wait for the first of several objects to appear.
    """

    def exists(self, uri: str) -> bool:
        bucket, key = self.parse_s3_url(uri)
        return self.head_object(key=key, bucket_name=bucket) is not None

    def read_text(self, uri: str) -> str:
        bucket, key = self.parse_s3_url(uri)
        return self.read_key(key=key, bucket_name=bucket)

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read_text(uri))

    def read_json_or_none(self, uri: str) -> Any:
        return self.read_json(uri) if self.exists(uri) else None

    def write_bytes(self, data: bytes, uri: str, content_type: str) -> None:
        bucket, key = self.parse_s3_url(uri)
        self.get_conn().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def write_json(self, document: Any, uri: str) -> None:
        self.write_bytes(json.dumps(document, indent=2, sort_keys=True).encode("utf-8"), uri, "application/json")

    def write_report(self, document: Any, page: str, prefix: str, name: str) -> tuple[str, str]:
        """``<prefix>/<name>.json`` and ``<prefix>/<name>.html`` (the bucket created if missing); their URIs."""
        bucket = self.parse_s3_url(prefix + "/x")[0]
        if not self.check_for_bucket(bucket):
            self.create_bucket(bucket_name=bucket)
        json_uri, html_uri = f"{prefix}/{name}.json", f"{prefix}/{name}.html"
        self.write_json(document, json_uri)
        self.write_bytes(page.encode("utf-8"), html_uri, "text/html; charset=utf-8")
        return json_uri, html_uri

    def upload(self, path: Path, uri: str, content_type: str = "application/json") -> None:
        bucket, key = self.parse_s3_url(uri)
        self.get_conn().upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})

    def upload_unless_present(self, path: Path, uri: str, sha256: str) -> bool:
        """Upload ``path`` with its sha256 as metadata, unless ``uri`` already holds those bytes; True if uploaded."""
        bucket, key = self.parse_s3_url(uri)
        existing = self.head_object(key=key, bucket_name=bucket)
        if existing is not None and existing.get("Metadata", {}).get("sha256") == sha256:
            self.log.info("%s already holds these bytes; nothing to upload.", uri)
            return False
        self.log.info("Uploading %s to %s", path.name, uri)
        self.get_conn().upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}})
        return True

    def download(self, uri: str, path: Path) -> Path:
        bucket, key = self.parse_s3_url(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.get_conn().download_file(bucket, key, str(path))
        return path

    def wait_for_any(self, uris: Sequence[str], *, waiter_delay: int, waiter_max_attempts: int) -> str | None:
        """
        Look for each of ``uris`` up to ``waiter_max_attempts`` times, ``waiter_delay`` seconds apart;
        return the first (in the order given) that exists, or None when none appeared.

        One look asks for every URI, so that e.g. an asynchronous inference's answer and its error
        are watched together (botocore's ``object_exists`` waiter watches a single key).
        """
        for attempt in range(waiter_max_attempts):
            if attempt:
                time.sleep(waiter_delay)
            found = next((uri for uri in uris if self.exists(uri)), None)
            if found is not None:
                return found
            self.log.info("Nothing at %s yet (look %d of %d).", " or ".join(uris), attempt + 1, waiter_max_attempts)
        return None
