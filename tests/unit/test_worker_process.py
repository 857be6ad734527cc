"""The model worker as a real process: status line, /ping, /invocations, failures and SIGTERM.

Model archives are served by a local http.server (standing in for the emulator's S3). Every wait
is bounded: status lines are read with select() and a deadline, processes are waited on with a
timeout, and nothing sleeps to "give the worker time".
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import select
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_TIMEOUT = 30
EXIT_TIMEOUT = 10

INFERENCE_PY = '''
import json, os, time

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return json.load(f)

def predict_fn(data, model, context):
    attributes = context.custom_attributes or ""
    if attributes == "raise":
        raise RuntimeError("kaboom")
    if attributes.startswith("sleep="):
        open(os.path.join(context.system_properties["model_dir"], "predicting"), "w").close()
        time.sleep(float(attributes.split("=")[1]))
    if attributes:
        context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "echo:" + attributes)
    return {"sum": float(data.sum()) + model["offset"], "echo": data.tolist()}
'''

FAILING_MODEL_FN = '''
def model_fn(model_dir):
    raise RuntimeError("boom")
'''


def build_archive(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def s3(tmp_path: Path):
    """A local HTTP server for model archives; yields (directory, base_url)."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(bucket)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield bucket, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class Worker:
    process: subprocess.Popen
    status: dict
    log_dir: Path
    events: list[str]  # the status lines before the final one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.status['port']}"

    def logs(self) -> str:
        return (self.log_dir / "stdout.log").read_text() + (self.log_dir / "stderr.log").read_text()


def read_status_lines(fd: int, timeout: float) -> list[dict]:
    """Every status line up to the final one (ready or failed), which must be the last thing written."""
    deadline = time.monotonic() + timeout
    buffer = b""
    while not buffer.endswith(b"\n") or json.loads(buffer.splitlines()[-1])["status"] not in ("ready", "failed"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no final status line within {timeout} s (got {buffer!r})")
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError(f"status fd closed without a final line (got {buffer!r})")
            buffer += chunk
    readable, _, _ = select.select([fd], [], [], 1)  # the worker closes the fd after the final line
    assert readable and os.read(fd, 4096) == b"", "the worker wrote after its final status line"
    return [json.loads(line) for line in buffer.splitlines()]


@pytest.fixture
def start_worker(tmp_path: Path):
    processes: list[subprocess.Popen] = []

    def start(model_data_url: str | None, env: dict[str, str] | None = None, name: str = "w",
              extra_args: tuple[str, ...] = ()) -> Worker:
        log_dir = tmp_path / f"logs-{name}"
        log_dir.mkdir()
        command = [
            sys.executable, "-m", "sagemaker_emulator.runtime.worker",
            "--model-dir", str(tmp_path / f"model-{name}"),
            "--model-data-source", "s3://bucket/model.tar.gz",
        ]  # fmt: skip
        if model_data_url:
            command += ["--model-data-url", model_data_url]
        command += list(extra_args)
        read_end, write_end = os.pipe()
        command += ["--status-fd", str(write_end)]
        with open(log_dir / "stdout.log", "w") as out, open(log_dir / "stderr.log", "w") as err:
            process = subprocess.Popen(
                command, pass_fds=(write_end,), stdout=out, stderr=err, env={**os.environ, **(env or {})}
            )
        os.close(write_end)  # only the worker holds it now, so EOF means the worker is gone
        processes.append(process)
        try:
            *events, status = read_status_lines(read_end, STARTUP_TIMEOUT)
        finally:
            os.close(read_end)
        return Worker(process, status, log_dir, [event["status"] for event in events])

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=EXIT_TIMEOUT)


def invoke_ignoring_errors(worker: Worker, body: bytes, headers: dict[str, str]) -> None:
    """For background requests that the test cuts short (the worker may drop the connection)."""
    try:
        invoke(worker, body, headers)
    except OSError:
        pass


def invoke(worker: Worker, body: bytes, headers: dict[str, str] | None = None):
    request = urllib.request.Request(f"{worker.url}/invocations", data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def model_url(s3) -> str:
    bucket, base_url = s3
    build_archive(
        bucket / "model.tar.gz",
        {"code/inference.py": INFERENCE_PY, "weights.json": json.dumps({"offset": 10})},
    )
    return f"{base_url}/model.tar.gz"


# --- Happy path ------------------------------------------------------------------------------


def test_worker_serves_ping_and_invocations(start_worker, model_url) -> None:
    worker = start_worker(model_url)

    assert worker.status["status"] == "ready", worker.logs()
    assert worker.status["pid"] == worker.process.pid
    with urllib.request.urlopen(f"{worker.url}/ping", timeout=5) as ping:
        assert (ping.status, ping.read()) == (200, b"")

    status, headers, body = invoke(worker, b"[1, 2, 3]", {"Content-Type": "application/json"})

    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"sum": 16.0, "echo": [1, 2, 3]}


