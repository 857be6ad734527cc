"""Model worker: one OS process per endpoint instance, emulating a SageMaker inference container.

Start-up mirrors what SageMaker and the inference toolkit do before an instance passes /ping:
download ``model.tar.gz`` -> extract it safely into the model dir (``/opt/ml/model``) -> import
``code/<SAGEMAKER_PROGRAM>`` -> validate the handler contract -> ``model_fn(model_dir)`` -> listen
-> fork the other serving processes (one per vCPU, ``serving_processes.py``). The worker reports on
``--status-fd``, one JSON line per event, and closes it after the last (``ready`` or ``failed``):

    {"status": "downloaded"}            (only with model data: download and extraction are done)
    {"status": "ready", "port": 40123, "pid": 4242, "health_ports": [40124, 40125], "pids": [4242, 4250]}
    {"status": "failed", "reason": "Failed to download model data for container ..."}

``--download-timeout`` (ModelDataDownloadTimeoutInSeconds) bounds download plus extraction. A failed
start exits with code 1; its reason becomes the endpoint's FailureReason, so it is worded like AWS's.
Once ready every serving process serves ``GET /ping`` and ``POST /invocations`` until SIGTERM, running
one prediction at a time on its own inference thread so /ping stays responsive.

    python -m sagemaker_emulator.runtime.worker --model-dir DIR --status-fd N \\
        [--model-data-url URL] [--model-data-source S3URI] [--container-name NAME] \\
        [--download-timeout SECONDS] [--vcpus N] [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import signal
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import uvloop

from sagemaker_emulator.runtime.archive import (
    DEFAULT_MAX_EXTRACT_BYTES,
    InvalidArchiveError,
    UnsafeArchiveError,
    extract_model_archive,
)
from sagemaker_emulator.runtime.handler import (
    JSON,
    MissingProgramError,
    ModelLoadError,
    Transformer,
    import_user_module,
)
from sagemaker_emulator.runtime.model_server import serve
from sagemaker_emulator.runtime.serving_processes import (
    ServingProcess,
    WorkerCountError,
    bind_listeners,
    fork_serving_processes,
    serving_process_count,
)

log = logging.getLogger("sagemaker_emulator.worker")

DOWNLOAD_TIMEOUT_SECONDS = 60  # per socket operation, not for the whole download
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
MAX_REASON_CHARS = 1024  # DescribeEndpoint's FailureReason is at most 1024 characters


class StartupError(Exception):
    """The worker could not become ready; ``reason`` is the user-facing FailureReason."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class StopRequested(BaseException):
    """SIGTERM/SIGINT arrived before the server was up. A BaseException, so ``except Exception`` in a
    user's model_fn cannot swallow it."""


class StatusChannel:
    """Writes the single status line to the inherited fd, then closes it."""

    def __init__(self, fd: int):
        self._fd = fd
        self._sent = False

    @property
    def fd(self) -> int:
        return self._fd

    def downloaded(self) -> None:
        """The model data is in place: from here on the instance's start-up health check timeout runs."""
        self._write({"status": "downloaded"})

    def ready(self, process: ServingProcess) -> None:
        listeners = process.listeners
        self._send({"status": "ready", "port": listeners.port, "pid": os.getpid(),
                    "health_ports": listeners.health_ports, "pids": process.pids})

    def failed(self, reason: str) -> None:
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 3] + "..."
        self._send({"status": "failed", "reason": reason})

    def forget(self) -> None:
        """In a forked serving process: the first process reports; this one must never write (the fd
        number is closed here and may be reused)."""
        self._sent = True

    def _send(self, status: dict) -> None:
        if self._sent:
            return
        self._write(status)
        self._sent = True
        try:
            os.close(self._fd)
        except OSError:
            pass

    def _write(self, status: dict) -> None:
        if self._sent:
            return
        try:
            os.write(self._fd, (json.dumps(status) + "\n").encode("utf-8"))
        except OSError as error:  # the parent went away; nothing left to tell
            log.warning("Could not write the status line to fd %d: %s", self._fd, error)


