"""Datasets on disk: the dataset_format contract, the files of a source, and streaming readers.

Every reader yields Arrow record batches of bounded size, so memory stays flat whatever the file
size: Parquet row groups through ParquetFile.iter_batches, CSV through pyarrow.csv.open_csv (values
kept as text: Deequ classifies CSV text per value), JSON Lines through pyarrow.json.open_json.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from .errors import DataQualityError

BATCH_ROWS = 1 << 17
CSV_BLOCK_BYTES = 4 << 20  # larger blocks cost memory (read ahead in threads) and were no faster
SUPPORTED_FORMATS = ("csv", "json", "parquet", "sagemakerCaptureJson")
CAPTURE_INDEX_NAMES = ("endpointInput", "endpointOutput")


@dataclass(frozen=True)
class DatasetFormat:
    kind: str  # csv | json | parquet | capture
    header: bool = True
    lines: bool = True
    capture_index_names: tuple = CAPTURE_INDEX_NAMES
    output_first: bool = True  # Model Monitor assumes the output columns come first
    raw: dict = field(default_factory=dict, compare=False)


def parse_dataset_format(dataset_format) -> DatasetFormat:
    """Model Monitor's dataset_format ({"csv": {...}} etc.), or a job definition's DatasetFormat
    ({"Csv": {"Header": true}}, {"Json": {"Line": true}}, {"Parquet": {}})."""
    if isinstance(dataset_format, str):
        try:
            dataset_format = json.loads(dataset_format)
        except json.JSONDecodeError as error:
            raise DataQualityError(f"dataset_format is not valid JSON ({error}): {dataset_format!r}") from None
    if not isinstance(dataset_format, dict) or len(dataset_format) != 1:
        raise DataQualityError(
            f"dataset_format must be an object with exactly one of {', '.join(SUPPORTED_FORMATS)}; "
            f"got {dataset_format!r}. Example: {{\"csv\": {{\"header\": true}}}}.")
    (key, options), = dataset_format.items()
    options = options or {}
    if not isinstance(options, dict):
        raise DataQualityError(f"dataset_format.{key} must be an object, got {options!r}")
    lowered = key[:1].lower() + key[1:]
    if lowered == "csv":
        position = str(options.get("output_columns_position", "START")).upper()
        if position not in ("START", "END"):
            raise DataQualityError(f"dataset_format.csv.output_columns_position must be START or END, got {position!r}")
        return DatasetFormat("csv", header=_flag(options, "header", "Header", default=True), raw=dataset_format)
    if lowered == "json":
        return DatasetFormat("json", lines=_flag(options, "lines", "Line", default=True), raw=dataset_format)
    if lowered == "parquet":
        return DatasetFormat("parquet", raw=dataset_format)
    if lowered == "sagemakerCaptureJson":
        names = options.get("captureIndexNames", list(CAPTURE_INDEX_NAMES))
        if not isinstance(names, list) or not names or any(name not in CAPTURE_INDEX_NAMES for name in names):
            raise DataQualityError(
                f"dataset_format.sagemakerCaptureJson.captureIndexNames must list endpointInput and/or "
                f"endpointOutput, got {names!r}")
        position = str(options.get("output_columns_position", "START")).upper()
        return DatasetFormat("capture", capture_index_names=tuple(names), output_first=position != "END",
                             raw=dataset_format)
    raise DataQualityError(
        f"dataset_format has the unknown key {key!r}; use one of {', '.join(SUPPORTED_FORMATS)} "
        f"(for example {{\"csv\": {{\"header\": true, \"output_columns_position\": \"START\"}}}}).")


def _flag(options: dict, name: str, aws_name: str, default: bool) -> bool:
    value = options.get(name, options.get(aws_name, default))
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise DataQualityError(f"dataset_format option {name!r} must be true or false, got {value!r}")
    return value


def source_files(source) -> list[Path]:
    """A file, or every file below a directory in sorted order. Names starting with '.' or '_'
    (_SUCCESS, .crc) are skipped, as Spark does."""
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataQualityError(f"dataset_source {str(path)!r} does not exist")
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        files.extend(Path(root, name) for name in sorted(names) if not name.startswith((".", "_")))
    return sorted(files)


def iter_batches(files: list[Path], fmt: DatasetFormat, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of a csv/json/parquet dataset; every file must have the first file's columns."""
    expected = None
    for path in files:
        reader = {"csv": _csv_batches, "json": _json_batches, "parquet": _parquet_batches}[fmt.kind]
        names = None
        for batch in reader(path, fmt, columns, expected):
            if names is None:
                names = batch.schema.names
                if expected is None:
                    expected = names
                elif columns is None and names != expected:
                    raise DataQualityError(_column_mismatch(path, files[0], names, expected))
            yield batch


