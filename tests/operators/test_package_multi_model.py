"""PackageMultiModelOperator against S3 (moto): one content-addressed prefix per set of archives."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagemaker_ops.operators.s3 import PackageMultiModelOperator
from sagemaker_ops.packaging import multi_model_digest
from tests.operators.conftest import AwsTarget

BUCKET = "sagemaker-ops-artifacts"


def model_folder(root: Path, weights: bytes) -> Path:
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text("def model_fn(d):\n    pass\n\ndef predict_fn(x, m):\n    return x\n")
    (root / "model.bin").write_bytes(weights)
    return root


def package(target: AwsTarget, models: dict[str, Path]) -> dict:
    return PackageMultiModelOperator(
        task_id="package_model", models={name: str(path) for name, path in models.items()}, bucket=BUCKET,
        key_prefix="models/sentiment", aws_conn_id=target.conn_id,
    ).execute({})


def test_archives_land_under_one_prefix_named_by_their_digest_and_a_rerun_uploads_nothing(moto, tmp_path):
    models = {"en": model_folder(tmp_path / "en", b"english"), "de": model_folder(tmp_path / "de", b"german")}
    first = package(moto, models)
    second = package(moto, models)

    digest = multi_model_digest({name: model["sha256"] for name, model in first["models"].items()})
    assert first["sha256"] == digest
    assert first["s3_uri"] == f"s3://{BUCKET}/models/sentiment/{digest}/"
    assert {name: model["target_model"] for name, model in first["models"].items()} == {
        "de": "de.tar.gz", "en": "en.tar.gz"}
    listed = moto.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"models/sentiment/{digest}/")["Contents"]
    assert sorted(item["Key"] for item in listed) == [f"models/sentiment/{digest}/de.tar.gz",
                                                      f"models/sentiment/{digest}/en.tar.gz"]
    assert first["uploaded"] is True and second["uploaded"] is False
    assert not any(model["uploaded"] for model in second["models"].values())
    assert {**second, "uploaded": True, "models": first["models"]} == first


def test_a_changed_model_gives_a_new_prefix(moto, tmp_path):
    first = package(moto, {"en": model_folder(tmp_path / "en", b"v1"), "de": model_folder(tmp_path / "de", b"x")})
    (tmp_path / "en" / "model.bin").write_bytes(b"v2")
    second = package(moto, {"en": tmp_path / "en", "de": tmp_path / "de"})
    assert second["s3_uri"] != first["s3_uri"]
    assert second["models"]["de"]["sha256"] == first["models"]["de"]["sha256"]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({}, "models must map at least one model name to its source folder"),
        ({"en.tar.gz": "."}, "'en.tar.gz' is not a valid model name"),
        ({"en glish": "."}, "'en glish' is not a valid model name"),
        ({"en": "/does/not/exist"}, "models['en'] '/does/not/exist' is not a folder on this worker"),
    ],
)
def test_bad_models_are_refused_before_any_aws_call(models, message):
    operator = PackageMultiModelOperator(task_id="package_model", models=models, bucket=BUCKET,
                                         aws_conn_id="no-such-connection")
    with pytest.raises(ValueError) as raised:
        operator.execute({})
    assert message in str(raised.value)
