"""The ML instance types the emulator knows: size and us-east-1 on-demand price of each.

The numbers live in ``instance_types.json`` beside this module, with a ``source`` line saying where they
come from and how old they are. A type missing there is added to that file, not special-cased in code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("instance_types.json")


class UnknownInstanceType(KeyError):
    """The instance type is not in the catalog file."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"instance type {self.name!r} is not in the instance catalog {CATALOG_FILE.name}"


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    gpus: int
    price_per_hour_usd: float


@dataclass(frozen=True)
class Catalog:
    source: str
    as_of: str
    region: str
    types: dict[str, InstanceType]


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    raw = json.loads(CATALOG_FILE.read_text())
    types = {row["name"]: InstanceType(**row) for row in raw["instance_types"]}
    return Catalog(source=raw["source"], as_of=raw["as_of"], region=raw["region"], types=types)


def instance_type(name: str) -> InstanceType:
    try:
        return catalog().types[name]
    except KeyError:
        raise UnknownInstanceType(name) from None


def known_instance_types() -> list[InstanceType]:
    return list(catalog().types.values())
