"""Percentiles from CloudWatch metric queries: GetMetricStatistics ExtendedStatistics and GetMetricData pNN."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from tests.emulator.conftest import wait_until


def publish_one_to_hundred(cloudwatch, namespace: str) -> datetime:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "api"}],
         "Values": [float(value) for value in range(1, 101)], "Unit": "Milliseconds", "Timestamp": now}])
    return now


def test_get_metric_statistics_answers_the_percentiles_asked_beside_the_statistics(emulator):
    cloudwatch = emulator.client("cloudwatch")
    namespace = f"Test/{uuid.uuid4().hex[:8]}"
    now = publish_one_to_hundred(cloudwatch, namespace)
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName="Latency", Dimensions=[{"Name": "Service", "Value": "api"}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5), Period=600,
        Statistics=["Average", "Maximum"], ExtendedStatistics=["p50", "p99", "p99.9"])
    [datapoint] = answer["Datapoints"]
    assert (datapoint["Average"], datapoint["Maximum"]) == (50.5, 100.0)
    assert datapoint["ExtendedStatistics"] == {"p50": 50.0, "p99": 99.0, "p99.9": 100.0}


def test_get_metric_data_answers_a_percentile_stat(emulator):
    cloudwatch = emulator.client("cloudwatch")
    namespace = f"Test/{uuid.uuid4().hex[:8]}"
    now = publish_one_to_hundred(cloudwatch, namespace)
    answer = cloudwatch.get_metric_data(
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=5),
        MetricDataQueries=[{"Id": "p90", "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": "Latency",
                       "Dimensions": [{"Name": "Service", "Value": "api"}]},
            "Period": 600, "Stat": "p90"}}])
    [result] = answer["MetricDataResults"]
    assert result["Values"] == [90.0]


def test_the_emulators_model_latency_has_percentiles(emulator, deployer):
    endpoint = deployer.endpoint(deployer.config(deployer.model()))
    for value in range(20):
        deployer.invoke(endpoint, {"value": value})
    cloudwatch = emulator.client("cloudwatch")
    query = dict(Namespace="AWS/SageMaker", MetricName="ModelLatency",
                 Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
                 StartTime=datetime.now(timezone.utc) - timedelta(minutes=5),
                 EndTime=datetime.now(timezone.utc) + timedelta(minutes=2), Period=600,
                 Statistics=["SampleCount", "Maximum", "Minimum"], ExtendedStatistics=["p50", "p99"])

    def all_counted():  # the runtime publishes its metrics about once a second
        points = cloudwatch.get_metric_statistics(**query)["Datapoints"]
        return points if sum(point["SampleCount"] for point in points) >= 20 else None

    [datapoint] = wait_until(all_counted, 30, "20 ModelLatency samples")
    p50, p99 = datapoint["ExtendedStatistics"]["p50"], datapoint["ExtendedStatistics"]["p99"]
    assert datapoint["Minimum"] <= p50 <= p99 <= datapoint["Maximum"]
