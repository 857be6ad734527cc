"""Column profiles: one streaming pass over record batches, mergeable across worker processes.

Types follow Deequ's per-value inference (analyzers/DataType.scala): a text value is Integral,
Fractional, String or null, and a column is Unknown (all null), String (any String value),
Fractional (any Fractional value) or Integral. Typed sources (Parquet, JSON numbers) use the Arrow
type, as Deequ uses the Spark schema. Deviations, chosen so a number is a number everywhere:
- numbers in exponent form (``1e-05``, as Python and NumPy write them) are Fractional, not String;
  a lone sign or dot is String, not a number; Deequ's optional space after the sign is not allowed;
- ``true``/``false`` (Deequ's Boolean) count as String: Model Monitor has no Boolean type;
- NaN and infinite values of floating-point columns (Parquet, JSON numbers) are missing, as pandas
  treats NaN, instead of poisoning the mean; the text ``nan`` in a CSV is a String, as in Deequ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import kll
from .errors import DataQualityError

INTEGRAL, FRACTIONAL, STRING, UNKNOWN = "Integral", "Fractional", "String", "Unknown"
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
INTEGER_PATTERN = r"^[+-]?\d+$"
NOT_INTEGER_MARKS = r"[.eE]"
KIND_INTEGRAL, KIND_FRACTIONAL, KIND_STRING = 0, 1, 2
# Text columns keep exact value counts while they look numeric only up to this many distinct
# values; a numeric column that turns String after that is profiled again (see needs_rescan).
NUMERIC_TEXT_COUNT_CAP = 10_000


@dataclass
class ColumnProfile:
    name: str
    arrow_kind: str | None = None  # INTEGRAL/FRACTIONAL/STRING for typed columns, None for text
    nulls: int = 0
    integral: int = 0
    fractional: int = 0
    strings: int = 0
    # numeric moments over the values that are numbers (Chan et al. to merge)
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    sketch_bytes: bytes | None = None
    # exact value counts of non-null values (None once dropped for a numeric high-cardinality column)
    value_counts: dict | None = field(default_factory=dict)
    count_cap: int | None = NUMERIC_TEXT_COUNT_CAP
    _sketch: object = field(default=None, repr=False, compare=False)

    @property
    def present(self) -> int:
        return self.integral + self.fractional + self.strings

    @property
    def needs_rescan(self) -> bool:
        """A String column whose value counts were dropped while it still looked numeric."""
        return self.value_counts is None and self.inferred_type == STRING

    @property
    def inferred_type(self) -> str:
        if self.present == 0:
            return UNKNOWN
        if self.arrow_kind is not None:
            return self.arrow_kind
        if self.strings:
            return STRING
        return FRACTIONAL if self.fractional else INTEGRAL

    def sketch(self):
        if self._sketch is None:
            from datasketches import kll_doubles_sketch

            self._sketch = kll_doubles_sketch.deserialize(self.sketch_bytes) if self.sketch_bytes else kll.new_sketch()
            self.sketch_bytes = None
        return self._sketch

    def __getstate__(self):  # sketches cross process boundaries as bytes
        state = dict(self.__dict__)
        if self._sketch is not None:
            state["sketch_bytes"] = self._sketch.serialize()
        state["_sketch"] = None
        return state

    # ---- updates -------------------------------------------------------------------------------

    def add(self, array: pa.Array) -> None:
        """Profile one batch of this column."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        kind = arrow_kind(array.type, self.name)
        if kind in (INTEGRAL, FRACTIONAL):
            self.arrow_kind = kind if self.arrow_kind in (None, kind) else FRACTIONAL
            self._add_typed_numbers(array, kind)
        else:
            if kind == STRING:
                self.arrow_kind = STRING
                array = pc.cast(array, pa.string())
            self._add_text(array)

    def _add_typed_numbers(self, array: pa.Array, kind: str) -> None:
        values = array.to_numpy(zero_copy_only=False)  # nulls arrive as NaN
        if values.dtype != np.float64:
            values = values.astype(np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]
        present = len(values)
        self.nulls += len(array) - present
        if kind == INTEGRAL:
            self.integral += present
        else:
            self.fractional += present
        self._add_numbers(values)

    def _add_text(self, array: pa.Array) -> None:
        self.nulls += array.null_count
        text = array.drop_null() if array.null_count else array
        if len(text) == 0:
            return
        if self.value_counts is not None:
            counted = pc.value_counts(text)
            values, counts = counted.field("values"), counted.field("counts").to_numpy()
            self._count_values(values, counts)
            if len(values) * 4 <= len(text):  # few distinct values: classify those, weighted by count
                self._classify(values, counts)
                return
        self._classify(text, None)

    def _classify(self, text: pa.Array, weights: np.ndarray | None) -> None:
        kinds, numbers = classify_text(text)
        per_kind = np.bincount(kinds, weights=weights, minlength=3)
        self.integral += int(per_kind[KIND_INTEGRAL])
        self.fractional += int(per_kind[KIND_FRACTIONAL])
        self.strings += int(per_kind[KIND_STRING])
        if self.arrow_kind == STRING:
            return  # a typed non-text column (booleans, dates) is never numeric
        numeric = kinds != KIND_STRING
        if not numeric.all():
            numbers = numbers[numeric]
            weights = weights[numeric] if weights is not None else None
        if weights is not None:
            numbers = np.repeat(numbers, weights)
        self._add_numbers(numbers)

    def _count_values(self, values: pa.Array, counts: np.ndarray) -> None:
        merged = self.value_counts
        for value, count in zip(values.to_pylist(), counts.tolist()):
            merged[value] = merged.get(value, 0) + count
        if self.count_cap is not None and len(merged) > self.count_cap and not self.strings and self.arrow_kind != STRING:
            self.value_counts = None

    def _add_numbers(self, values: np.ndarray) -> None:
        n = len(values)
        if n == 0:
            return
        batch_total = float(values.sum())
        batch_mean = batch_total / n
        batch_m2 = float(np.var(values)) * n
        merge_moments(self, n, batch_mean, batch_m2, batch_total, float(values.min()), float(values.max()))
        # datasketches takes writable arrays only; Arrow hands out read-only views.
        self.sketch().update(values if values.flags.writeable else values.copy())

