"""Operators that put model artifacts into Amazon S3."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from sagemaker_ops.packaging import build_model_archive, content_addressed_key

if TYPE_CHECKING:
    from airflow.sdk import Context


class PackageModelOperator(AwsBaseOperator[S3Hook]):
    """
    Package a model source folder as a deterministic ``model.tar.gz`` and upload it content-addressed.

    If the folder holds ``build.py`` it is run first (``python build.py --output <tmp>``) and its
    output is packaged; otherwise the folder itself is. The layout is checked (``code/inference.py``
    must define the handler contract), symlinks and paths escaping the folder are refused. The
    archive goes to ``s3://<bucket>/<key_prefix>/<sha256>/model.tar.gz``: an object already at that
    key holds the same bytes, so a re-run uploads nothing.

    Returns ``{"s3_uri", "sha256", "uploaded", "size_bytes", "bucket", "key"}``.

    :param source_dir: the model source folder (absolute, or relative to the worker's working directory).
    :param bucket: the S3 bucket for model artifacts.
    :param key_prefix: the key prefix under which ``<sha256>/model.tar.gz`` is written.
    :param create_bucket: create ``bucket`` if it does not exist (idempotent).
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: AWS region name; also the region a new bucket is created in.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    aws_hook_class = S3Hook
    template_fields: Sequence[str] = aws_template_fields("source_dir", "bucket", "key_prefix")
    ui_color = "#f3e5ab"

    def __init__(
        self,
        *,
        source_dir: str,
        bucket: str,
        key_prefix: str = "models",
        create_bucket: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)  # lets downstream tasks use .output["<key>"]
        super().__init__(**kwargs)
        self.source_dir = source_dir
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.create_bucket = create_bucket

    def execute(self, context: Context) -> dict[str, Any]:
        source_dir = self._validated_source_dir()
        if not isinstance(self.bucket, str) or not self.bucket:
            raise ValueError(f"bucket must be a non-empty S3 bucket name, got {self.bucket!r}.")
        if not isinstance(self.key_prefix, str):
            raise ValueError(f"key_prefix must be a string, got {self.key_prefix!r}.")

        with tempfile.TemporaryDirectory(prefix="model-package-") as workdir:
            archive = build_model_archive(source_dir, Path(workdir))
            self.log.info("Built %s (%d bytes, sha256 %s)", source_dir, archive.size_bytes, archive.sha256)
            key = content_addressed_key(self.key_prefix, archive.sha256)
            self._ensure_bucket()
            uploaded = self._upload_unless_present(archive.path, key, archive.sha256, archive.size_bytes)

        s3_uri = f"s3://{self.bucket}/{key}"
        return {
            "s3_uri": s3_uri,
            "sha256": archive.sha256,
            "uploaded": uploaded,
            "size_bytes": archive.size_bytes,
            "bucket": self.bucket,
            "key": key,
        }

    def _validated_source_dir(self) -> Path:
        if not isinstance(self.source_dir, str | Path) or not str(self.source_dir):
            raise ValueError(f"source_dir must be a path to a model folder, got {self.source_dir!r}.")
        source_dir = Path(self.source_dir)
        if not source_dir.is_dir():
            raise ValueError(
                f"source_dir {str(source_dir)!r} is not a folder on this worker; point it at the model "
                "source (the folder holding build.py or code/inference.py)."
            )
        return source_dir

    def _ensure_bucket(self) -> None:
        if self.hook.check_for_bucket(self.bucket):
            return
        if not self.create_bucket:
            raise ValueError(f"Bucket {self.bucket} does not exist; create it or set create_bucket=True.")
        self.log.info("Creating bucket %s", self.bucket)
        try:
            self.hook.create_bucket(bucket_name=self.bucket, region_name=self.region_name)
        except ClientError as error:
            # Another task may have created it between our check and our call.
            if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def _upload_unless_present(self, path: Path, key: str, sha256: str, size_bytes: int) -> bool:
        existing = self.hook.head_object(key=key, bucket_name=self.bucket)
        if existing is not None and (
            existing.get("Metadata", {}).get("sha256") == sha256 or existing.get("ContentLength") == size_bytes
        ):
            self.log.info("s3://%s/%s already holds this archive; nothing to upload.", self.bucket, key)
            return False
        self.log.info("Uploading %s to s3://%s/%s", path.name, self.bucket, key)
        self.hook.get_conn().upload_file(
            str(path),
            self.bucket,
            key,
            ExtraArgs={"ContentType": "application/gzip", "Metadata": {"sha256": sha256}},
        )
        return True
