"""Accepted means honoured, or said: every member of every request the emulator serves is classified."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.model import ListShape, Shape, StructureShape

from sagemaker_emulator.sagemaker.responses import OPERATIONS
from sagemaker_emulator.sagemaker.shapes import operation_model
from sagemaker_emulator.sagemaker.unsupported import HONOURED, NO_LOCAL_EFFECT, REFUSED, values_at

# Operations that only name a resource: every member is honoured.
_NAMING = ("Describe", "Delete", "Stop", "Start")


def member_paths(shape: Shape, prefix: str = "") -> list[str]:
    """Every member path below ``shape``, in the notation of unsupported.py (``List[].Member``)."""
    paths = []
    for name, member in shape.members.items():
        path = f"{prefix}{name}"
        paths.append(path)
        inner = member.member if isinstance(member, ListShape) else member
        if isinstance(inner, StructureShape) and inner.name != "Tag" and path.count(".") < 6:
            paths += member_paths(inner, path + ("[]." if isinstance(member, ListShape) else "."))
    return paths


def classified(operation: str) -> set[str]:
    paths = set(HONOURED.get(operation, ()))
    paths |= {path.split("=", 1)[0] for path in NO_LOCAL_EFFECT.get(operation, {})}
    paths |= {refusal.path for refusal in REFUSED.get(operation, ())}
    return paths


def covered(path: str, by: set[str]) -> bool:
    """A classified path covers itself, what is beneath it, and the structures above it."""
    path, by = path.replace("[]", ""), {c.replace("[]", "") for c in by}
    return any(path == c or path.startswith(c + ".") or c.startswith(path + ".") for c in by)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_request_member_is_honoured_refused_or_listed_as_no_local_effect(operation):
    if operation.startswith(_NAMING):
        return
    unclassified = [p for p in member_paths(operation_model("sagemaker", operation).input_shape)
                    if not covered(p, classified(operation))]
    assert unclassified == [], f"{operation}: classify these members in sagemaker/unsupported.py"


@pytest.mark.parametrize("operation", sorted(set(HONOURED) | set(NO_LOCAL_EFFECT) | set(REFUSED)))
def test_classified_paths_exist_in_botocore(operation):
    assert operation in OPERATIONS
    if operation.startswith("List"):
        return  # the pager's members, shared by every List*
    known = set(member_paths(operation_model("sagemaker", operation).input_shape))
    assert [p for p in classified(operation) if p not in known] == []


def test_values_at_names_each_list_member_as_aws_does():
    params = {"ProductionVariants": [{"VariantName": "a"}, {"VariantName": "b", "RoutingConfig": {"x": 1}}]}
    assert list(values_at(params, "ProductionVariants[].RoutingConfig")) == [
        ("ProductionVariants.2.RoutingConfig", {"x": 1})]


def test_the_readme_lists_every_member_with_no_local_effect():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("**Accepted, no local effect**", 1)[1].split("\n\n", 2)[1]
    for operation, members in NO_LOCAL_EFFECT.items():
        for path in members:
            leaf = path.split("=", 1)[0].rsplit(".", 1)[-1].replace("[]", "")
            assert f"{leaf}" in table, f"README: {operation} {path} is missing from 'Accepted, no local effect'"
