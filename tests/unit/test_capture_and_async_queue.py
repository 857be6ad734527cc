"""Data capture formatting and the async inference queue's pure parts: no emulator, no network."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from sagemaker_emulator.config import Settings
from sagemaker_emulator.runtime import capture
from sagemaker_emulator.runtime.async_queue import AsyncInferenceQueue, AsyncRequest, Journal, notification
from sagemaker_emulator.runtime.capture import CaptureConfig, CaptureWriter
from sagemaker_emulator.runtime.router import Router
from sagemaker_emulator.runtime.telemetry import EndpointMetrics
from sagemaker_emulator.s3_uri import parse_s3_uri
from sagemaker_emulator.sagemaker.endpoint_features import capture_summary
from sagemaker_emulator.sagemaker.typed_requests import DataCaptureConfig

CAPTURE = DataCaptureConfig.from_aws({
    "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://bucket/some/prefix/",
    "CaptureOptions": [{"CaptureMode": "InputAndOutput"}],
    "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["Application/JSON"]}})


def test_capture_config_from_spec():
    config = CaptureConfig.of(CAPTURE)
    assert (config.bucket, config.prefix, config.capture_input, config.capture_output) == (
        "bucket", "some/prefix", True, True)
    assert config.encode("application/json; charset=utf-8", b'{"a": 1}') == ('{"a": 1}', "JSON")
    assert config.encode("text/csv", b"1,2") == ("1,2", "CSV")
    assert config.encode("image/png", b"\x89PNG") == (base64.b64encode(b"\x89PNG").decode(), "BASE64")
    # Declared CSV but not text: kept intact as BASE64 rather than mangled.
    assert config.encode("text/csv", b"\xff\xfe") == ("//4=", "BASE64")
    assert CaptureConfig.of(None) is None
    assert CaptureConfig.of(DataCaptureConfig.from_aws({**CAPTURE.to_aws(), "EnableCapture": False})) is None


def test_capture_files_split_by_variant_and_hour(monkeypatch):
    written: dict[str, bytes] = {}
    monkeypatch.setattr(capture, "_put_objects", lambda bucket, files: written.update(files))
    writer = CaptureWriter("ep", CaptureConfig.of(CAPTURE), flush_seconds=3600)
    hour = 1_700_000_000 - 1_700_000_000 % 3600  # 2023-11-14T22:00:00Z
    moments = [hour - 0.5, hour + 61.25, hour + 62, hour + 63]
    monkeypatch.setattr(capture.time, "time", lambda: moments.pop(0) if len(moments) > 1 else moments[0])

    async def scenario():
        for variant in ("A", "A", "A", "B"):
            writer.record(variant, {"Content-Type": "text/csv"}, b"1,2", "text/csv", b"3")
        await writer.close()

    asyncio.run(scenario())
    names = sorted(written)
    assert [n.rsplit("/", 1)[0] for n in names] == ["some/prefix/ep/A/2023/11/14/21", "some/prefix/ep/A/2023/11/14/22",
                                                    "some/prefix/ep/B/2023/11/14/22"]
    assert names[1].rsplit("/", 1)[1].startswith("01-01-250-")  # minute-second-millis of its first record
    assert [len(written[n].splitlines()) for n in names] == [1, 2, 1]
    line = json.loads(written[names[0]].splitlines()[0])
    assert line["eventMetadata"]["inferenceTime"] == "2023-11-14T21:59:59Z"


def test_capture_summary():
    assert capture_summary(CAPTURE) == {
        "EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 100,
        "DestinationS3Uri": "s3://bucket/some/prefix/"}


@pytest.mark.parametrize("uri, expected", [
    ("s3://bucket/a/b.json", ("bucket", "a/b.json")),
    ("https://bucket.s3.us-east-1.amazonaws.com/a/b%20c.json", ("bucket", "a/b c.json")),
    ("https://bucket.s3.amazonaws.com/a.json", ("bucket", "a.json")),
    ("https://s3.us-east-1.amazonaws.com/bucket/a.json", ("bucket", "a.json")),
])
def test_parse_s3_uri(uri, expected):
    assert parse_s3_uri(uri) == expected


def request(**overrides) -> AsyncRequest:
    fields = dict(id="r-1", region="us-east-1", endpoint="ep", inference_id="inf-1", received=1_700_000_000.25,
                  output_location="s3://b/out/r-1.out", failure_location="s3://b/fail/r-1-error.out",
                  input_location="s3://b/in.json", content_type="application/json")
    return AsyncRequest(**{**fields, **overrides})


def test_notification_shapes():
    done = notification(request(), "Completed", content_type="application/json", body=b"{}")
    assert done["receivedTime"] == "2023-11-14T22:13:20.250Z"
    assert done["requestParameters"] == {"contentType": "application/json", "endpointName": "ep",
                                         "inputLocation": "s3://b/in.json"}
    assert done["responseParameters"] == {"contentType": "application/json", "outputLocation": "s3://b/out/r-1.out"}
    assert done["responseBody"] == {"content": "e30=", "encoding": "BASE64"}
    failed = notification(request(), "Failed", failure_reason="ClientError: x")
    assert failed["failureReason"] == "ClientError: x"
    assert "responseParameters" not in failed and "responseBody" not in failed
    assert (failed["eventSource"], failed["eventName"], failed["inferenceId"]) == ("aws:sagemaker", "InferenceResult",
                                                                                  "inf-1")


def test_journal_round_trip(tmp_path):
    journal = Journal(tmp_path / "queue")
    first, second = request(id="a", received=2.0), request(id="b", received=1.0, inline_body="e30=")
    journal.save(first)
    journal.save(second)
    assert journal.load() == [second, first]  # oldest first
    journal.remove(second)
    assert [r.id for r in journal.load()] == ["a"]
    assert sorted(p.name for p in (tmp_path / "queue").iterdir()) == ["a.json"]  # no partial files left


def test_journaled_requests_wait_after_a_restart(tmp_path):
    """A request left by a crashed run is queued again; it waits while its endpoint does not exist."""
    settings = Settings(workdir=tmp_path, time_scale=1)
    Journal(tmp_path / "async-inference").save(request(received=time.time()))

    async def scenario():
        queue = AsyncInferenceQueue(settings, Router(settings, EndpointMetrics()))
        queue.start()
        await asyncio.sleep(0.1)
        backlog = queue._backlogs[("us-east-1", "ep")]  # noqa: SLF001 - the state under test
        waiting = [r.id for r in backlog.pending]
        await queue.stop()
        return waiting

    assert asyncio.run(scenario()) == ["r-1"]
    assert [r.id for r in Journal(tmp_path / "async-inference").load()] == ["r-1"]  # still there after stop
