"""Rollback reaction: a broken canary's first failed request to 100% of the traffic on blue again.

Printed beside the alarm's evaluation period as the emulator runs it (Period / time scale), in the same
run. Goal: within one evaluation period plus one second.

Each run: an endpoint serving a good blue config (2 instances) gets a guarded canary UpdateEndpoint to a
green config (2 instances) whose model raises on every request (HTTP 500 from the container), with a long
bake (WaitIntervalInSeconds 1200) and AutoRollbackConfiguration naming a fresh alarm on green's
Invocation5XXErrors (EndpointConfigName dimension, Sum >= 1, Period 60, EvaluationPeriods 1,
TreatMissingData notBreaching). A client thread invokes the endpoint back to back throughout (retries off,
so each request is one attempt); the main thread polls DescribeAlarms and DescribeEndpoint. Per run:

  t0        the answer to the first request green failed: the first datum of the first breaching datapoint
  ALARM     the alarm's StateUpdatedTimestamp when it went into ALARM (evaluation lag: the 1 s metrics
            flush, the period completing); the deployment polls its alarms every 0.1 s
  all blue  t1: the first request sent after green's last answer; every answer from then on is blue's
            (resolution: one request, a few ms; the router switches in one assignment)
  InService DescribeEndpoint first seen InService on the old config, FailureReason naming the alarm

Reaction = t1 - t0. Every failed request must come from green ("green is broken"); blue never fails.

    python bench/rollback_reaction.py [--time-scale 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosting_options import ROLE, Bench  # noqa: E402  (same deploy helpers)

from sagemaker_emulator.launcher import EmulatorProcess, free_port  # noqa: E402
from sagemaker_ops.load_test.background import BackgroundCalls  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
PERIOD = 60
ENDPOINT = "rollback-bench"
GREEN_FAILURE = "green is broken"
BLUE_MODEL = textwrap.dedent("""
    import json

    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        return json.dumps({"fleet": "blue"}), "application/json"
""")
GREEN_MODEL = textwrap.dedent(f"""
    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        raise RuntimeError("{GREEN_FAILURE}")
""")
CANARY = {"BlueGreenUpdatePolicy": {
    "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 1200,
                                    "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
    "TerminationWaitInSeconds": 600}}


@dataclass
class Request:
    sent: float  # time.time(): the same clock as the alarm's StateUpdatedTimestamp
    answered: float
    fleet: str  # "blue", "green" (failed with green's error) or "other" (any other failure: must not happen)
    detail: str = ""


class Traffic(BackgroundCalls):
    """Invokes the endpoint back to back from its own thread, keeping every request's times and fleet."""

    def __init__(self, url: str, endpoint: str):
        import boto3

        super().__init__()
        from botocore.config import Config

        # One attempt per request: botocore would otherwise retry 5XX answers and hide green's failures.
        self.runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                                    aws_access_key_id="bench", aws_secret_access_key="bench",
                                    config=Config(retries={"total_max_attempts": 1}))
        self.endpoint = endpoint
        self.requests: list[Request] = []

    def _invoke(self) -> tuple[str, str]:
        try:
            body = self.runtime.invoke_endpoint(EndpointName=self.endpoint, Body=b"[1]",
                                                ContentType="application/json")["Body"].read()
        except Exception as error:  # noqa: BLE001 - every failure is counted and classified
            return ("green" if GREEN_FAILURE in str(error) else "other"), str(error)[:300]
        fleet = json.loads(body).get("fleet")
        return ("blue", "") if fleet == "blue" else ("other", f"unexpected answer {body[:100]!r}")

    def call(self) -> None:
        sent = time.time()
        fleet, detail = self._invoke()
        self.requests.append(Request(sent, time.time(), fleet, detail))


def put_green_alarm(cloudwatch, name: str, green: str) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"},
                    {"Name": "EndpointConfigName", "Value": green}],
        Period=PERIOD, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching")


def watch_until_settled(bench: Bench, cloudwatch, alarm: str, seconds: float = 60.0) -> tuple[float, float, dict]:
    """Poll until the endpoint leaves Updating: (alarm went into ALARM, settled seen, DescribeEndpoint)."""
    alarm_seen = float("nan")
    deadline = time.time() + seconds
    while time.time() < deadline:
        if alarm_seen != alarm_seen:  # still NaN
            described_alarm = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
            if described_alarm["StateValue"] == "ALARM":  # when the evaluator set it (ms), not when polled
                alarm_seen = described_alarm["StateUpdatedTimestamp"].timestamp()
        described = bench.sm.describe_endpoint(EndpointName=ENDPOINT)
        if described["EndpointStatus"] != "Updating":
            return alarm_seen, time.time(), described
        time.sleep(0.01)
    raise TimeoutError(f"{ENDPOINT} was still Updating after {seconds} s: the alarm never rolled it back")