# --- Start-up ----------------------------------------------------------------------------------


class ModelSource:
    """Where the model comes from, for log lines and failure reasons."""

    def __init__(self, args: argparse.Namespace):
        self.url = args.model_data_url
        self.s3_uri = args.model_data_source or args.model_data_url
        self.container = args.container_name

    def download_failed(self) -> StartupError:
        return StartupError(
            f'Failed to download model data for container "{self.container}" from URL: "{self.s3_uri}". '
            "Please ensure that there is an object located at the URL and that the role passed to "
            "CreateModel has permissions to download the object."
        )

    def download_timed_out(self, seconds: float) -> StartupError:
        return StartupError(download_timeout_reason(self.container, self.s3_uri, seconds))

    def describe(self) -> str:
        if self.url:
            return f'the model data for container "{self.container}" from URL: "{self.s3_uri}"'
        return f'container "{self.container}" (the model has no ModelDataUrl)'


def download_timeout_reason(container: str, s3_uri: str | None, seconds: float) -> str:
    """The FailureReason of a download that ModelDataDownloadTimeoutInSeconds cut short (the Instance
    words its own backstop the same way)."""
    return (f'Failed to download model data for container "{container}" from URL: "{s3_uri}" within '
            f"the ModelDataDownloadTimeoutInSeconds of {seconds:g} seconds. Downloading and extracting the "
            "model data must finish within that time: raise ModelDataDownloadTimeoutInSeconds (at most 3600) "
            "or make the model archive smaller.")


class DownloadTimedOut(Exception):
    """Raised by the SIGALRM handler inside whatever download or extraction call was running."""


@contextmanager
def download_deadline(seconds: float | None, source: ModelSource) -> Iterator[None]:
    """Bound download plus extraction by ``seconds`` (ModelDataDownloadTimeoutInSeconds).

    A SIGALRM interrupts the blocking socket read or extraction wherever it is, so a server that sends
    one byte a second cannot stretch the bound the way a per-read socket timeout would allow.
    """
    if not seconds:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise DownloadTimedOut()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except DownloadTimedOut:
        log.error("Downloading and extracting the model data took longer than %g s", seconds)
        raise source.download_timed_out(seconds) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_model(args: argparse.Namespace, status: StatusChannel | None = None) -> Transformer:
    """Download, extract, import and load: everything before the server may listen."""
    source = ModelSource(args)
    model_dir = Path(args.model_dir).resolve()
    model_dir.mkdir(parents=True, exist_ok=True)
    if source.url:
        # The archive goes to a scratch dir, not memory: model archives can be gigabytes.
        with tempfile.TemporaryDirectory(prefix="sagemaker-model-data-") as scratch:
            tar_path = Path(scratch) / "model.tar.gz"
            max_bytes = _max_extract_bytes()
            with download_deadline(args.download_timeout, source):
                download_model_data(source, tar_path, max_bytes)
                extract_model_data(source, tar_path, model_dir, max_bytes)
        if status is not None:
            status.downloaded()
    transformer = import_handler(source, model_dir)
    started = time.monotonic()
    try:
        transformer.load()
    except ModelLoadError as error:
        log.error("Model loading failed", exc_info=error.__cause__)
        raise StartupError(f'Failed to load the model for container "{source.container}": {error}') from error
    log.info("Model loaded in %.2f s", time.monotonic() - started)
    return transformer


def download_model_data(source: ModelSource, tar_path: Path, max_bytes: int) -> None:
    log.info('Downloading model data from "%s"', source.s3_uri)
    started = time.monotonic()
    # The emulator's S3 is local: never route it through an HTTP(S)_PROXY from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(source.url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, open(tar_path, "wb") as out:
            expected = response.headers.get("Content-Length")
            received = _copy_stream(response, out, source, max_bytes)
        if expected is not None and received != int(expected):
            raise http.client.IncompleteRead(b"", int(expected) - received)
    except (OSError, http.client.HTTPException, ValueError) as error:  # URLError/HTTPError are OSErrors
        log.error("Downloading %s failed: %s", source.url, error)
        raise source.download_failed() from error
    log.info("Downloaded %d bytes in %.2f s", received, time.monotonic() - started)


