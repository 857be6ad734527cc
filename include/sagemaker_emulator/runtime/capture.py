"""Data capture: the request and response of sampled invocations, as JSON Lines in S3.

What Model Monitor reads. One ``CaptureWriter`` per published endpoint configuration buffers the
sampled invocations in memory (the hot path only draws a random number and appends a tuple) and
writes them on a timer, and when the endpoint is updated or deleted, to AWS's layout::

    <DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<MM>-<SS>-<mmm>-<uuid>.jsonl

one line per invocation::

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "1,2,3", "encoding": "CSV"},
                     "endpointOutput": {...}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<caller's InferenceId>",
                       "inferenceTime": "2024-05-01T12:00:00Z"},
     "eventVersion": "0"}

Objects go straight into moto's S3 backend, in-process: no HTTP round trip to ourselves, no
credentials, and the emulator's bind address does not matter. Capture never fails an invocation: a
write that fails (say, the bucket does not exist) is logged and its records are dropped, as AWS
drops capture it cannot deliver.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

from sagemaker_emulator import moto_bridge
from sagemaker_emulator.s3_uri import parse_s3_uri
from sagemaker_emulator.sagemaker.typed_requests import CaptureContentTypeHeader, DataCaptureConfig

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/octet-stream"  # what the container sees when the caller sent none
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
_JSON_LINE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _media_types(types: list[str] | None) -> frozenset[str]:
    return frozenset(t.split(";", 1)[0].strip().lower() for t in types or ())


@dataclass(frozen=True)
class CaptureConfig:
    """An endpoint configuration's ``DataCaptureConfig``, ready for the data path."""

    bucket: str
    prefix: str  # key prefix under the bucket, without a trailing slash ("" for the bucket root)
    sampling_percentage: int
    capture_input: bool
    capture_output: bool
    csv_types: frozenset[str]
    json_types: frozenset[str]

    @classmethod
    def of(cls, capture: DataCaptureConfig | None) -> CaptureConfig | None:
        """None when the config has no DataCaptureConfig or disables it (EnableCapture: false)."""
        if capture is None or not capture.enabled:
            return None
        bucket, prefix = parse_s3_uri(capture.destination_s3_uri)
        modes = capture.modes
        headers = capture.capture_content_type_header or CaptureContentTypeHeader()
        return cls(bucket=bucket, prefix=prefix.strip("/"),
                   sampling_percentage=int(capture.initial_sampling_percentage),
                   capture_input=bool(modes & {"Input", "InputAndOutput"}),
                   capture_output=bool(modes & {"Output", "InputAndOutput"}),
                   csv_types=_media_types(headers.csv_content_types),
                   json_types=_media_types(headers.json_content_types))

    def encode(self, content_type: str, data: bytes) -> tuple[str, str]:
        """(data, encoding): CSV and JSON content types are kept as text, anything else is BASE64."""
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type in self.csv_types or media_type in self.json_types:
            try:
                return data.decode("utf-8"), "CSV" if media_type in self.csv_types else "JSON"
            except UnicodeDecodeError:  # declared as text but is not: keep it intact rather than lose it
                pass
        return base64.b64encode(data).decode("ascii"), "BASE64"


# One sampled invocation, as buffered on the hot path:
# (variant, epoch seconds, inference id, request content type, request body, response content type, response body)
_Capture = tuple[str, float, "str | None", str, bytes, str, bytes]


class CaptureWriter:
    """Samples one endpoint's invocations and delivers them to S3 in batches."""

    def __init__(self, endpoint: str, config: CaptureConfig, flush_seconds: float):
        self.endpoint = endpoint
        self.config = config
        self.flush_seconds = flush_seconds
        self._buffer: list[_Capture] = []
        self._timer: asyncio.Task | None = None
        self._closed = False

    def record(self, variant: str, request_headers: Mapping[str, str], request_body: bytes,
               response_content_type: str, response_body: bytes) -> None:
        """Called once per successful invocation, on the hot path: sample, then append."""
        if self.config.sampling_percentage < 100 and random.random() * 100 >= self.config.sampling_percentage:
            return
        self._buffer.append((variant, time.time(), request_headers.get(INFERENCE_ID_HEADER),
                             request_headers.get("Content-Type") or DEFAULT_CONTENT_TYPE, request_body,
                             response_content_type, response_body))
        if self._timer is None and not self._closed:
            self._timer = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        """Write everything buffered so far; log, never raise, if S3 refuses."""
        captured, self._buffer = self._buffer, []
        if not captured:
            return
        files = self._files(captured)
        try:
            await asyncio.to_thread(_put_objects, self.config.bucket, files)
        except Exception as error:  # noqa: BLE001 - capture must never take the data path down
            log.error("data capture for endpoint %s could not write %d record(s) to s3://%s: %s",
                      self.endpoint, len(captured), self.config.bucket, error)

    async def close(self) -> None:
        """Stop the timer and deliver what is left (the endpoint is being updated or deleted)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
        await self.flush()

    # -- formatting (off the hot path) ------------------------------------------------------------

    def _files(self, captured: list[_Capture]) -> dict[str, bytes]:
        """One object per variant and hour of invocation, named after its first record's time."""
        lines: dict[tuple[str, str], list[str]] = {}
        first_seen: dict[tuple[str, str], float] = {}
        for record in captured:
            variant, at = record[0], record[1]
            folder = (variant, time.strftime("%Y/%m/%d/%H", time.gmtime(at)))
            lines.setdefault(folder, []).append(self._line(record))
            first_seen.setdefault(folder, at)
        prefix = f"{self.config.prefix}/" if self.config.prefix else ""
        files = {}
        for (variant, hour), folder_lines in lines.items():
            at = first_seen[(variant, hour)]
            name = f"{time.strftime('%M-%S', time.gmtime(at))}-{int(at * 1000) % 1000:03d}-{uuid.uuid4()}.jsonl"
            files[f"{prefix}{self.endpoint}/{variant}/{hour}/{name}"] = ("\n".join(folder_lines) + "\n").encode()
        return files

    def _line(self, record: _Capture) -> str:
        _variant, at, inference_id, request_type, request_body, response_type, response_body = record
        capture_data: dict[str, Any] = {}
        if self.config.capture_input:
            capture_data["endpointInput"] = self._side("INPUT", request_type, request_body)
        if self.config.capture_output:
            capture_data["endpointOutput"] = self._side("OUTPUT", response_type, response_body)
        metadata = {"eventId": str(uuid.uuid4())}
        if inference_id is not None:
            metadata["inferenceId"] = inference_id
        metadata["inferenceTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        return _JSON_LINE.encode({"captureData": capture_data, "eventMetadata": metadata, "eventVersion": "0"})

    def _side(self, mode: str, content_type: str, body: bytes) -> dict[str, str]:
        data, encoding = self.config.encode(content_type, body)
        return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_writer(endpoint: str, capture: DataCaptureConfig | None, flush_seconds: float) -> CaptureWriter | None:
    """The writer for an endpoint configuration's DataCaptureConfig, or None when it captures nothing."""
    config = CaptureConfig.of(capture)
    return CaptureWriter(endpoint, config, flush_seconds) if config is not None else None


def _put_objects(bucket: str, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        moto_bridge.put_object(bucket, key, body)
