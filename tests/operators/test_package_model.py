"""PackageModelOperator against S3 (moto): content-addressed, idempotent, bucket created once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sagemaker_ops.operators.s3 import PackageModelOperator
from tests.operators.conftest import AwsTarget

BUCKET = "sagemaker-ops-artifacts"


def model_folder(root: Path, weights: bytes = b"weights") -> Path:
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text("def model_fn(d):\n    pass\n\ndef predict_fn(x, m):\n    return x\n")
    (root / "model.bin").write_bytes(weights)
    return root


def package(target: AwsTarget, source: Path, **kwargs) -> dict:
    operator = PackageModelOperator(
        task_id="package_model",
        source_dir=str(source),
        bucket=BUCKET,
        key_prefix="models/demo",
        aws_conn_id=target.conn_id,
        **kwargs,
    )
    return operator.execute({})


def test_first_run_creates_the_bucket_and_uploads_content_addressed(moto: AwsTarget, tmp_path: Path):
    result = package(moto, model_folder(tmp_path / "model"))

    assert result["uploaded"] is True
    assert result["key"] == f"models/demo/{result['sha256']}/model.tar.gz"
    assert result["s3_uri"] == f"s3://{BUCKET}/{result['key']}"
    body = moto.client("s3").get_object(Bucket=BUCKET, Key=result["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == result["sha256"]
    assert len(body) == result["size_bytes"]
    head = moto.client("s3").head_object(Bucket=BUCKET, Key=result["key"])
    assert head["Metadata"] == {"sha256": result["sha256"]}


def test_second_run_uploads_nothing(moto: AwsTarget, tmp_path: Path):
    source = model_folder(tmp_path / "model")
    first = package(moto, source)
    second = package(moto, source)

    assert second == {**first, "uploaded": False}
    listed = moto.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [item["Key"] for item in listed] == [first["key"]]


def test_a_changed_model_gets_a_new_key(moto: AwsTarget, tmp_path: Path):
    first = package(moto, model_folder(tmp_path / "v1", b"weights v1"))
    second = package(moto, model_folder(tmp_path / "v2", b"weights v2"))
    assert first["sha256"] != second["sha256"]
    assert second["uploaded"] is True


def test_missing_bucket_without_create_bucket_is_explained(moto: AwsTarget, tmp_path: Path):
    with pytest.raises(ValueError, match=f"Bucket {BUCKET} does not exist; create it or set create_bucket=True"):
        package(moto, model_folder(tmp_path / "model"), create_bucket=False)


def test_source_dir_is_validated_at_execute_time(moto: AwsTarget, tmp_path: Path):
    with pytest.raises(ValueError, match="source_dir .* is not a folder on this worker"):
        package(moto, tmp_path / "missing")


def test_result_is_json_serialisable(moto: AwsTarget, tmp_path: Path):
    import json

    result = package(moto, model_folder(tmp_path / "model"))
    assert json.loads(json.dumps(result)) == result
