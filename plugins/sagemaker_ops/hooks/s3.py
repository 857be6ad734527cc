"""S3 hook for the files operators exchange: JSON documents, reports, datasets, by ``s3://`` URI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook


class S3OpsHook(S3Hook):
    """
    The provider's :class:`~airflow.providers.amazon.aws.hooks.s3.S3Hook`, addressed by ``s3://`` URIs.

    Adds what the operators of this project do with S3 over and over: does an object exist, read or
    write one JSON document, upload a file unless the same bytes are already there (by a ``sha256``
    metadata entry), download to a path.
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