def one_run(bench: Bench, cloudwatch, index: int, green_model: str, scaled_period: float) -> dict:
    green, alarm = f"green-{index}", f"green-5xx-{index}"
    bench.sm.create_endpoint_config(EndpointConfigName=green, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": green_model, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 2}])
    put_green_alarm(cloudwatch, alarm, green)
    deployment = {**CANARY, "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]}}
    with Traffic(bench.url, ENDPOINT) as traffic:
        # blue alone first; then a random phase, so green's first failure lands anywhere in an alarm period
        time.sleep(0.3 + random.uniform(0, scaled_period))
        started = time.time()
        bench.sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=green, DeploymentConfig=deployment)
        alarm_seen, settled, described = watch_until_settled(bench, cloudwatch, alarm)
        time.sleep(1.0)  # and blue alone after: nothing reaches green any more
    if described["EndpointStatus"] != "InService" or described["EndpointConfigName"] != ENDPOINT:
        raise RuntimeError(f"run {index}: expected InService on {ENDPOINT}, got {described['EndpointStatus']} "
                           f"on {described['EndpointConfigName']}: {described.get('FailureReason')}")
    requests = traffic.requests
    green_answers = [i for i, r in enumerate(requests) if r.fleet == "green"]
    if not green_answers:
        raise RuntimeError(f"run {index}: green never received traffic")
    first_green, last_green = requests[green_answers[0]], requests[green_answers[-1]]
    t0 = first_green.answered
    t1 = requests[green_answers[-1] + 1].sent  # the request after green's last answer, and all after it: blue
    others = [r for r in requests if r.fleet == "other"]
    during = [r for r in requests if r.sent >= started]
    return {
        "run": index,
        "green_config": green,
        "alarm": alarm,
        "scaled_period_s": scaled_period,
        "reaction_s": t1 - t0,
        "t0_to_alarm_s": alarm_seen - t0,
        "alarm_to_all_blue_s": t1 - alarm_seen,
        "t0_to_in_service_s": settled - t0,
        "update_to_first_green_failure_s": t0 - started,
        "t1_resolution_s": t1 - last_green.sent,
        "requests": len(requests),
        "requests_during_update": len(during),
        "failed": len(green_answers) + len(others),
        "failed_by_green": len(green_answers),
        "failed_elsewhere": len(others),
        "failed_share_during_update": (len(green_answers) + len(others)) / max(len(during), 1),
        "other_details": [r.detail for r in others[:5]],
        "failure_reason": described.get("FailureReason", ""),
    }


def print_table(results: list[dict], scaled_period: float, time_scale: float) -> None:
    goal = scaled_period + 1.0
    print(f"Rollback reaction, alarm Period {PERIOD} s at time scale {time_scale:g} = {scaled_period:.2f} s "
          f"per evaluation period; goal: reaction <= period + 1 s = {goal:.2f} s")
    print(f"{'run':>3} {'period':>7} {'->ALARM':>8} {'->blue':>8} {'reaction':>9} {'->InSvc':>8} "
          f"{'requests':>8} {'failed':>7} {'share':>6} {'by blue':>7}")
    for r in results:
        print(f"{r['run']:>3} {r['scaled_period_s']:>6.2f}s {r['t0_to_alarm_s']:>7.2f}s "
              f"{r['alarm_to_all_blue_s']:>7.3f}s {r['reaction_s']:>8.2f}s {r['t0_to_in_service_s']:>7.2f}s "
              f"{r['requests_during_update']:>8} {r['failed']:>7} {r['failed_share_during_update']:>6.1%} "
              f"{r['failed_elsewhere']:>7}")
    reactions = [r["reaction_s"] for r in results]
    print(f"median reaction {median(reactions):.2f} s, max {max(reactions):.2f} s, beside the period "
          f"{scaled_period:.2f} s: {'within' if max(reactions) <= goal else 'NOT within'} the goal ({goal:.2f} s)")
    failed, total = sum(r["failed"] for r in results), sum(r["requests_during_update"] for r in results)
    by_blue = sum(r["failed_elsewhere"] for r in results)
    print(f"failed requests during the updates: {failed} of {total} ({failed / max(total, 1):.1%}), "
          f"{failed - by_blue} from green, {by_blue} not from green (must be 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    scaled_period = PERIOD / args.time_scale
    print(f"time scale {args.time_scale:g}: alarm Period {PERIOD} s = {scaled_period:.2f} s real", flush=True)
    OUT.mkdir(exist_ok=True)
    port = free_port()
    with EmulatorProcess(port, time_scale=args.time_scale, log=OUT / "rollback_reaction.emulator.log"):
        bench = Bench(f"http://127.0.0.1:{port}")
        import boto3

        cloudwatch = boto3.client("cloudwatch", endpoint_url=bench.url, region_name="us-east-1",
                                  aws_access_key_id="bench", aws_secret_access_key="bench")
        bench.endpoint(ENDPOINT, {"ModelDataUrl": bench.upload("blue/model.tar.gz", BLUE_MODEL)},
                       {"InstanceType": "ml.m5.large", "InitialInstanceCount": 2})
        green_model = "broken-green"
        bench.sm.create_model(ModelName=green_model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "bench", "ModelDataUrl": bench.upload("green/model.tar.gz", GREEN_MODEL)})
        results = []
        for index in range(1, args.runs + 1):
            results.append(one_run(bench, cloudwatch, index, green_model, scaled_period))
            print(f"run {index}: reaction {results[-1]['reaction_s']:.2f} s", flush=True)
    print_table(results, scaled_period, args.time_scale)
    reactions = [r["reaction_s"] for r in results]
    summary = {"time_scale": args.time_scale, "period_s": PERIOD, "scaled_period_s": scaled_period,
               "goal_s": scaled_period + 1.0, "median_reaction_s": median(reactions),
               "max_reaction_s": max(reactions), "runs": results}
    path = OUT / "rollback_reaction.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
