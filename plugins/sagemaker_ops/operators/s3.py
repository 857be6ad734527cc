"""Operators that put model artifacts into Amazon S3: one model archive, or the archives of a multi-model endpoint."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from sagemaker_ops.operators.base import SageMakerOpsOperator, store_arguments
from sagemaker_ops.packaging import (
    ARCHIVE_NAME_PATTERN,
    MULTI_MODEL_SUFFIX,
    ModelArchive,
    build_model_archive,
    content_addressed_key,
    multi_model_digest,
    multi_model_key,
    multi_model_prefix,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class _UploadArtifactsOperator(SageMakerOpsOperator[S3Hook]):
    """
    Shared by the packaging operators: the bucket is created once, an archive is uploaded once.

    :param bucket: the S3 bucket for model artifacts.
    :param key_prefix: the key prefix the archives are written under.
    :param create_bucket: create ``bucket`` if it does not exist (idempotent).
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: AWS region name; also the region a new bucket is created in.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    aws_hook_class = S3Hook
    ui_color = "#f3e5ab"

    @store_arguments
    def __init__(self, *, bucket: str, key_prefix: str = "models", create_bucket: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def _check_destination(self, key_prefix: Any) -> None:
        if not isinstance(self.bucket, str) or not self.bucket:
            raise ValueError(f"bucket must be a non-empty S3 bucket name, got {self.bucket!r}.")
        if not isinstance(key_prefix, str):
            raise ValueError(f"key_prefix must be a string, got {key_prefix!r}.")

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


def _source_folder(field: str, source_dir: Any) -> Path:
    if not isinstance(source_dir, str | Path) or not str(source_dir):
        raise ValueError(f"{field} must be a path to a model folder, got {source_dir!r}.")
    folder = Path(source_dir)
    if not folder.is_dir():
        raise ValueError(
            f"{field} {str(folder)!r} is not a folder on this worker; point it at the model "
            "source (the folder holding build.py or code/inference.py)."
        )
    return folder


class PackageModelOperator(_UploadArtifactsOperator):
    """
    Package a model source folder as a deterministic ``model.tar.gz`` and upload it content-addressed.

    If the folder holds ``build.py`` it is run first (``python build.py --output <tmp>``) and its
    output is packaged; otherwise the folder itself is. The layout is checked (``code/inference.py``
    must define the handler contract), symlinks and paths escaping the folder are refused. The
    archive goes to ``s3://<bucket>/<key_prefix>/<sha256>/model.tar.gz``: an object already at that
    key holds the same bytes, so a re-run uploads nothing.

    Returns ``{"s3_uri", "sha256", "uploaded", "size_bytes", "bucket", "key"}``.

    :param source_dir: the model source folder (absolute, or relative to the worker's working directory).
    :param key_prefix: the key prefix under which ``<sha256>/model.tar.gz`` is written.
    The other parameters (``bucket``, ``create_bucket``, the AWS connection) are
    :class:`_UploadArtifactsOperator`'s.
    """

    template_fields: Sequence[str] = aws_template_fields("source_dir", "bucket", "key_prefix")

    @store_arguments
    def __init__(
        self,
        *,
        source_dir: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        source_dir = _source_folder("source_dir", self.source_dir)
        self._check_destination(self.key_prefix)

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


class PackageMultiModelOperator(_UploadArtifactsOperator):
    """
    Package the models of a multi-model endpoint under one content-addressed S3 prefix.

    Each model folder is packaged as :class:`PackageModelOperator` does (``build.py`` run first,
    layout checked, deterministic bytes) and uploaded as ``<prefix>/<digest>/<name>.tar.gz``, where
    ``<digest>`` is the sha256 of every ``<name> <archive sha256>`` pair
    (:func:`~sagemaker_ops.packaging.multi_model_digest`). The prefix is the MultiModel
    container's ModelDataUrl, and ``<name>.tar.gz`` each model's TargetModel. A re-run with the
    same sources builds the same bytes and uploads nothing; a changed model gives a new prefix
    (and so a new SageMaker model), never a change under a running endpoint.

    Returns ``{"s3_uri", "sha256", "uploaded", "bucket", "prefix", "models"}`` where ``s3_uri`` is
    the prefix (ending in ``/``), ``sha256`` the digest, and ``models`` maps each name to
    ``{"target_model", "key", "sha256", "size_bytes", "uploaded"}``.

    :param models: model name to source folder, e.g. ``{"sentiment_en": "include/models/sentiment_en"}``.
        Names are letters, digits, ``.``, ``_`` or ``-``; the archive is ``<name>.tar.gz``.
    :param key_prefix: the key prefix under which ``<digest>/<name>.tar.gz`` is written.
    The other parameters (``bucket``, ``create_bucket``, the AWS connection) are
    :class:`_UploadArtifactsOperator`'s.
    """

    template_fields: Sequence[str] = aws_template_fields("models", "bucket", "key_prefix")
    template_fields_renderers: ClassVar[dict] = {"models": "json"}

    @store_arguments
    def __init__(
        self,
        *,
        models: dict[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        sources = self._validated_models()
        self._check_destination(self.key_prefix)
        with tempfile.TemporaryDirectory(prefix="multi-model-package-") as workdir:
            archives = {name: self._build(name, source, Path(workdir) / name) for name, source in sources.items()}
            digest = multi_model_digest({name: archive.sha256 for name, archive in archives.items()})
            self._ensure_bucket()
            models = {name: self._upload(name, archive, digest) for name, archive in archives.items()}
        prefix = multi_model_prefix(self.key_prefix, digest)
        return {
            "s3_uri": f"s3://{self.bucket}/{prefix}",
            "sha256": digest,
            "uploaded": any(model["uploaded"] for model in models.values()),
            "bucket": self.bucket,
            "prefix": prefix,
            "models": models,
        }

    def _validated_models(self) -> dict[str, Path]:
        if not isinstance(self.models, Mapping) or not self.models:
            raise ValueError(f"models must map at least one model name to its source folder, got {self.models!r}.")
        for name in self.models:
            if not isinstance(name, str) or not ARCHIVE_NAME_PATTERN.match(name) or name.endswith(MULTI_MODEL_SUFFIX):
                raise ValueError(
                    f"models: {name!r} is not a valid model name (letters, digits, '.', '_' or '-', "
                    "at most 63, without .tar.gz: the archive is <name>.tar.gz)."
                )
        return {name: _source_folder(f"models[{name!r}]", source) for name, source in sorted(self.models.items())}

    def _build(self, name: str, source: Path, workdir: Path) -> ModelArchive:
        workdir.mkdir()
        archive = build_model_archive(source, workdir)
        self.log.info("Built %s from %s (%d bytes, sha256 %s)", name, source, archive.size_bytes, archive.sha256)
        return archive

    def _upload(self, name: str, archive: ModelArchive, digest: str) -> dict[str, Any]:
        key = multi_model_key(self.key_prefix, digest, name)
        uploaded = self._upload_unless_present(archive.path, key, archive.sha256, archive.size_bytes)
        return {
            "target_model": key.rsplit("/", 1)[1],
            "key": key,
            "sha256": archive.sha256,
            "size_bytes": archive.size_bytes,
            "uploaded": uploaded,
        }
