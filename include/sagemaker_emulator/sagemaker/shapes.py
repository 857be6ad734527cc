"""Request validation against botocore's service model, with AWS's own error wording.

AWS reports constraint failures as
``N validation error(s) detected: Value 'x' at 'endpointName' failed to satisfy constraint: ...``
joined by ``; ``; type mismatches come back as ``SerializationException``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from sagemaker_emulator.sagemaker.errors import AwsError, ValidationException

_TYPES = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "long": int,
    "float": (int, float),
    "double": (int, float),
    "timestamp": (int, float, str),
    "blob": (str, bytes),
}


@lru_cache(maxsize=None)
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel | None:
    model = service_model(service)
    return model.operation_model(operation) if operation in model.operation_names else None


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: leave it to the behaviour layer
        return None


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _aws_path(parts: list[str]) -> str:
    return ".".join(parts)


class _Validator:
    def __init__(self) -> None:
        self.violations: list[str] = []

    def fail(self, value: Any, path: list[str], constraint: str) -> None:
        shown = "null" if value is None else f"'{_render(value)}'"
        self.violations.append(
            f"Value {shown} at '{_aws_path(path)}' failed to satisfy constraint: {constraint}"
        )

    def check(self, shape: Shape, value: Any, path: list[str]) -> None:
        expected = _TYPES.get(shape.type_name)
        if isinstance(shape, StructureShape):
            if not isinstance(value, dict):
                raise AwsError("SerializationException", f"Expected an object at '{_aws_path(path)}'")
            self._structure(shape, value, path)
        elif isinstance(shape, ListShape):
            if not isinstance(value, list):
                raise AwsError("SerializationException", f"Expected a list at '{_aws_path(path)}'")
            self._length(shape, value, len(value), path)
            for index, item in enumerate(value, start=1):
                self.check(shape.member, item, path + [str(index), "member"])
        elif isinstance(shape, MapShape):
            if not isinstance(value, dict):
                raise AwsError("SerializationException", f"Expected a map at '{_aws_path(path)}'")
            self._length(shape, value, len(value), path)
            for key, item in value.items():
                self.check(shape.key, key, path + ["key"])
                self.check(shape.value, item, path + [str(key)])
        elif expected is not None:
            if not isinstance(value, expected) or (shape.type_name != "boolean" and isinstance(value, bool)):
                raise AwsError("SerializationException",
                               f"Expected {shape.type_name} at '{_aws_path(path)}', got {type(value).__name__}")
            self._scalar(shape, value, path)

    def _structure(self, shape: StructureShape, value: dict, path: list[str]) -> None:
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(None, path + [name[0].lower() + name[1:]], "Member must not be null")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                self.check(member, value[name], path + [name[0].lower() + name[1:]])

    def _length(self, shape: Shape, value: Any, length: int, path: list[str]) -> None:
        meta = shape.metadata
        if "min" in meta and length < meta["min"]:
            self.fail(value, path, f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and length > meta["max"]:
            self.fail(value, path, f"Member must have length less than or equal to {meta['max']}")

    def _scalar(self, shape: Shape, value: Any, path: list[str]) -> None:
        meta = shape.metadata
        if shape.type_name == "string":
            self._length(shape, value, len(value), path)
            if shape.enum and value not in shape.enum:
                self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
            pattern = meta.get("pattern")
            compiled = _compiled(pattern) if pattern else None
            if compiled is not None and not compiled.fullmatch(value):
                self.fail(value, path, f"Member must satisfy regular expression pattern: {pattern}")
        elif shape.type_name in ("integer", "long", "float", "double"):
            if "min" in meta and value < meta["min"]:
                self.fail(value, path, f"Member must have value greater than or equal to {meta['min']}")
            if "max" in meta and value > meta["max"]:
                self.fail(value, path, f"Member must have value less than or equal to {meta['max']}")


def validate_input(service: str, operation: str, params: dict) -> None:
    """Raise ``ValidationException`` (or ``SerializationException``) as AWS would for ``params``."""
    op = operation_model(service, operation)
    if op is None or op.input_shape is None:
        return
    validator = _Validator()
    validator.check(op.input_shape, params, [])
    if validator.violations:
        count = len(validator.violations)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(validator.violations))
