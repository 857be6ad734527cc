"""Production variants: traffic split by weight, TargetVariant, and UpdateEndpointWeightsAndCapacities."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from botocore.exceptions import ClientError
from scipy.stats import binomtest

# A correct router fails a split check with probability below this (two-sided binomial test).
SIGNIFICANCE = 1e-4


def ab_endpoint(deployer, weights=(1.0, 1.0), counts=(1, 1)) -> str:
    models = [deployer.model(factor=1), deployer.model(factor=2)]
    config = deployer.name("ab-config")
    deployer.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": f"Variant{i + 1}", "ModelName": model, "InstanceType": "ml.m5.large",
         "InitialInstanceCount": count, "InitialVariantWeight": weight}
        for i, (model, weight, count) in enumerate(zip(models, weights, counts))])
    return deployer.endpoint(config)


def split(deployer, endpoint: str, calls: int) -> Counter:
    return Counter(deployer.invoke(endpoint, {"values": [1]})["variant"] for _ in range(calls))


def assert_share(counts: Counter, variant: str, expected: float) -> None:
    total = sum(counts.values())
    result = binomtest(counts[variant], total, expected)
    assert result.pvalue > SIGNIFICANCE, (
        f"{variant} got {counts[variant]}/{total} calls, expected a share of {expected:.2f} (p={result.pvalue:.2g})")


def test_traffic_splits_by_weight_and_moves_from_1_1_to_1_9(deployer):
    endpoint = ab_endpoint(deployer)
    described = deployer.sm.describe_endpoint(EndpointName=endpoint)
    assert [(v["VariantName"], v["CurrentWeight"]) for v in described["ProductionVariants"]] == [
        ("Variant1", 1.0), ("Variant2", 1.0)]
    before = split(deployer, endpoint, 300)
    assert set(before) == {"Variant1", "Variant2"}
    assert_share(before, "Variant1", 0.5)

    deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
        {"VariantName": "Variant1", "DesiredWeight": 1}, {"VariantName": "Variant2", "DesiredWeight": 9}])
    deployer.wait(endpoint)
    after = split(deployer, endpoint, 400)
    assert_share(after, "Variant2", 0.9)


def test_target_variant_bypasses_the_split(deployer):
    endpoint = ab_endpoint(deployer, weights=(1.0, 0.0))
    answers = [deployer.invoke(endpoint, {"values": [1]}, TargetVariant="Variant2") for _ in range(10)]
    assert {(a["variant"], a["result"][0]) for a in answers} == {("Variant2", 2)}
    assert set(split(deployer, endpoint, 20)) == {"Variant1"}  # weight 0 gets no random traffic
    with pytest.raises(ClientError) as caught:
        deployer.invoke(endpoint, {}, TargetVariant="Variant9")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Variant9" in caught.value.response["Error"]["Message"]


def test_capacity_changes_without_failed_requests(deployer):
    endpoint = ab_endpoint(deployer)
    errors, answered, stop = [], Counter(), threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                answered[deployer.invoke(endpoint, {})["pid"]] += 1
            except Exception as error:  # noqa: BLE001 - every failure is what the test counts
                errors.append(error)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
            {"VariantName": "Variant2", "DesiredInstanceCount": 3, "DesiredWeight": 3}])
        during = deployer.sm.describe_endpoint(EndpointName=endpoint)
        assert during["EndpointStatus"] == "Updating"
        variant2 = during["ProductionVariants"][1]
        assert (variant2["DesiredInstanceCount"], variant2["DesiredWeight"]) == (3, 3.0)
        assert (variant2["CurrentInstanceCount"], variant2["CurrentWeight"]) == (1, 1.0)
        after = deployer.wait(endpoint)["ProductionVariants"][1]
        assert (after["CurrentInstanceCount"], after["CurrentWeight"]) == (3, 3.0)
        served_before = sum(answered.values())
        while sum(answered.values()) < served_before + 60:
            pass
        deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
            {"VariantName": "Variant2", "DesiredInstanceCount": 1}])
        assert deployer.wait(endpoint)["ProductionVariants"][1]["CurrentInstanceCount"] == 1
    finally:
        stop.set()
        sender.join()
    assert errors == []
    assert len(answered) >= 4  # Variant1's instance plus Variant2's three served


def test_weights_and_capacities_errors(deployer):
    endpoint = ab_endpoint(deployer)
    arn = deployer.sm.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    cases = [
        ([{"VariantName": "Nope", "DesiredWeight": 1}], f'The variant name "Nope" is not present in endpoint "{arn}".'),
        ([{"VariantName": "Variant1", "DesiredWeight": 0}, {"VariantName": "Variant2", "DesiredWeight": 0}],
         "At least one production variant must have a DesiredWeight greater than 0."),
    ]
    for desired, message in cases:
        with pytest.raises(ClientError) as caught:
            deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint,
                                                              DesiredWeightsAndCapacities=desired)
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert caught.value.response["Error"]["Message"].startswith(message)
    deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
        {"VariantName": "Variant1", "DesiredInstanceCount": 2}])  # starting a process takes a while
    with pytest.raises(ClientError) as caught:  # a second change while the first is in progress
        deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
            {"VariantName": "Variant1", "DesiredWeight": 3}])
    assert caught.value.response["Error"]["Message"] == f'Cannot update in-progress endpoint "{arn}".'
    deployer.wait(endpoint)


def test_update_endpoint_retains_scaled_counts_and_weights_when_asked(deployer):
    endpoint = ab_endpoint(deployer)
    deployer.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
        {"VariantName": "Variant1", "DesiredInstanceCount": 2, "DesiredWeight": 3}])
    deployer.wait(endpoint)
    models = [v["ModelName"] for v in deployer.sm.describe_endpoint_config(
        EndpointConfigName=deployer.sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])[
        "ProductionVariants"]]
    config = deployer.name("ab-config")
    deployer.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": f"Variant{i + 1}", "ModelName": model, "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1, "InitialVariantWeight": 1.0} for i, model in enumerate(models)])

    deployer.sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config, RetainAllVariantProperties=True,
                                ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredWeight"}])
    described = deployer.wait(endpoint)
    assert described["EndpointConfigName"] == config
    assert [(v["VariantName"], v["CurrentInstanceCount"], v["CurrentWeight"]) for v in described["ProductionVariants"]] \
        == [("Variant1", 2, 1.0), ("Variant2", 1, 1.0)]  # the count retained, the weight from the new config
