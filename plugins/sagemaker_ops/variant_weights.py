"""Decide the next UpdateEndpointWeightsAndCapacities call that moves an endpoint to the wanted weights.

Pure logic for ``UpdateVariantWeightsOperator``: it describes the endpoint, asks
:func:`next_update`, makes the call, waits, and asks again until nothing is left to change.
AWS changes the weights of one or more variants, or the capacity of one variant, per call
(UpdateEndpointWeightsAndCapacities API reference), so every weight change goes into one call and
each instance-count change into a call of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Weights are floats on the wire; closer than this they are the same weight.
WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class WeightUpdate:
    """One call's ``DesiredWeightsAndCapacities`` and a line saying what it changes."""

    desired: list[dict[str, Any]]
    description: str


def check_targets(
    endpoint: Mapping[str, Any], weights: Mapping[str, float] | None, instance_counts: Mapping[str, int] | None
) -> None:
    """Raise ValueError if a wanted variant does not exist, or a serverless variant is given instances."""
    variants = {variant["VariantName"]: variant for variant in endpoint.get("ProductionVariants", [])}
    for name in {**(weights or {}), **(instance_counts or {})}:
        if name not in variants:
            raise ValueError(
                f"Endpoint {endpoint['EndpointName']} has no variant {name!r}; its variants are "
                f"{', '.join(sorted(variants))}."
            )
    for name in instance_counts or {}:
        if "CurrentInstanceCount" not in variants[name]:
            raise ValueError(
                f"Variant {name} of endpoint {endpoint['EndpointName']} is serverless: it has no instances to count."
            )
    final = {**current_weights(endpoint), **(weights or {})}
    if not any(weight > 0 for weight in final.values()):
        raise ValueError(f"At least one variant of endpoint {endpoint['EndpointName']} needs a weight above 0, "
                         f"got {final}.")


def next_update(
    endpoint: Mapping[str, Any], weights: Mapping[str, float] | None, instance_counts: Mapping[str, int] | None
) -> WeightUpdate | None:
    """The next call for an ``InService`` endpoint (a DescribeEndpoint response), or None when it is there."""
    served = {variant["VariantName"]: variant for variant in endpoint.get("ProductionVariants", [])}
    weight_changes = {
        name: float(weight)
        for name, weight in sorted((weights or {}).items())
        if abs(served[name].get("CurrentWeight", 0.0) - float(weight)) > WEIGHT_TOLERANCE
    }
    if weight_changes:
        return WeightUpdate(
            desired=[{"VariantName": name, "DesiredWeight": weight} for name, weight in weight_changes.items()],
            description="weights " + " ".join(f"{name}={weight:g}" for name, weight in weight_changes.items()),
        )
    for name, count in sorted((instance_counts or {}).items()):
        if served[name].get("CurrentInstanceCount") != count:
            return WeightUpdate(
                desired=[{"VariantName": name, "DesiredInstanceCount": int(count)}],
                description=f"instances {name}={count}",
            )
    return None


def current_weights(endpoint: Mapping[str, Any]) -> dict[str, float]:
    """Each variant's ``CurrentWeight`` (what the endpoint routes by now)."""
    return {v["VariantName"]: float(v.get("CurrentWeight", 0.0)) for v in endpoint.get("ProductionVariants", [])}


def traffic_shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Each variant's share of the traffic: its weight over the sum of weights (AWS's routing rule)."""
    total = sum(weights.values())
    return {name: (weight / total if total > 0 else 0.0) for name, weight in weights.items()}
