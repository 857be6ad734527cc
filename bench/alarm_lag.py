"""Alarm evaluation lag: from the first breaching datapoint published to the alarm reading ALARM.

Printed beside the alarm's evaluation period as the emulator runs it (Period / time scale), in the
same run, for two sources of datapoints:

  client     PutMetricData of one breaching value (no Timestamp: stamped on arrival), an alarm on
             it with Period 60, EvaluationPeriods 1. Expected: at most one scaled period plus the
             evaluator's grace, on average half a period (the datapoint lands anywhere in its period
             and is evaluated when that period completes).
  endpoint   the emulator's own Invocation5XXErrors (Average >= 0.5) of a real endpoint whose model
             raises: the clock starts at the first failing InvokeEndpoint's answer, so the lag also
             holds the telemetry flush (metrics_flush_seconds, 1 s) before the datapoint exists.

Each round creates a fresh alarm, waits until its first evaluation (OK, notBreaching) and a random
part of a period, then publishes, polling DescribeAlarms every 5 ms.

    python bench/alarm_lag.py [--time-scale 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import textwrap
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosting_options import Bench  # noqa: E402  (same deploy helpers)

from sagemaker_emulator.launcher import EmulatorProcess, free_port  # noqa: E402

PERIOD = 60
FAILING_MODEL = textwrap.dedent("""
    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        raise RuntimeError("this model always fails")
""")


def wait_for_state(cloudwatch, name: str, state: str, seconds: float = 60.0) -> float:
    """The moment (time.monotonic) the alarm was first seen in ``state``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == state:
            return time.monotonic()
        time.sleep(0.005)
    raise TimeoutError(f"{name} did not reach {state} within {seconds} s")


def put_alarm(cloudwatch, name: str, namespace: str, metric: str, dimensions: list, threshold: float) -> None:
    cloudwatch.put_metric_alarm(AlarmName=name, Namespace=namespace, MetricName=metric, Statistic="Average",
                                Dimensions=dimensions, Period=PERIOD, EvaluationPeriods=1, Threshold=threshold,
                                ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")
    wait_for_state(cloudwatch, name, "OK")


def client_round(cloudwatch, index: int, scaled_period: float) -> float:
    name, namespace = f"bench-client-{index}", f"Bench/{index}"
    put_alarm(cloudwatch, name, namespace, "Errors", [], 1.0)
    time.sleep(random.uniform(0, scaled_period))
    started = time.monotonic()
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "Errors", "Value": 5.0}])
    return wait_for_state(cloudwatch, name, "ALARM") - started


def endpoint_round(bench: Bench, cloudwatch, endpoint: str, index: int, scaled_period: float) -> float:
    from botocore.exceptions import ClientError

    name = f"bench-5xx-{index}"
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    put_alarm(cloudwatch, name, "AWS/SageMaker", "Invocation5XXErrors", dimensions, 0.5)
    time.sleep(random.uniform(0, scaled_period))
    try:
        bench.runtime.invoke_endpoint(EndpointName=endpoint, Body=b"[1]", ContentType="application/json")
    except ClientError:
        pass
    started = time.monotonic()
    lag = wait_for_state(cloudwatch, name, "ALARM") - started
    cloudwatch.delete_alarms(AlarmNames=[name])
    time.sleep(3 * scaled_period)  # the failure leaves the next alarm's evaluation range
    return lag


def report(label: str, lags: list[float], scaled_period: float) -> None:
    print(f"{label:<9} {scaled_period:>8.2f} s {min(lags):>8.2f} s {median(lags):>8.2f} s {max(lags):>8.2f} s "
          f"{max(lags) / scaled_period:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scaled_period = PERIOD / args.time_scale
    port = free_port()
    with EmulatorProcess(port, time_scale=args.time_scale):
        bench = Bench(f"http://127.0.0.1:{port}")
        import boto3

        cloudwatch = boto3.client("cloudwatch", endpoint_url=bench.url, region_name="us-east-1",
                                  aws_access_key_id="bench", aws_secret_access_key="bench")
        client = [client_round(cloudwatch, i, scaled_period) for i in range(args.rounds)]
        endpoint = "bench-failing"
        bench.endpoint(endpoint, {"ModelDataUrl": bench.upload("failing/model.tar.gz", FAILING_MODEL)},
                       {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
        own = [endpoint_round(bench, cloudwatch, endpoint, i, scaled_period) for i in range(args.rounds)]
    print(f"Alarm lag, Period {PERIOD} s at time scale {args.time_scale:g}, {args.rounds} rounds each "
          "(goal: within one evaluation period plus one second)")
    print(f"{'source':<9} {'period':>10} {'min':>10} {'median':>10} {'max':>10} {'max/period':>10}")
    report("client", client, scaled_period)
    report("endpoint", own, scaled_period)


if __name__ == "__main__":
    main()
