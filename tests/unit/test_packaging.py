"""Deterministic model.tar.gz: same inputs, same bytes; layout checks; unsafe trees refused."""

from __future__ import annotations

import gzip
import os
import tarfile
import time
from pathlib import Path

import pytest

from sagemaker_ops.packaging import (
    ModelPackagingError,
    build_model_archive,
    check_inference_contract,
    content_addressed_key,
    write_archive,
)

HANDLER = "def model_fn(model_dir):\n    return None\n\n\ndef predict_fn(data, model):\n    return data\n"


def make_model_folder(root: Path, handler: str = HANDLER) -> Path:
    (root / "code").mkdir(parents=True)
    (root / "code" / "inference.py").write_text(handler)
    (root / "model.bin").write_bytes(b"\x00weights\x01")
    return root


def test_same_inputs_give_the_same_bytes_whatever_the_times_and_modes(tmp_path: Path):
    first = make_model_folder(tmp_path / "a")
    second = make_model_folder(tmp_path / "b")
    # Different mtimes and group/other permission bits must not change the archive.
    os.utime(second / "model.bin", (time.time() - 86400, time.time() - 86400))
    os.chmod(second / "model.bin", 0o664)

    archive_a = write_archive(first, tmp_path / "out-a" / "model.tar.gz")
    archive_b = write_archive(second, tmp_path / "out-b" / "model.tar.gz")

    assert archive_a.sha256 == archive_b.sha256
    assert archive_a.path.read_bytes() == archive_b.path.read_bytes()


def test_archive_entries_are_sorted_and_normalised(tmp_path: Path):
    folder = make_model_folder(tmp_path / "model")
    (folder / "code" / "__pycache__").mkdir()
    (folder / "code" / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"junk")
    archive = write_archive(folder, tmp_path / "model.tar.gz")

    with tarfile.open(archive.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["code", "code/inference.py", "model.bin"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.name: oct(m.mode) for m in members} == {
        "code": "0o755",
        "code/inference.py": "0o644",
        "model.bin": "0o644",
    }


def test_gzip_header_has_no_time_and_no_file_name(tmp_path: Path):
    archive = write_archive(make_model_folder(tmp_path / "model"), tmp_path / "model.tar.gz")
    header = archive.path.read_bytes()[:10]
    flags, mtime = header[3], int.from_bytes(header[4:8], "little")
    assert mtime == 0
    assert not flags & 0x08  # FNAME
    assert gzip.decompress(archive.path.read_bytes())  # still a valid gzip stream


def test_size_and_sha256_describe_the_file(tmp_path: Path):
    import hashlib

    archive = write_archive(make_model_folder(tmp_path / "model"), tmp_path / "model.tar.gz")
    assert archive.size_bytes == archive.path.stat().st_size
    assert archive.sha256 == hashlib.sha256(archive.path.read_bytes()).hexdigest()


def test_symlinks_are_refused(tmp_path: Path):
    folder = make_model_folder(tmp_path / "model")
    (folder / "link.bin").symlink_to(folder / "model.bin")
    with pytest.raises(ModelPackagingError, match="link.bin is a symlink"):
        write_archive(folder, tmp_path / "model.tar.gz")


def test_a_symlinked_folder_escaping_the_tree_is_refused(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = make_model_folder(tmp_path / "model")
    (folder / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelPackagingError, match="escape is a symlink"):
        write_archive(folder, tmp_path / "model.tar.gz")


def test_special_files_are_refused(tmp_path: Path):
    folder = make_model_folder(tmp_path / "model")
    os.mkfifo(folder / "pipe")
    with pytest.raises(ModelPackagingError, match="not a regular file"):
        write_archive(folder, tmp_path / "model.tar.gz")


@pytest.mark.parametrize(
    ("handler", "problem"),
    [
        ("def predict_fn(data, model):\n    pass\n", "defines no model_fn"),
        ("def model_fn(model_dir):\n    pass\n", "defines neither predict_fn nor transform_fn"),
        (
            "def model_fn(d):\n    pass\ndef transform_fn(m, b, c, a):\n    pass\ndef input_fn(b, c):\n    pass\n",
            "transform_fn together with input_fn",
        ),
        ("def model_fn(:\n", "is not valid Python"),
    ],
)
def test_broken_handler_contracts_are_explained(tmp_path: Path, handler: str, problem: str):
    folder = make_model_folder(tmp_path / "model", handler)
    with pytest.raises(ModelPackagingError, match=problem):
        check_inference_contract(folder)


def test_transform_fn_alone_and_imported_names_satisfy_the_contract(tmp_path: Path):
    transform_only = "def model_fn(d): ...\ndef transform_fn(m, b, c, a): ...\n"
    check_inference_contract(make_model_folder(tmp_path / "a", transform_only))
    check_inference_contract(make_model_folder(tmp_path / "b", "from handlers import model_fn, predict_fn\n"))


def test_handler_is_parsed_not_imported(tmp_path: Path):
    handler = "raise SystemExit('imported!')\n" + HANDLER
    check_inference_contract(make_model_folder(tmp_path / "model", handler))


def test_missing_entry_point_names_the_expected_path(tmp_path: Path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"w")
    with pytest.raises(ModelPackagingError, match="code/inference.py"):
        build_model_archive(folder, tmp_path / "out")


def test_build_script_output_is_packaged_instead_of_the_folder(tmp_path: Path):
    source = tmp_path / "source"
    make_model_folder(source)
    (source / "build.py").write_text(
        "import argparse, pathlib, shutil\n"
        "parser = argparse.ArgumentParser(); parser.add_argument('--output')\n"
        "out = pathlib.Path(parser.parse_args().output)\n"
        "shutil.copytree('code', out / 'code')\n"
        "(out / 'weights.bin').write_bytes(b'built')\n"
    )
    archive = build_model_archive(source, tmp_path / "out")
    with tarfile.open(archive.path) as tar:
        assert sorted(tar.getnames()) == ["code", "code/inference.py", "weights.bin"]


def test_a_failing_build_script_reports_its_output(tmp_path: Path):
    source = make_model_folder(tmp_path / "source")
    (source / "build.py").write_text("import sys\nsys.exit('no training data')\n")
    with pytest.raises(ModelPackagingError, match="(?s)exit code 1.*no training data"):
        build_model_archive(source, tmp_path / "out")


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("models/iris", "models/iris/abc/model.tar.gz"),
        ("/models/iris/", "models/iris/abc/model.tar.gz"),
        ("", "abc/model.tar.gz"),
    ],
)
def test_content_addressed_key(prefix: str, key: str):
    assert content_addressed_key(prefix, "abc") == key