def merge_moments(profile: ColumnProfile, n: int, mean: float, m2: float, total: float, low: float, high: float) -> None:
    combined = profile.count + n
    delta = mean - profile.mean
    profile.m2 += m2 + delta * delta * profile.count * n / combined
    profile.mean += delta * n / combined
    profile.count = combined
    profile.total += total
    profile.minimum = min(profile.minimum, low)
    profile.maximum = max(profile.maximum, high)


def arrow_kind(data_type: pa.DataType, column: str) -> str | None:
    """INTEGRAL/FRACTIONAL for numeric Arrow types, STRING for other scalars, None for text."""
    if pa.types.is_integer(data_type):
        return INTEGRAL
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return FRACTIONAL
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or pa.types.is_null(data_type):
        return None
    if pa.types.is_dictionary(data_type):
        return arrow_kind(data_type.value_type, column)
    if pa.types.is_nested(data_type):
        raise DataQualityError(
            f"Column '{column}' has the nested type {data_type}; Model Monitor profiles flat columns only. "
            "Flatten it into scalar columns first.")
    return STRING  # booleans, timestamps, dates, binary: profiled as their text


def classify_text(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per non-null text value: its kind (KIND_INTEGRAL, KIND_FRACTIONAL, KIND_STRING) and its
    number (NaN for strings).

    Fast path: the column casts to float64 as a whole (tried on a sample first, because a failing
    Arrow cast is slow) and has no nan/inf spellings; then only '.', 'e' or 'E' tell Fractional
    from Integral. Otherwise two anchored regexes decide.
    """
    if pa.types.is_dictionary(text.type):
        text = text.dictionary_decode()
    numbers = _as_floats(text)
    if numbers is not None and np.isfinite(numbers).all():
        kinds = pc.match_substring_regex(text, NOT_INTEGER_MARKS).to_numpy(zero_copy_only=False).astype(np.int8)
        return kinds, numbers
    is_number = pc.match_substring_regex(text, NUMBER_PATTERN)
    is_integer = pc.match_substring_regex(text, INTEGER_PATTERN).to_numpy(zero_copy_only=False)
    number_mask = is_number.to_numpy(zero_copy_only=False)
    kinds = np.where(number_mask, np.where(is_integer, KIND_INTEGRAL, KIND_FRACTIONAL), KIND_STRING).astype(np.int8)
    numbers = np.full(len(text), np.nan)
    if number_mask.any():
        numbers[number_mask] = pc.cast(text.filter(is_number), pa.float64()).to_numpy(zero_copy_only=False)
    return kinds, numbers


def _as_floats(text: pa.Array) -> np.ndarray | None:
    try:
        pc.cast(text.slice(0, 64), pa.float64())
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


@dataclass
class DatasetProfile:
    """Profiles of every column, in first-seen order, and the number of rows."""

    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    rows: int = 0
    count_cap: int | None = NUMERIC_TEXT_COUNT_CAP

    def add_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        for name, column in zip(batch.schema.names, batch.columns):
            profile = self.columns.get(name)
            if profile is None:
                profile = self.columns[name] = ColumnProfile(name, count_cap=self.count_cap)
                profile.nulls += self.rows  # rows before this column appeared had no value for it
            profile.add(column)
        for name, profile in self.columns.items():
            if name not in batch.schema.names:
                profile.nulls += batch.num_rows
        self.rows += batch.num_rows

    def merge_columns(self, other: "DatasetProfile") -> None:
        """Join profiles of other columns over the same rows (a column split)."""
        self.columns.update(other.columns)
        self.rows = max(self.rows, other.rows)
