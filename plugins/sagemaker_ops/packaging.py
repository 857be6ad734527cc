"""Build a deterministic, validated ``model.tar.gz`` from a model source folder.

Pure helpers: no Airflow, no AWS. The same inputs always give the same bytes (sorted entries,
zeroed times and owners, normalised modes, gzip header without time or file name), so the
archive's sha256 can address it in S3 and a re-run uploads nothing.

Layout contract (SageMaker's framework containers and the sagemaker-inference-toolkit)::

    model.tar.gz
    ├── <model artifacts>      e.g. model.joblib
    └── code/
        └── inference.py       model_fn plus predict_fn (with optional input_fn/output_fn) or transform_fn
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import os
import re
import stat
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

ENTRY_POINT = Path("code") / "inference.py"
BUILD_SCRIPT = "build.py"
ARCHIVE_NAME = "model.tar.gz"

# Generated files that would make the archive depend on which interpreter touched the folder.
_IGNORED_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache"})
_IGNORED_SUFFIXES = (".pyc", ".pyo")
_IGNORED_NAMES = frozenset({".DS_Store"})

_HANDLER_STAGES = ("input_fn", "predict_fn", "output_fn")


class ModelPackagingError(ValueError):
    """The model source cannot be packaged; the message says what to fix."""


@dataclass(frozen=True)
class ModelArchive:
    """A built archive: where it is, its sha256 (hex) and its size in bytes."""

    path: Path
    sha256: str
    size_bytes: int


def build_model_archive(source_dir: Path, output_dir: Path) -> ModelArchive:
    """
    Validate ``source_dir`` and write ``output_dir/model.tar.gz`` from it.

    If ``source_dir`` contains ``build.py``, run it first (``python build.py --output <tmp>``)
    and package what it writes; otherwise package ``source_dir`` itself.

    :param source_dir: the model source folder.
    :param output_dir: an existing folder (outside ``source_dir``) for the archive and build output.
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise ModelPackagingError(f"Model source folder {source_dir} does not exist or is not a folder.")
    content_dir = source_dir
    if (source_dir / BUILD_SCRIPT).is_file():
        content_dir = run_build_script(source_dir, Path(output_dir) / "build")
    check_inference_contract(content_dir)
    return write_archive(content_dir, Path(output_dir) / ARCHIVE_NAME)


