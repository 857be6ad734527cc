"""SageMaker Data Capture JSON Lines -> rows of text, ready to profile.

One line is one record: {"captureData": {"endpointInput": {"data", "encoding", "observedContentType",
...}, "endpointOutput": {...}}, "eventMetadata": {"eventId", "inferenceTime"}, "eventVersion": "0"}.

Payloads: encoding CSV (text; several lines give several rows), JSON (the JSON text) or BASE64
(decoded, then read as JSON or CSV by its observedContentType). JSON payloads: an object gives named
columns; a list of lists or of objects gives rows; {"instances"|"inputs"|"predictions": [...]} is
unwrapped; a flat list of scalars is one positional row, except when it must be one value per row
(the other side of the record has that many rows, or the input is a batch of one-column rows).
The output columns come first, then the input columns (Model Monitor assumes "the prediction/output
columns are the first columns"; `output_columns_position: END` in sagemakerCaptureJson flips it).
Positional values take the baseline's feature names in order; positions past them are _c<i>.

A record that cannot be read is counted and sampled, never dropped silently.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from .sources import BATCH_ROWS, DatasetFormat, json_text

WRAPPER_KEYS = ("instances", "inputs", "predictions")
SAMPLE_LIMIT = 5


class Unreadable(ValueError):
    """One record cannot be turned into rows; the message says why."""


@dataclass
class CaptureStats:
    records: int = 0  # records in the window that gave rows
    rows: int = 0
    unparseable: int = 0
    outside_window: int = 0
    samples: list = field(default_factory=list)

    def reject(self, where: str, reason: str, line: str) -> None:
        self.unparseable += 1
        if len(self.samples) < SAMPLE_LIMIT:
            snippet = line.strip()
            snippet = snippet if len(snippet) <= 200 else snippet[:200] + "..."
            self.samples.append(f"{where}: {reason}: {snippet}")


class CaptureReader:
    def __init__(self, fmt: DatasetFormat, feature_names: list[str] | None = None,
                 start_time: datetime | None = None, end_time: datetime | None = None):
        self.sides = [side for side in ("endpointOutput", "endpointInput") if side in fmt.capture_index_names]
        if not fmt.output_first:
            self.sides.reverse()
        self.names = list(feature_names or [])
        self.start, self.end = _utc(start_time), _utc(end_time)
        self.stats = CaptureStats()
        self._times: dict[str, datetime | None] = {}

    def batches(self, files: list[Path]) -> Iterator[pa.RecordBatch]:
        rows: list = []
        for path in files:
            fast = self._vectorised(path)
            if fast is not None:
                if fast.num_rows:
                    yield fast
                continue
            with open(path, encoding="utf-8", errors="replace") as stream:
                for number, line in enumerate(stream, 1):
                    if not line.strip():
                        continue
                    try:
                        record_rows = self.record_rows(line)
                    except Unreadable as reason:
                        self.stats.reject(f"{path.name} line {number}", str(reason), line)
                        continue
                    if record_rows is None:
                        continue
                    self.stats.records += 1
                    rows.extend(record_rows)
                    if len(rows) >= BATCH_ROWS:
                        yield self.to_batch(rows)
                        rows = []
        if rows:
            yield self.to_batch(rows)

    # ---- the common case, vectorised -----------------------------------------------------------

    def _vectorised(self, path: Path) -> pa.RecordBatch | None:
        """A file whose records all carry one CSV line of the same width per captured side, read by
        Arrow's JSON reader and split by Arrow kernels; None sends the file down the per-record path
        (other encodings, several lines, quotes, a bad line: anything unusual)."""
        import pyarrow.compute as pc
        import pyarrow.json as pjson

        try:
            table = pjson.read_json(path)
            capture = table.column("captureData")
            keep = self._window_mask(table)
            columns, offset = {}, 0
            for side in self.sides:
                payload = pc.struct_field(capture, side)
                data, encoding = pc.struct_field(payload, "data"), pc.struct_field(payload, "encoding")
                if data.null_count or not pc.all(pc.equal(encoding, "CSV")).as_py():
                    return None
                data = pc.utf8_rtrim(data, characters="\r\n")
                if pc.any(pc.match_substring(data, "\n")).as_py() or pc.any(pc.match_substring(data, '"')).as_py():
                    return None
                if keep is not None:
                    data = data.filter(keep)
                lists = pc.split_pattern(data, ",")
                widths = pc.min_max(pc.list_value_length(lists)).as_py()
                if widths["min"] != widths["max"]:
                    return None
                for index in range(widths["max"] or 0):
                    values = pc.list_element(lists, index)
                    columns[self._name(offset + index)] = pc.if_else(pc.equal(values, ""), None, values)
                offset += widths["max"] or 0
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError, TypeError):
            return None
        kept = table.num_rows if keep is None else int(pc.sum(keep).as_py() or 0)
        self.stats.outside_window += table.num_rows - kept
        self.stats.records += kept
        self.stats.rows += kept
        arrays = [column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column for column in columns.values()]
        return pa.RecordBatch.from_arrays([a.cast(pa.string()) for a in arrays], names=list(columns))

    def _window_mask(self, table: pa.Table):
        import pyarrow.compute as pc

        if self.start is None and self.end is None:
            return None
        times = pc.struct_field(table.column("eventMetadata"), "inferenceTime")
        if times.null_count:
            raise TypeError("a record without inferenceTime")
        if not pa.types.is_timestamp(times.type):
            raise TypeError("inferenceTime not read as a timestamp")
        unit = times.type.unit
        conditions = []
        if self.start is not None:
            conditions.append(pc.greater_equal(times, pa.scalar(self.start.replace(tzinfo=None), pa.timestamp(unit))))
        if self.end is not None:
            conditions.append(pc.less(times, pa.scalar(self.end.replace(tzinfo=None), pa.timestamp(unit))))
        return conditions[0] if len(conditions) == 1 else pc.and_(*conditions)

    # ---- one record ----------------------------------------------------------------------------

    def record_rows(self, line: str) -> list | None:
        """The record's rows, or None when it lies outside [start_time, end_time)."""
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise Unreadable(f"not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("captureData"), dict):
            raise Unreadable("no captureData object")
        if self.start is not None or self.end is not None:
            at = self._inference_time(record)
            if (self.start is not None and at < self.start) or (self.end is not None and at >= self.end):
                self.stats.outside_window += 1
                return None
        sides = [(side, self._side_rows(record["captureData"], side)) for side in self.sides]
        return _combine(sides, self._input_width(sides))

    def _inference_time(self, record: dict) -> datetime:
        text = (record.get("eventMetadata") or {}).get("inferenceTime")
        if text not in self._times:
            self._times[text] = _parse_time(text)
        at = self._times[text]
        if at is None:
            raise Unreadable(f"eventMetadata.inferenceTime {text!r} is not an ISO-8601 time")
        return at

    def _side_rows(self, capture: dict, side: str):
        payload = capture.get(side)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
            raise Unreadable(f"captureData.{side}.data is missing")
        return decode_payload(payload["data"], payload.get("encoding", "CSV"), payload.get("observedContentType", ""))

    def _input_width(self, sides) -> int | None:
        """How many input columns the baseline leaves after the output columns, if known."""
        if not self.names:
            return None
        output_width = 0
        for side, rows in sides:
            if side == "endpointOutput":
                output_width = 1 if isinstance(rows, Scalars) else max((len(row) for row in rows), default=0)
        return len(self.names) - output_width

    # ---- rows -> Arrow ---------------------------------------------------------------------------

    def to_batch(self, rows: list) -> pa.RecordBatch:
        self.stats.rows += len(rows)
        rows = [{self._name(key) if isinstance(key, int) else key: value for key, value in row.items()}
                if isinstance(row, dict) else row for row in rows]
        columns: dict[str, list] = {}
        width = max((len(row) for row in rows if isinstance(row, list)), default=0)
        positional_names = [self._name(i) for i in range(width)]
        for name in self.names:
            if name in positional_names or any(isinstance(row, dict) and name in row for row in rows):
                columns[name] = []
        for name in positional_names:
            columns.setdefault(name, [])
        for row in rows:
            if isinstance(row, dict):
                for key in row:
                    columns.setdefault(key, [])
        for name, values in columns.items():
            if name in positional_names:
                index = positional_names.index(name)
                values.extend(row[index] if isinstance(row, list) and index < len(row) else
                              (row.get(name) if isinstance(row, dict) else None) for row in rows)
            else:
                values.extend(row.get(name) if isinstance(row, dict) else None for row in rows)
        return pa.RecordBatch.from_arrays([pa.array(values, type=pa.string()) for values in columns.values()],
                                          names=list(columns))

    def _name(self, index: int) -> str:
        return self.names[index] if index < len(self.names) else f"_c{index}"


class Scalars(list):
    """A flat JSON list of scalars: one row, or one value per row, decided when sides are combined."""


def decode_payload(data: str, encoding: str, content_type: str):
    """A payload as a list of rows (lists of text, or dicts of text) or as Scalars."""
    encoding = (encoding or "CSV").upper()
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unreadable("BASE64 data that is not UTF-8 text (binary payloads cannot be profiled)") from None
        media = (content_type or "").lower()
        encoding = "JSON" if "json" in media or (not "csv" in media and data.lstrip()[:1] in ("[", "{")) else "CSV"
    if encoding == "JSON":
        try:
            return json_rows(json.loads(data))
        except json.JSONDecodeError as error:
            raise Unreadable(f"JSON payload is not valid JSON ({error.msg})") from None
    if encoding == "CSV":
        return csv_rows(data)
    raise Unreadable(f"unknown encoding {encoding!r} (expected CSV, JSON or BASE64)")


def csv_rows(text: str) -> list[list]:
    if '"' not in text:
        rows = [[value if value != "" else None for value in line.rstrip("\r").split(",")]
                for line in text.split("\n") if line.strip()]
    else:
        rows = [[value if value != "" else None for value in row]
                for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise Unreadable("empty CSV payload")
    return rows


def json_rows(document):
    if isinstance(document, dict):
        wrapped = [key for key in WRAPPER_KEYS if isinstance(document.get(key), list)]
        if len(document) == 1 and wrapped:
            return json_rows(document[wrapped[0]])
        return [{key: json_text(value) for key, value in document.items()}]
    if isinstance(document, list):
        if not document:
            raise Unreadable("empty JSON list")
        if all(isinstance(item, list) for item in document):
            return [[json_text(value) for value in item] for item in document]
        if all(isinstance(item, dict) for item in document):
            return [{key: json_text(value) for key, value in item.items()} for item in document]
        if not any(isinstance(item, (list, dict)) for item in document):
            return Scalars(json_text(value) for value in document)
        raise Unreadable("JSON list mixes rows and scalars")
    return [[json_text(document)]]


def _combine(sides: list, input_width: int | None) -> list:
    """Rows of all captured sides, side by side, in the order given (output first by default).

    `sides` holds (side name, rows or Scalars). Sides with real rows fix the row count; an input
    given as Scalars is one value per row when the baseline expects one input column; an output
    given as Scalars is one value per row when its length is the input's row count.
    """
    target = max((len(rows) for _, rows in sides if not isinstance(rows, Scalars)), default=None)
    shaped = {}
    for side, rows in sorted(sides, key=lambda item: item[0] != "endpointInput"):
        if isinstance(rows, Scalars):
            if target is None:
                one_per_row = side == "endpointInput" and input_width == 1 and len(rows) > 1
            else:
                one_per_row = target > 1 and len(rows) == target
            rows = [[value] for value in rows] if one_per_row else [list(rows)]
            target = target if target is not None else len(rows)
        shaped[side] = rows
    ordered = [shaped[side] for side, _ in sides]
    if any(len(rows) != len(ordered[0]) for rows in ordered):
        counts = " and ".join(f"{len(shaped[side])} {side} rows" for side, _ in sides)
        raise Unreadable(f"the captured sides do not line up ({counts})")
    if len(ordered) == 1:
        return ordered[0]
    return [_join(parts) for parts in zip(*ordered)]


def _join(parts) -> list | dict:
    if all(isinstance(part, list) for part in parts):
        return [value for part in parts for value in part]
    joined: dict = {}
    position = 0
    for part in parts:
        if isinstance(part, dict):
            joined.update(part)
        else:
            for value in part:
                joined[position] = value
                position += 1
    return joined


def _parse_time(text) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
