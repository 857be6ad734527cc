"""The instance catalog: every hosting type the project uses is known, sized and priced."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import botocore
import pytest

from sagemaker_rules.instance_catalog import (
    CATALOG_FILE,
    InstanceType,
    UnknownInstanceType,
    catalog,
    instance_type,
    known_instance_types,
)

REQUIRED = ("ml.t2.medium", "ml.t2.large", "ml.t2.xlarge", "ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge",
            "ml.m5.4xlarge", "ml.c5.large", "ml.c5.xlarge", "ml.c5.2xlarge", "ml.c5.4xlarge", "ml.r5.large",
            "ml.r5.xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge", "ml.p3.2xlarge", "ml.inf1.xlarge")


def hosting_enum() -> set[str]:
    path = Path(botocore.__file__).parent / "data/sagemaker/2017-07-24/service-2.json.gz"
    shapes = json.loads(gzip.decompress(path.read_bytes()))["shapes"]
    return set(shapes["ProductionVariantInstanceType"]["enum"])


def test_lookup_returns_a_frozen_record():
    m5 = instance_type("ml.m5.large")
    assert m5 == InstanceType("ml.m5.large", vcpus=2, memory_mib=8192, gpus=0, price_per_hour_usd=0.115)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m5.vcpus = 4  # type: ignore[misc]


def test_unknown_type_raises_a_typed_error_naming_the_file():
    with pytest.raises(UnknownInstanceType) as caught:
        instance_type("ml.m5d.large")
    assert caught.value.name == "ml.m5d.large"
    assert isinstance(caught.value, KeyError)
    assert CATALOG_FILE.name in str(caught.value)


def test_every_required_type_is_known_and_sane():
    known = {t.name: t for t in known_instance_types()}
    assert set(REQUIRED) <= set(known)
    for t in known.values():
        assert t.vcpus > 0 and t.memory_mib >= 1024 and t.gpus >= 0 and t.price_per_hour_usd > 0, t
    assert known["ml.g4dn.xlarge"].gpus == known["ml.p3.2xlarge"].gpus == 1
    assert known["ml.inf1.xlarge"].gpus == 0  # an Inferentia chip, not a GPU


def test_every_type_is_one_sagemaker_can_host():
    assert {t.name for t in known_instance_types()} <= hosting_enum()


def test_the_file_says_where_its_numbers_come_from():
    meta = catalog()
    assert meta.region == "us-east-1"
    assert "pricing" in meta.source and "not fetched live".lower() in meta.source.lower()
    assert meta.as_of