def _column_mismatch(path: Path, first: Path, names: list, expected: list) -> str:
    return (f"{path} has the columns {names} but {first} has {expected}; every file of a dataset must "
            "have the same columns in the same order.")


# ---- CSV ------------------------------------------------------------------------------------------

def csv_column_names(path: Path, header: bool) -> list[str]:
    """The header's names, or Spark's _c0, _c1, ... for a file without one."""
    with open(path, newline="", encoding="utf-8", errors="replace") as stream:
        first = next(csv.reader(stream), None)
    if first is None:
        return []
    if not header:
        return [f"_c{i}" for i in range(len(first))]
    names = [name.strip() for name in first]
    blank = [i for i, name in enumerate(names) if not name]
    if blank:
        raise DataQualityError(f"{path}: header column {blank[0] + 1} has no name; name every column or set header to false")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataQualityError(f"{path}: the header names {duplicates} more than once; column names must be unique")
    return names


def _csv_batches(path: Path, fmt: DatasetFormat, columns, expected) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pcsv

    names = csv_column_names(path, fmt.header)
    if not names:
        return
    if expected is not None and columns is None and names != expected:
        raise DataQualityError(_column_mismatch(path, Path("the first file"), names, expected))
    wanted = columns if columns is not None else names
    missing = [name for name in wanted if name not in names]
    if missing:
        raise DataQualityError(f"{path} has no column {missing[0]!r}")
    options = dict(
        read_options=pcsv.ReadOptions(column_names=names, skip_rows=1 if fmt.header else 0, block_size=CSV_BLOCK_BYTES),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in names}, include_columns=wanted,
            strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True),
    )
    try:
        reader = pcsv.open_csv(path, **options)
        for batch in reader:
            if batch.num_rows:
                yield batch
    except pa.ArrowInvalid as error:
        raise DataQualityError(f"{path}: cannot read as CSV with {len(names)} columns: {error}") from None


# ---- JSON -----------------------------------------------------------------------------------------

def _json_batches(path: Path, fmt: DatasetFormat, columns, expected) -> Iterator[pa.RecordBatch]:
    if not fmt.lines:
        yield from _json_document_batches(path, columns)
        return
    import pyarrow.json as pjson

    try:
        reader = pjson.open_json(path, read_options=pjson.ReadOptions(block_size=CSV_BLOCK_BYTES))
        for batch in reader:
            yield _select(batch, columns)
    except pa.ArrowInvalid:
        # Mixed types in one field (a number here, a string there) or a nested value: read the
        # lines with the json module and keep every value as text, as Spark does for such fields.
        yield from _json_lines_as_text(path, columns)


def _json_lines_as_text(path: Path, columns) -> Iterator[pa.RecordBatch]:
    rows = []
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataQualityError(f"{path} line {number} is not valid JSON ({error.msg}); JSON Lines "
                                       "datasets need one JSON object per line") from None
            if not isinstance(record, dict):
                raise DataQualityError(f"{path} line {number} is a JSON {type(record).__name__}, not an object")
            rows.append(record)
            if len(rows) >= BATCH_ROWS:
                yield text_batch(rows, columns)
                rows = []
    if rows:
        yield text_batch(rows, columns)


def _json_document_batches(path: Path, columns) -> Iterator[pa.RecordBatch]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataQualityError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    records = document if isinstance(document, list) else [document]
    if not all(isinstance(record, dict) for record in records):
        raise DataQualityError(f"{path}: a JSON dataset must hold an object or a list of objects")
    for start in range(0, len(records), BATCH_ROWS):
        yield text_batch(records[start:start + BATCH_ROWS], columns)


def text_batch(records: list[dict], columns=None) -> pa.RecordBatch:
    """Records as string columns: numbers keep their JSON spelling, so Integral/Fractional is
    decided per value the way Deequ decides it for a Spark string column."""
    names = list(columns) if columns is not None else list(dict.fromkeys(key for record in records for key in record))
    arrays = [pa.array([json_text(record.get(name)) for record in records], type=pa.string()) for name in names]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def json_text(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def _select(batch: pa.RecordBatch, columns) -> pa.RecordBatch:
    if columns is None:
        return batch
    return pa.RecordBatch.from_arrays([batch.column(name) for name in columns], names=list(columns))


# ---- Parquet --------------------------------------------------------------------------------------

def _parquet_batches(path: Path, fmt: DatasetFormat, columns, expected, row_groups=None) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        # Text columns stay dictionary-encoded: value counts come from the indices, and the
        # strings are materialised once per distinct value instead of once per row.
        text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        parquet = pq.ParquetFile(path, read_dictionary=text)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataQualityError(f"{path} is not a Parquet file: {error}") from None
    # One row group at a time: given them all, the reader pre-buffers every row group's column
    # chunks at once, and memory grows with the file.
    for group in row_groups if row_groups is not None else range(parquet.num_row_groups):
        yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns, row_groups=[group])
