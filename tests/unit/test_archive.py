"""Safe extraction of model.tar.gz: what is extracted, and every kind of member that is refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from sagemaker_emulator.runtime.archive import (
    InvalidArchiveError,
    UnsafeArchiveError,
    extract_model_archive,
)


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def _write_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "sandbox" / "model"


def test_good_archive_extracts_files_and_directories(tmp_path: Path, dest: Path) -> None:
    code_dir = tarfile.TarInfo("code")
    code_dir.type, code_dir.mode = tarfile.DIRTYPE, 0o755
    tar = _write_archive(
        tmp_path / "model.tar.gz",
        [
            (code_dir, None),
            _file("code/inference.py", b"def model_fn(d): return 1\n"),
            _file("./weights/w.bin", b"\x00" * 100),
        ],
    )

    written = extract_model_archive(tar, dest)

    assert (dest / "code" / "inference.py").read_text() == "def model_fn(d): return 1\n"
    assert (dest / "weights" / "w.bin").stat().st_size == 100
    assert written == len(b"def model_fn(d): return 1\n") + 100


def test_modes_are_normalised(tmp_path: Path, dest: Path) -> None:
    tar = _write_archive(
        tmp_path / "model.tar.gz",
        [
            _file("setuid-tool", mode=0o4777),
            _file("shared.txt", mode=0o666),
            _file("readonly.txt", mode=0o400),
        ],
    )

    extract_model_archive(tar, dest)

    assert (dest / "setuid-tool").stat().st_mode & 0o7777 == 0o755
    assert (dest / "shared.txt").stat().st_mode & 0o7777 == 0o644
    assert (dest / "readonly.txt").stat().st_mode & 0o7777 == 0o644


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_file("/etc/evil"), "absolute path"),
        (_file("../evil"), 'escapes the model directory through ".."'),
        (_file("code/../../evil"), 'escapes the model directory through ".."'),
        (_special("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_special("inside-link", tarfile.SYMTYPE, "code/inference.py"), "symbolic link"),
        (_special("hard", tarfile.LNKTYPE, "code/inference.py"), "hard link"),
        (_special("tty", tarfile.CHRTYPE), "device file"),
        (_special("disk", tarfile.BLKTYPE), "device file"),
        (_special("pipe", tarfile.FIFOTYPE), "FIFO"),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "symlink-out", "symlink-in", "hardlink", "chardev", "blockdev", "fifo"],
)
def test_unsafe_member_is_refused_by_name(tmp_path: Path, dest: Path, member, why: str) -> None:
    tar = _write_archive(tmp_path / "model.tar.gz", [_file("code/inference.py"), member])

    with pytest.raises(UnsafeArchiveError) as refused:
        extract_model_archive(tar, dest)

    name = member[0].name
    assert refused.value.member_name == name
    assert f'"{name}"' in str(refused.value)
    assert why in str(refused.value)
    assert not (tmp_path / "sandbox" / "evil").exists()
    assert not (tmp_path / "evil").exists()


def test_total_size_cap_names_the_member_that_crosses_it(tmp_path: Path, dest: Path) -> None:
    tar = _write_archive(
        tmp_path / "model.tar.gz",
        [_file("a.bin", b"a" * 600), _file("b.bin", b"b" * 600)],
    )

    with pytest.raises(UnsafeArchiveError, match='"b.bin" is too large') as refused:
        extract_model_archive(tar, dest, max_bytes=1000)

    assert "1000-byte limit" in str(refused.value)
    assert not (dest / "b.bin").exists()


def test_size_exactly_at_the_cap_is_allowed(tmp_path: Path, dest: Path) -> None:
    tar = _write_archive(tmp_path / "model.tar.gz", [_file("a.bin", b"a" * 1000)])

    assert extract_model_archive(tar, dest, max_bytes=1000) == 1000


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a gzip file",
        b"",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",  # a gzip header and nothing after it
    ],
    ids=["not-gzip", "empty", "truncated-gzip"],
)
def test_non_tar_gz_is_invalid(tmp_path: Path, dest: Path, content: bytes) -> None:
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(content)

    with pytest.raises(InvalidArchiveError, match="not a valid tar.gz archive"):
        extract_model_archive(bad, dest)


def test_gzip_of_something_other_than_tar_is_invalid(tmp_path: Path, dest: Path) -> None:
    import gzip

    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(gzip.compress(b"just some text, not a tar stream"))

    with pytest.raises(InvalidArchiveError):
        extract_model_archive(bad, dest)


def test_truncated_archive_is_invalid(tmp_path: Path, dest: Path) -> None:
    good = _write_archive(tmp_path / "good.tar.gz", [_file("big.bin", bytes(range(256)) * 4000)])
    truncated = tmp_path / "model.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])

    with pytest.raises(InvalidArchiveError):
        extract_model_archive(truncated, dest)