def _copy_stream(response, out, source: ModelSource, max_bytes: int) -> int:
    received = 0
    while chunk := response.read(DOWNLOAD_CHUNK_BYTES):
        received += len(chunk)
        if received > max_bytes:  # a compressed archive larger than the extraction cap cannot fit
            raise StartupError(
                f"{_capitalised(source.describe())} is larger than the {max_bytes}-byte limit "
                "(SAGEMAKER_EMULATOR_MAX_EXTRACT_BYTES)."
            )
        out.write(chunk)
    return received


def extract_model_data(source: ModelSource, tar_path: Path, model_dir: Path, max_bytes: int) -> None:
    started = time.monotonic()
    try:
        extracted = extract_model_archive(tar_path, model_dir, max_bytes)
    except InvalidArchiveError as error:
        raise StartupError(
            f"{_capitalised(source.describe())} is {error}. "
            "ModelDataUrl must point to a gzip-compressed tar file (model.tar.gz)."
        ) from error
    except UnsafeArchiveError as error:
        raise StartupError(f"{_capitalised(source.describe())} cannot be extracted safely: {error}") from error
    log.info("Extracted %d bytes into %s in %.2f s", extracted, model_dir, time.monotonic() - started)


def import_handler(source: ModelSource, model_dir: Path) -> Transformer:
    """Import code/<SAGEMAKER_PROGRAM> and bind its functions, as the toolkit does at start-up."""
    program = os.environ.get("SAGEMAKER_PROGRAM") or "inference.py"
    script_name = program if program.endswith(".py") else f"{program}.py"
    relative_script = f"code/{script_name}"
    try:
        module = import_user_module(model_dir / "code", program)
    except MissingProgramError as error:
        hint = ""
        if (model_dir / Path(script_name).name).is_file():
            hint = f" Found {Path(script_name).name} at the archive root; it must be under code/."
        raise StartupError(
            f'The inference script "{relative_script}" was not found in {source.describe()}. '
            f"Expected it at {model_dir / relative_script}.{hint}"
        ) from error
    except Exception as error:  # anything the user's module raised while being imported
        log.error("Importing %s failed", relative_script, exc_info=error)
        raise StartupError(
            f'Failed to import the inference script "{relative_script}" for container "{source.container}": '
            f"{type(error).__name__}: {error}"
        ) from error
    try:
        return Transformer(module, model_dir, os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON)
    except ValueError as error:  # the module breaks the toolkit's rules (e.g. transform_fn + predict_fn)
        raise StartupError(
            f'Invalid inference script "{relative_script}" for container "{source.container}": {error}'
        ) from error


def _max_extract_bytes() -> int:
    raw = os.environ.get("SAGEMAKER_EMULATOR_MAX_EXTRACT_BYTES")
    if not raw:
        return DEFAULT_MAX_EXTRACT_BYTES
    try:
        return int(raw)
    except ValueError:
        raise StartupError(f"SAGEMAKER_EMULATOR_MAX_EXTRACT_BYTES must be an integer, got {raw!r}") from None


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- Serving (the HTTP server itself: model_server.py) -----------------------------------------


def _multi_model_mode() -> bool:
    """SageMaker injects SAGEMAKER_MULTI_MODEL=true into a multi-model endpoint's container."""
    return os.environ.get("SAGEMAKER_MULTI_MODEL", "").strip().lower() == "true"


def _multi_model_handler(args: argparse.Namespace):
    """The multi-model server's handler and clean-up, built on the serving process's inference thread."""
    # Imported here: the module imports this one, and single-model workers never need it.
    from sagemaker_emulator.runtime.multimodel_server import multi_model_handler

    return lambda inference: multi_model_handler(Path(args.model_dir).resolve(), args.container_name, inference)