def test_custom_attributes_are_passed_and_echoed(start_worker, model_url) -> None:
    worker = start_worker(model_url)

    status, headers, _ = invoke(
        worker, b"[1]", {"Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "trace=7"}
    )

    assert status == 200
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "echo:trace=7"


def test_errors_map_to_415_and_500(start_worker, model_url) -> None:
    worker = start_worker(model_url)

    status, _, body = invoke(worker, b"<x/>", {"Content-Type": "application/xml"})
    assert status == 415 and b"application/xml" in body

    status, _, body = invoke(
        worker, b"[1]", {"Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "raise"}
    )
    assert status == 500
    assert body.startswith(b"kaboom") and b"Traceback" in body
    # Still healthy afterwards.
    assert invoke(worker, b"[1]", {"Content-Type": "application/json"})[0] == 200


def test_ping_stays_responsive_during_a_slow_prediction(start_worker, model_url, tmp_path) -> None:
    worker = start_worker(model_url)
    slow = threading.Thread(
        target=invoke,
        args=(worker, b"[1]", {"Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "sleep=2"}),
    )
    slow.start()
    marker = tmp_path / "model-w" / "predicting"
    deadline = time.monotonic() + 10
    while not marker.exists():  # bounded poll for the prediction to be under way
        assert time.monotonic() < deadline, "the slow prediction never started"
        time.sleep(0.01)

    started = time.monotonic()
    with urllib.request.urlopen(f"{worker.url}/ping", timeout=5) as ping:
        assert ping.status == 200
    assert time.monotonic() - started < 1.0
    slow.join(timeout=10)


def test_sigterm_stops_the_worker_with_exit_code_0(start_worker, model_url) -> None:
    worker = start_worker(model_url)
    assert worker.status["status"] == "ready"

    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)

    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 0
    assert time.monotonic() - started < 5


def test_sigterm_during_a_slow_prediction_still_exits_promptly(start_worker, model_url, tmp_path) -> None:
    worker = start_worker(model_url)
    stuck = threading.Thread(
        target=invoke_ignoring_errors,
        args=(worker, b"[1]", {"Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "sleep=60"}),
        daemon=True,
    )
    stuck.start()
    marker = tmp_path / "model-w" / "predicting"
    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline, "the slow prediction never started"
        time.sleep(0.01)

    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)

    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 0
    assert time.monotonic() - started < 6  # the 3 s shutdown grace, not the 60 s prediction


# --- Start-up failures -----------------------------------------------------------------------


def test_missing_model_data_reports_the_aws_download_failure(start_worker, s3) -> None:
    _, base_url = s3
    worker = start_worker(f"{base_url}/no-such-key.tar.gz")

    assert worker.status["status"] == "failed"
    assert worker.status["reason"] == (
        'Failed to download model data for container "container_1" from URL: "s3://bucket/model.tar.gz". '
        "Please ensure that there is an object located at the URL and that the role passed to "
        "CreateModel has permissions to download the object."
    )
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1


def test_model_fn_raising_is_reported_with_the_exception(start_worker, s3) -> None:
    bucket, base_url = s3
    build_archive(bucket / "model.tar.gz", {"code/inference.py": FAILING_MODEL_FN})

    worker = start_worker(f"{base_url}/model.tar.gz")

    assert worker.status["status"] == "failed"
    assert "model_fn raised RuntimeError: boom" in worker.status["reason"]
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1
    assert "Traceback" in worker.logs()  # the traceback goes to the log stream


def test_unsafe_archive_member_is_named(start_worker, s3) -> None:
    bucket, base_url = s3
    build_archive(bucket / "model.tar.gz", {"code/inference.py": INFERENCE_PY, "../evil": "pwned"})

    worker = start_worker(f"{base_url}/model.tar.gz")

    assert worker.status["status"] == "failed"
    assert '"../evil"' in worker.status["reason"]
    assert "s3://bucket/model.tar.gz" in worker.status["reason"]
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1


def test_not_a_tar_gz_is_reported(start_worker, s3) -> None:
    bucket, base_url = s3
    (bucket / "model.tar.gz").write_text("definitely not gzip")

    worker = start_worker(f"{base_url}/model.tar.gz")

    assert worker.status["status"] == "failed"
    assert "not a valid tar.gz" in worker.status["reason"]
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1


def test_missing_inference_script_names_the_expected_path(start_worker, s3) -> None:
    bucket, base_url = s3
    build_archive(bucket / "model.tar.gz", {"inference.py": INFERENCE_PY})

    worker = start_worker(f"{base_url}/model.tar.gz", env={"SAGEMAKER_PROGRAM": "inference.py"})

    assert worker.status["status"] == "failed"
    assert '"code/inference.py" was not found' in worker.status["reason"]
    assert "at the archive root" in worker.status["reason"]
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1


def test_no_model_data_and_no_code_fails_clearly(start_worker) -> None:
    worker = start_worker(None)

    assert worker.status["status"] == "failed"
    assert "code/inference.py" in worker.status["reason"]
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1


def test_model_data_over_the_size_cap_is_refused(start_worker, model_url) -> None:
    worker = start_worker(model_url, env={"SAGEMAKER_EMULATOR_MAX_EXTRACT_BYTES": "64"})

    assert worker.status["status"] == "failed"
    assert "64-byte limit" in worker.status["reason"]
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1


# --- Download timeout ------------------------------------------------------------------------


@pytest.fixture
def trickling_url():
    """A server that promises a megabyte and sends one byte every 0.2 s: only a bound on the whole
    download stops it (each read returns well within any per-read socket timeout)."""
    stop = threading.Event()

    class TrickleHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(1024 * 1024))
            self.end_headers()
            while not stop.is_set():
                try:
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                except OSError:
                    return
                stop.wait(0.2)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TrickleHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/model.tar.gz"
    stop.set()
    server.shutdown()
    server.server_close()


def test_a_download_over_its_timeout_fails_with_the_timeout_named(start_worker, trickling_url) -> None:
    worker = start_worker(trickling_url, extra_args=("--download-timeout", "1"))

    assert worker.status["status"] == "failed"
    assert worker.status["reason"].startswith(
        'Failed to download model data for container "container_1" from URL: "s3://bucket/model.tar.gz" within '
        "the ModelDataDownloadTimeoutInSeconds of 1 seconds.")
    assert worker.events == []  # it never got as far as "downloaded"
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1


def test_the_end_of_the_download_is_reported_before_ready(start_worker, model_url) -> None:
    worker = start_worker(model_url, extra_args=("--download-timeout", "30"))

    assert worker.events == ["downloaded"]
    assert worker.status["status"] == "ready"


# --- Serving processes: one per vCPU ---------------------------------------------------------


def ping(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as response:
        return response.status


def children_of(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_one_serving_process_per_vcpu_each_answering_ping(start_worker, model_url) -> None:
    worker = start_worker(model_url, extra_args=("--vcpus", "3"))

    assert worker.status["status"] == "ready", worker.logs()
    pids = worker.status["pids"]
    assert len(pids) == 3 and pids[0] == worker.process.pid
    assert children_of(worker.process.pid) == set(pids[1:])
    assert len(set(worker.status["health_ports"])) == 3
    assert [ping(port) for port in [worker.status["port"], *worker.status["health_ports"]]] == [200] * 4
    assert invoke(worker, b"[1]", {"Content-Type": "application/json"})[0] == 200


def test_model_server_workers_variable_caps_the_count(start_worker, model_url) -> None:
    worker = start_worker(model_url, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, extra_args=("--vcpus", "4"))

    assert worker.status["pids"] == [worker.process.pid]
    assert children_of(worker.process.pid) == set()


def test_model_server_workers_never_exceed_the_vcpus(start_worker, model_url) -> None:
    worker = start_worker(model_url, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "8"}, extra_args=("--vcpus", "2"))

    assert len(worker.status["pids"]) == 2


def test_an_unusable_model_server_workers_value_is_named(start_worker, model_url) -> None:
    worker = start_worker(model_url, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "four"}, extra_args=("--vcpus", "4"))

    assert worker.status["status"] == "failed"
    assert worker.status["reason"].startswith(
        "SAGEMAKER_MODEL_SERVER_WORKERS must be a positive whole number of model server workers, got 'four'.")
    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1


def test_losing_a_serving_process_stops_the_instance(start_worker, model_url) -> None:
    worker = start_worker(model_url, extra_args=("--vcpus", "2"))
    sibling = worker.status["pids"][1]

    os.kill(sibling, signal.SIGKILL)

    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 1  # its fleet replaces an instance that exits
    assert f"Model server worker process {sibling} exited" in worker.logs()


def test_sigterm_stops_every_serving_process(start_worker, model_url) -> None:
    worker = start_worker(model_url, extra_args=("--vcpus", "3"))
    siblings = worker.status["pids"][1:]

    worker.process.send_signal(signal.SIGTERM)  # only the first process: it stops the others

    assert worker.process.wait(timeout=EXIT_TIMEOUT) == 0
    assert not [pid for pid in siblings if Path(f"/proc/{pid}").exists()]
