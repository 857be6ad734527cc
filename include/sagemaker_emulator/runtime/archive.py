"""Safe extraction of a ``model.tar.gz`` into a model directory (the worker's ``/opt/ml/model``).

SageMaker extracts ``ModelDataUrl`` before the container starts. The archive comes from the user,
so the emulator treats it as untrusted: only regular files and directories that stay inside the
destination are written, modes are normalised, and the total size is capped.

Two layers guard every member: :func:`_check_member` (explicit rules with messages that name the
member) and ``tarfile``'s own ``filter="data"`` (defence in depth should our rules miss a case).
The archive is read in one streaming pass, so a large model is decompressed only once.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

DEFAULT_MAX_EXTRACT_BYTES = 20 * 1024**3  # 20 GiB; SageMaker volumes are at most 512 GB.


class InvalidArchiveError(Exception):
    """The file is not a readable gzip-compressed tar archive."""


class UnsafeArchiveError(Exception):
    """A member of the archive would be unsafe to extract; the message names it and says why."""

    def __init__(self, member_name: str, why: str):
        self.member_name = member_name
        super().__init__(f'Archive member "{member_name}" {why}.')


def extract_model_archive(
    tar_path: str | os.PathLike,
    dest_dir: str | os.PathLike,
    max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
) -> int:
    """Extract ``tar_path`` (a tar.gz) into ``dest_dir`` and return the number of bytes written.

    Raises :class:`InvalidArchiveError` for a corrupt or non-gzip file and
    :class:`UnsafeArchiveError` for the first member that breaks a rule. Extraction stops at the
    first bad member; the caller owns ``dest_dir`` and discards it on failure.
    """
    dest = Path(dest_dir).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    budget = _SizeBudget(max_bytes)
    try:
        # "r|gz" is the streaming mode: one sequential pass, no seeking back through the gzip.
        with tarfile.open(tar_path, mode="r|gz") as archive:
            members = (_normalised(_check_member(m, dest, budget)) for m in archive)
            archive.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as error:  # Our checks passed but tarfile's own filter objected.
        raise UnsafeArchiveError(error.tarinfo.name, f"was rejected by the tar data filter ({error})") from error
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise InvalidArchiveError(f"not a valid tar.gz archive ({error})") from error
    return budget.used


class _SizeBudget:
    """Running total of regular-file bytes, so a decompression bomb stops at the cap."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.used = 0

    def charge(self, member: tarfile.TarInfo) -> None:
        self.used += member.size
        if self.used > self.max_bytes:
            raise UnsafeArchiveError(
                member.name,
                f"is too large: extracting it brings the model to {self.used} bytes, "
                f"over the {self.max_bytes}-byte limit",
            )


def _check_member(member: tarfile.TarInfo, dest: Path, budget: _SizeBudget) -> tarfile.TarInfo:
    """Return ``member`` if it is safe to extract into ``dest``, else raise UnsafeArchiveError."""
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name):
        raise UnsafeArchiveError(name, "has an absolute path")
    if member.issym():
        raise UnsafeArchiveError(name, f'is a symbolic link (to "{member.linkname}"); links are not allowed')
    if member.islnk():
        raise UnsafeArchiveError(name, f'is a hard link (to "{member.linkname}"); links are not allowed')
    if member.ischr() or member.isblk():
        raise UnsafeArchiveError(name, "is a device file; only regular files and directories are allowed")
    if member.isfifo():
        raise UnsafeArchiveError(name, "is a FIFO; only regular files and directories are allowed")
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchiveError(name, "has an unsupported type; only regular files and directories are allowed")
    if not _stays_inside(dest, name):
        why = 'escapes the model directory through ".."' if ".." in Path(name).parts else "escapes the model directory"
        raise UnsafeArchiveError(name, why)
    if member.isreg():
        budget.charge(member)
    return member


def _stays_inside(dest: Path, name: str) -> bool:
    # realpath also catches an escape through a symlink already present in dest.
    target = os.path.realpath(os.path.join(dest, name))
    return os.path.commonpath([target, str(dest)]) == str(dest)


def _normalised(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """Give files plain permissions: rw-r--r--, or rwxr-xr-x when the owner could execute it.

    Drops setuid/setgid/sticky and group/other write whatever the archive says. Directories keep
    tarfile's default so the worker can always write into and clean up its own model dir.
    """
    if member.isreg():
        return member.replace(mode=0o755 if member.mode & 0o100 else 0o644, deep=False)
    return member