# --- Entry point -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sagemaker_emulator.runtime.worker",
        description="Serve one SageMaker model instance (GET /ping, POST /invocations).",
    )
    parser.add_argument("--model-dir", required=True, help="empty directory to extract the model into")
    parser.add_argument("--model-data-url", help="http(s) URL of model.tar.gz; omit for no model data")
    parser.add_argument("--model-data-source", help="the s3:// URI as given to CreateModel, for messages")
    parser.add_argument("--container-name", default="container_1", help="container name used in messages")
    parser.add_argument("--download-timeout", type=float,
                        help="ModelDataDownloadTimeoutInSeconds: bound on download plus extraction")
    parser.add_argument("--vcpus", type=int, default=1,
                        help="the instance type's vCPUs: one serving process each, unless "
                             "SAGEMAKER_MODEL_SERVER_WORKERS says how many")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--status-fd", type=int, required=True, help="inherited fd for the status lines")
    return parser.parse_args(argv)


def configure_logging() -> None:
    """Line-buffered logs: info to stdout, warnings and tracebacks to stderr (forwarded to CloudWatch)."""
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    to_stdout = logging.StreamHandler(sys.stdout)
    to_stdout.addFilter(lambda record: record.levelno < logging.WARNING)
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.WARNING)
    root = logging.getLogger()
    for handler in (to_stdout, to_stderr):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(_log_level(os.environ.get("SAGEMAKER_CONTAINER_LOG_LEVEL")))


def _log_level(raw: str | None) -> int:
    """SAGEMAKER_CONTAINER_LOG_LEVEL is numeric in SageMaker (e.g. "20"); accept names too."""
    if not raw:
        return logging.INFO
    if raw.strip().isdigit():
        return int(raw)
    level = logging.getLevelName(raw.strip().upper())
    return level if isinstance(level, int) else logging.INFO


def _stop_during_startup(signum: int, frame: object) -> None:
    raise StopRequested()


def start_serving_processes(args: argparse.Namespace, status: StatusChannel) -> ServingProcess:
    """Bind the instance's port, then fork one serving process per vCPU (the model is already loaded)."""
    try:
        count = serving_process_count(args.vcpus, os.environ, _multi_model_mode())
    except WorkerCountError as error:
        raise StartupError(str(error)) from None
    try:
        listeners = bind_listeners(args.host, args.port, count)
    except OSError as error:
        raise StartupError(
            f'The model server for container "{args.container_name}" could not listen on '
            f"{args.host}:{args.port}: {error}"
        ) from error
    sys.stdout.flush()  # a forked process must not write out what its parent had buffered
    sys.stderr.flush()
    process = fork_serving_processes(listeners, count, close_in_children=(status.fd,))
    if not process.primary:
        status.forget()
    return process


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    configure_logging()
    status = StatusChannel(args.status_fd)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_during_startup)
    try:
        # A multi-model container starts empty; SageMaker loads models through its /models API.
        transformer = None if _multi_model_mode() else load_model(args, status)
        process = start_serving_processes(args, status)
        # uvloop: the model server's transports and timers in C (sibling processes are watched through
        # pidfds, not SIGCHLD, which uvloop refuses).
        return uvloop.run(serve(transformer, args, status, started, process, _multi_model_handler(args)))
    except StartupError as error:
        log.error("Worker start-up failed: %s", error.reason)
        status.failed(error.reason)
        return 1
    except StopRequested:
        log.info("Stopped by a signal before the model was ready")
        status.failed(f'The worker for container "{args.container_name}" was stopped before it became ready.')
        return 0
    except Exception as error:  # a bug in the worker itself: still report it in one line
        log.exception("Worker crashed")
        status.failed(f'The worker for container "{args.container_name}" crashed: {type(error).__name__}: {error}')
        return 1
    return 0


if __name__ == "__main__":
    exit_code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # A prediction still running on the inference thread would keep the interpreter alive at exit;
    # SageMaker kills a container 30 s after SIGTERM anyway, so leave now without joining it.
    os._exit(exit_code)
