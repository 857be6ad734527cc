"""Generic field readers for pipeline files: each reads one field and reports a problem by its path.

A :class:`FieldReader` collects one self-contained line per problem, worded
``<file>: <field path> <what is wrong>, got <value>``, so that every problem of a file is reported
at once. The section parsers (``model_section``, ``endpoint_section``, ...) are made of these calls.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MISSING = object()  # a field that is absent (None is a value a YAML file can hold)

# Shapes several sections check (AWS's own patterns, where AWS has one).
SAGEMAKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
INSTANCE_TYPE_PATTERN = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
S3_URI_PATTERN = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")
S3_URI = {"pattern": S3_URI_PATTERN, "expectation": "an S3 URI like s3://bucket/prefix"}


class PipelineConfigError(ValueError):
    """One or more pipeline files are invalid; ``errors`` holds one self-contained line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("Invalid release pipeline configuration:\n" + "\n".join(errors))


class FieldReader:
    """Reads a parsed YAML document field by field, collecting one message per problem."""

    def __init__(self, shown_path: str, base_dir: Path) -> None:
        self.shown_path = shown_path
        self.base_dir = base_dir
        self.errors: list[str] = []

    def fail(self, field_path: str, message: str, value: Any = MISSING) -> None:
        got = "" if value is MISSING else f", got {value!r}"
        self.errors.append(f"{self.shown_path}: {field_path} {message}{got}")

    def section(self, top: dict, key: str, read: Callable[[dict], Any]) -> Any:
        """Read a required section; if it is missing, report that once rather than each of its fields."""
        if key not in top or top[key] is None:
            self.fail(key, "is required (a mapping)")
            return None
        if not isinstance(top[key], Mapping):
            self.fail(key, "must be a mapping", top[key])
            return None
        return read(dict(top[key]))

    def mapping(self, value: Any, path: str, *, required: bool = False) -> dict:
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            if path == "<file>":
                self.errors.append(f"{self.shown_path}: must hold a mapping (name, owner, model, endpoint, ...)")
            else:
                self.fail(path, "must be a mapping", value)
            return {}
        return dict(value)

    def no_unknown_keys(self, data: dict, path: str, allowed: set[str]) -> None:
        for key in sorted(set(data) - allowed, key=str):
            self.fail(join(path, str(key)), f"is not a known field (known: {', '.join(sorted(allowed))})")

    def string(self, data: dict, path: str, key: str, *, default: Any = MISSING, pattern: re.Pattern | None = None,
               max_length: int | None = None, expectation: str = "a string") -> Any:
        value = data.get(key, default)
        field_path = join(path, key)
        if value is None and default is MISSING:
            value = MISSING
        if value is MISSING:
            self.fail(field_path, f"is required ({_article(expectation)})")
            return None
        if key not in data or value is None:
            return value
        if not isinstance(value, str) or not value.strip():
            self.fail(field_path, f"must be {_article(expectation)}", value)
            return None
        if (pattern and not pattern.match(value)) or (max_length and len(value) > max_length):
            limit = f" of at most {max_length} characters" if max_length else ""
            self.fail(field_path, f"must be {_article(expectation)}{limit}", value)
            return None
        return value

    def integer(self, data: dict, path: str, key: str, *, minimum: int, maximum: int | None = None,
                default: Any = MISSING) -> Any:
        value = data.get(key, default)
        field_path = join(path, key)
        bounds = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
        if value is MISSING:
            self.fail(field_path, f"is required ({bounds})")
            return None
        if key not in data:
            return value  # the default
        if (not isinstance(value, int) or isinstance(value, bool) or value < minimum
                or (maximum is not None and value > maximum)):
            self.fail(field_path, f"must be {bounds}", value)
            return None
        return value

    def choice(self, data: dict, path: str, key: str, choices: tuple[str, ...], *, default: str) -> str | None:
        value = data.get(key, default)
        if value not in choices:
            self.fail(join(path, key), f"must be one of {', '.join(choices)}", value)
            return None
        return value

    def item_list(self, data: dict, path: str, key: str, items: str) -> list:
        """A required, non-empty list (its items are checked by the caller)."""
        value = data.get(key, MISSING)
        if value is MISSING:
            self.fail(join(path, key), f"is required (a list of {items})")
            return []
        if not isinstance(value, list) or not value:
            self.fail(join(path, key), f"must be a non-empty list of {items}", value)
            return []
        return value

    def unique(self, values: list[str], field_path: str, what: str) -> None:
        if len(set(values)) != len(values):
            self.fail(field_path, f"must have unique {what}, got {values}")

    def number(self, data: dict, path: str, key: str, *, minimum: float, default: float) -> Any:
        value = data.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
            self.fail(join(path, key), f"must be a number >= {minimum}", value)
            return None
        return float(value)

    def boolean(self, data: dict, path: str, key: str, *, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(join(path, key), "must be true or false", value)
            return default
        return value

    def string_list(self, data: dict, path: str, key: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.fail(join(path, key), "must be a list of strings", value)
            return []
        return value

    def string_map(self, data: dict, path: str, key: str) -> dict[str, str]:
        value = data.get(key, {}) or {}
        if not isinstance(value, Mapping):
            self.fail(join(path, key), "must be a mapping of strings to strings", value)
            return {}
        for item_key, item in value.items():
            if not isinstance(item_key, str) or not isinstance(item, str):
                self.fail(join(join(path, key), str(item_key)), "must be a string (quote numbers and booleans)", item)
        return {str(item_key): str(item) for item_key, item in value.items()}

    def folder(self, data: dict, path: str, key: str) -> Path | None:
        return self._existing_path(data, path, key, Path.is_dir, "folder")

    def file(self, data: dict, path: str, key: str) -> Path | None:
        return self._existing_path(data, path, key, Path.is_file, "file")

    def _existing_path(self, data: dict, path: str, key: str, exists: Callable[[Path], bool],
                       what: str) -> Path | None:
        """A path relative to the pipeline file's folder (``~`` expanded) that must exist as ``what``."""
        location = self.string(data, path, key, expectation="a path")
        if location is None:
            return None
        resolved = (self.base_dir / os.path.expanduser(location)).resolve()
        if not exists(resolved):
            self.fail(join(path, key), f"must be an existing {what} (resolved to {resolved})", location)
            return None
        return resolved


def join(path: str, key: str) -> str:
    """The field path of ``key`` under ``path`` (``endpoint`` + ``name`` -> ``endpoint.name``)."""
    return f"{path}.{key}" if path else key


def _article(expectation: str) -> str:
    if expectation.startswith(("a ", "an ", "the ", "lowercase")):
        return expectation
    return f"a {expectation}"
