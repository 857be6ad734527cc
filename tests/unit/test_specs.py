"""Spec comparison, hashing and derived names."""

from __future__ import annotations

import pytest

from sagemaker_ops.specs import check_resource_name, derive_name, json_differences, spec_differences, spec_hash

REQUESTED = {
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/x",
    "PrimaryContainer": {"Image": "img:1", "ModelDataUrl": "s3://b/k/model.tar.gz", "Environment": {}},
}


def test_server_added_fields_and_empty_values_are_ignored():
    described = {
        "ModelName": "m",
        "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m",
        "CreationTime": "2026-01-01",
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/x",
        "PrimaryContainer": {"Image": "img:1", "ModelDataUrl": "s3://b/k/model.tar.gz", "Mode": "SingleModel"},
        "VpcConfig": {},
        "EnableNetworkIsolation": False,
    }
    assert spec_differences(REQUESTED, described) == []


def test_differences_name_the_field_and_both_values():
    described = {**REQUESTED, "PrimaryContainer": {**REQUESTED["PrimaryContainer"], "Image": "img:2"}}
    assert spec_differences(REQUESTED, described) == ["PrimaryContainer.Image: requested 'img:1', existing 'img:2'"]


def test_lists_are_compared_item_by_item_and_numbers_by_value():
    requested = {"ProductionVariants": [{"VariantName": "A", "InitialInstanceCount": 2, "InitialVariantWeight": 1}]}
    same = {"ProductionVariants": [{"VariantName": "A", "InitialInstanceCount": 2, "InitialVariantWeight": 1.0, "X": 1}]}
    other = {"ProductionVariants": [{"VariantName": "A", "InitialInstanceCount": 3, "InitialVariantWeight": 1.0}]}
    assert spec_differences(requested, same) == []
    assert spec_differences(requested, other) == [
        "ProductionVariants[0].InitialInstanceCount: requested 2, existing 3"
    ]
    assert spec_differences(requested, {"ProductionVariants": [same["ProductionVariants"][0]] * 2}) == [
        "ProductionVariants: requested 1 item(s), existing 2"
    ]


def test_json_differences_word_expected_and_got():
    assert json_differences(["setosa"], ["virginica"]) == ["[0]: expected 'setosa', got 'virginica'"]
    assert json_differences({"labels": ["a"]}, {"labels": ["a"], "scores": [0.9]}) == []


def test_hash_ignores_key_order_and_empty_values():
    reordered = {"PrimaryContainer": dict(reversed(list(REQUESTED["PrimaryContainer"].items()))),
                 "ExecutionRoleArn": REQUESTED["ExecutionRoleArn"]}
    assert spec_hash(REQUESTED) == spec_hash(reordered)
    assert spec_hash(REQUESTED) != spec_hash({**REQUESTED, "ExecutionRoleArn": "other"})


def test_derived_names_are_valid_and_bounded():
    name = derive_name("iris", REQUESTED)
    assert name.startswith("iris-") and len(name) == len("iris-") + 10
    long_name = derive_name("a" * 80, REQUESTED)
    assert len(long_name) == 63
    check_resource_name("model_name", long_name)


def test_invalid_names_are_explained():
    with pytest.raises(ValueError, match="endpoint_name must be 1-63 letters"):
        check_resource_name("endpoint_name", "bad_name!")
    with pytest.raises(ValueError, match="name_prefix 'bad_prefix'"):
        derive_name("bad_prefix", REQUESTED)
