"""The next UpdateEndpointWeightsAndCapacities call: weights together, capacities one variant at a time."""

from __future__ import annotations

import pytest

from sagemaker_ops.variant_weights import check_targets, current_weights, next_update, traffic_shares


def endpoint(**variants) -> dict:
    """A DescribeEndpoint answer; each variant is (weight, instance count or None for serverless)."""
    described = []
    for name, (weight, count) in variants.items():
        variant = {"VariantName": name, "CurrentWeight": weight, "DesiredWeight": weight}
        if count is not None:
            variant.update(CurrentInstanceCount=count, DesiredInstanceCount=count)
        described.append(variant)
    return {"EndpointName": "ab", "EndpointStatus": "InService", "ProductionVariants": described}


def test_weight_changes_go_into_one_call_and_unchanged_variants_are_left_out():
    update = next_update(endpoint(A=(1.0, 1), B=(1.0, 1), C=(2.0, 1)), {"A": 1, "B": 9, "C": 0}, None)
    assert update.desired == [{"VariantName": "B", "DesiredWeight": 9.0}, {"VariantName": "C", "DesiredWeight": 0.0}]
    assert update.description == "weights B=9 C=0"


def test_capacity_changes_come_after_weights_one_variant_per_call():
    described = endpoint(A=(1.0, 1), B=(9.0, 1))
    assert next_update(described, {"A": 1, "B": 9}, {"A": 2, "B": 3}).desired == [
        {"VariantName": "A", "DesiredInstanceCount": 2}]
    described = endpoint(A=(1.0, 2), B=(9.0, 1))
    assert next_update(described, {"A": 1, "B": 9}, {"A": 2, "B": 3}).description == "instances B=3"


def test_an_endpoint_already_there_needs_no_call():
    assert next_update(endpoint(A=(1.0, 2), B=(9.0, 1)), {"A": 1.0000000001, "B": 9}, {"A": 2}) is None


@pytest.mark.parametrize(
    ("weights", "counts", "message"),
    [
        ({"C": 1}, None, "Endpoint ab has no variant 'C'; its variants are A, S"),
        (None, {"S": 2}, "Variant S of endpoint ab is serverless: it has no instances to count"),
        ({"A": 0, "S": 0}, None, "At least one variant of endpoint ab needs a weight above 0"),
    ],
)
def test_impossible_targets_are_refused(weights, counts, message):
    with pytest.raises(ValueError, match=message):
        check_targets(endpoint(A=(1.0, 1), S=(1.0, None)), weights, counts)


def test_shares_are_weight_over_total():
    assert traffic_shares({"A": 1, "B": 9}) == {"A": 0.1, "B": 0.9}
    assert traffic_shares({"A": 0}) == {"A": 0.0}
    assert current_weights(endpoint(A=(1.0, 1), B=(3.0, 1))) == {"A": 1.0, "B": 3.0}
