"""Compare, hash and name SageMaker resource specs.

Pure helpers. A "spec" is the request we would send to a Create* call (minus tags). The same
name with the same spec is reused; the same name with a different spec is a conflict. Describe
responses carry more than we sent (ARNs, times, server defaults), so comparison asks only
whether every field we asked for is there with the same value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

# SageMaker model / endpoint-config / endpoint names.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
NAME_MAX_LENGTH = 63
SPEC_HASH_LENGTH = 10


def normalise(value: Any) -> Any:
    """Drop empty values (None, "", {}, []) recursively; AWS treats them as "not set"."""
    if isinstance(value, dict):
        cleaned = {key: normalise(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if not _is_empty(item)}
    if isinstance(value, list | tuple):
        return [normalise(item) for item in value]
    return value


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def spec_differences(requested: Any, existing: Any) -> list[str]:
    """
    List the fields where ``existing`` does not satisfy ``requested``, ignoring empty values.

    Every key of a requested dict must be present and equal in the existing one (extra keys in
    ``existing`` are server-added and ignored); lists must have the same length and match item by
    item; numbers compare by value (1 == 1.0). Each difference reads
    ``<path>: requested <value>, existing <value>``.
    """
    return _differences(normalise(requested), normalise(existing), "", ("requested", "existing"))


def json_differences(expected: Any, actual: Any) -> list[str]:
    """Like :func:`spec_differences` but exact about empty values, worded ``expected ..., got ...``."""
    return _differences(expected, actual, "", ("expected", "got"))


def _differences(wanted_value: Any, found_value: Any, path: str, words: tuple[str, str]) -> list[str]:
    wanted_word, found_word = words
    if isinstance(wanted_value, dict) and isinstance(found_value, dict):
        differences = []
        for key, wanted in wanted_value.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in found_value:
                differences.append(f"{child}: {wanted_word} {wanted!r}, {found_word} <not set>")
            else:
                differences.extend(_differences(wanted, found_value[key], child, words))
        return differences
    if isinstance(wanted_value, list) and isinstance(found_value, list):
        if len(wanted_value) != len(found_value):
            return [f"{path or '<root>'}: {wanted_word} {len(wanted_value)} item(s), {found_word} {len(found_value)}"]
        differences = []
        for index, (wanted, found) in enumerate(zip(wanted_value, found_value, strict=True)):
            differences.extend(_differences(wanted, found, f"{path}[{index}]", words))
        return differences
    if _same_scalar(wanted_value, found_value):
        return []
    return [f"{path or '<root>'}: {wanted_word} {wanted_value!r}, {found_word} {found_value!r}"]


def _same_scalar(left: Any, right: Any) -> bool:
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers) and not isinstance(left, bool):
        return float(left) == float(right)
    return left == right


def spec_hash(spec: Any, length: int = SPEC_HASH_LENGTH) -> str:
    """Short, stable hex digest of a spec (key order and empty values do not matter)."""
    canonical = json.dumps(normalise(spec), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:length]


def derive_name(prefix: str, spec: Any) -> str:
    """
    ``<prefix>-<spec hash>``, trimmed to SageMaker's 63-character limit.

    A new spec gives a new name, so a changed model yields a new model, a new endpoint config and
    therefore an UpdateEndpoint, while a re-run with the same inputs reuses everything.
    """
    digest = spec_hash(spec)
    room = NAME_MAX_LENGTH - len(digest) - 1
    name = f"{prefix[:room].rstrip('-')}-{digest}"
    if not is_valid_name(name):
        raise ValueError(
            f"name_prefix {prefix!r} gives the invalid SageMaker name {name!r}: "
            "use letters, digits and single hyphens, starting with a letter or digit."
        )
    return name


def is_valid_name(name: Any) -> bool:
    """Whether ``name`` is a valid SageMaker model, endpoint-config or endpoint name."""
    return isinstance(name, str) and len(name) <= NAME_MAX_LENGTH and bool(NAME_PATTERN.match(name))


def check_resource_name(field: str, name: Any) -> str:
    """Return ``name`` if it is a valid SageMaker resource name, else raise naming ``field``."""
    if not is_valid_name(name):
        raise ValueError(
            f"{field} must be 1-63 letters, digits or hyphens, starting with a letter or digit; got {name!r}."
        )
    return name


def check_tags(tags: Any) -> None:
    """Tags are given as a mapping of tag key to value."""
    if tags is not None and not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a mapping of tag key to value, got {type(tags).__name__}.")


def aws_tags(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """``{"team": "ml"}`` as AWS's ``Tags`` list (``[{"Key": "team", "Value": "ml"}]``), sorted by key."""
    return [{"Key": str(key), "Value": str(value)} for key, value in sorted((tags or {}).items())]