def run_build_script(source_dir: Path, build_dir: Path) -> Path:
    """Run ``source_dir/build.py --output build_dir`` with this interpreter; return ``build_dir``."""
    build_dir = build_dir.resolve()  # the script runs in source_dir: a relative path would land there
    build_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, BUILD_SCRIPT, "--output", str(build_dir)]
    result = subprocess.run(command, cwd=source_dir, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output_tail = (result.stderr or result.stdout).strip()[-2000:]
        raise ModelPackagingError(
            f"{source_dir / BUILD_SCRIPT} failed with exit code {result.returncode}:\n{output_tail}"
        )
    return build_dir


def check_inference_contract(content_dir: Path) -> None:
    """
    Check that ``code/inference.py`` exists and defines the handler contract.

    The module is parsed with :mod:`ast`, never imported: importing would run model code (and
    its heavy imports) inside the Airflow worker.
    """
    entry_point = content_dir / ENTRY_POINT
    if not entry_point.is_file():
        raise ModelPackagingError(
            f"{entry_point} is missing: the model's inference handler must be at {ENTRY_POINT.as_posix()} "
            "inside the archive (the container puts <model_dir>/code on sys.path and imports inference)."
        )
    try:
        tree = ast.parse(entry_point.read_text(encoding="utf-8"), filename=str(entry_point))
    except SyntaxError as error:
        raise ModelPackagingError(f"{entry_point} is not valid Python: {error}") from error
    problem = _contract_problem(_top_level_names(tree))
    if problem:
        raise ModelPackagingError(f"{entry_point}: {problem}")


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a module defines at top level: functions, assignments and imports."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _contract_problem(defined: set[str]) -> str | None:
    if "model_fn" not in defined:
        return "defines no model_fn(model_dir); the container cannot load the model without it."
    if "transform_fn" in defined:
        mixed = sorted(defined.intersection(_HANDLER_STAGES))
        if mixed:
            return f"defines transform_fn together with {', '.join(mixed)}; define one or the other."
        return None
    if "predict_fn" not in defined:
        return "defines neither predict_fn nor transform_fn; define predict_fn (plus optional input_fn/output_fn)."
    return None


def write_archive(content_dir: Path, archive_path: Path) -> ModelArchive:
    """Write a reproducible gzip-compressed tar of ``content_dir``'s contents (paths relative to it)."""
    content_dir = Path(content_dir)
    entries = list(iter_archive_entries(content_dir))
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    with open(archive_path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
    ) as compressed, tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in entries:
            _add_entry(tar, content_dir / relative, relative)
    return ModelArchive(path=archive_path, sha256=sha256_of(archive_path), size_bytes=archive_path.stat().st_size)


def iter_archive_entries(content_dir: Path) -> list[str]:
    """
    Return the archive's entries (POSIX paths relative to ``content_dir``), sorted.

    Refuses symlinks, special files and anything that resolves outside ``content_dir``: a model
    archive is extracted on the serving host, so it must not point anywhere else.
    """
    root = content_dir.resolve()
    entries: list[str] = []
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [name for name in dirnames if name not in _IGNORED_DIRS]
        for name in dirnames + filenames:
            if name in _IGNORED_NAMES or name.endswith(_IGNORED_SUFFIXES):
                continue
            path = Path(current) / name
            _refuse_unsafe(path, root)
            entries.append(path.relative_to(root).as_posix())
    if not entries:
        raise ModelPackagingError(f"Model folder {content_dir} is empty.")
    return sorted(entries)


def _refuse_unsafe(path: Path, root: Path) -> None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        raise ModelPackagingError(f"{path} is a symlink; model archives must hold regular files only.")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ModelPackagingError(f"{path} is not a regular file or folder.")
    if not path.resolve().is_relative_to(root):
        raise ModelPackagingError(f"{path} resolves outside the model folder {root}.")


def _add_entry(tar: tarfile.TarFile, path: Path, relative: str) -> None:
    info = tar.gettarinfo(str(path), arcname=relative)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isdir():
        info.mode = 0o755
        tar.addfile(info)
        return
    info.mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
    with open(path, "rb") as handle:
        tar.addfile(info, handle)


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_addressed_key(prefix: str, sha256: str) -> str:
    """S3 key for an archive: ``<prefix>/<sha256>/model.tar.gz`` (the same bytes, the same key)."""
    prefix = prefix.strip("/")
    return f"{prefix}/{sha256}/{ARCHIVE_NAME}" if prefix else f"{sha256}/{ARCHIVE_NAME}"


# -- multi-model endpoints ----------------------------------------------------------------------------

MULTI_MODEL_SUFFIX = ".tar.gz"
# A multi-model archive name: the object is <name>.tar.gz under the model's S3 prefix.
ARCHIVE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def multi_model_digest(archive_hashes: dict[str, str]) -> str:
    """
    Hex sha256 naming a set of multi-model archives: of the sorted ``<name> <sha256>`` lines.

    It changes when any archive changes, or a model is added, removed or renamed, so one prefix
    always holds one exact set of models (an MME's ModelDataUrl never changes under it).
    """
    lines = "".join(f"{name} {sha256}\n" for name, sha256 in sorted(archive_hashes.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def multi_model_prefix(prefix: str, digest: str) -> str:
    """The S3 key prefix of a multi-model set, ``<prefix>/<digest>/`` (an MME's ModelDataUrl ends in /)."""
    prefix = prefix.strip("/")
    return f"{prefix}/{digest}/" if prefix else f"{digest}/"


def multi_model_key(prefix: str, digest: str, name: str) -> str:
    """S3 key of one model of a multi-model set: ``<prefix>/<digest>/<name>.tar.gz``."""
    return f"{multi_model_prefix(prefix, digest)}{name}{MULTI_MODEL_SUFFIX}"
