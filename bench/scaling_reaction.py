"""Scale-out reaction: the first breaching datapoint to the new instances serving, beside the alarm's
evaluation window and the measured instance start-up time, in the same run.

Each run: an endpoint (1 instance of a tiny model that answers with its instance's id) gets target
tracking on SageMakerVariantInvocationsPerInstance at 10 (1-3 instances, ScaleOutCooldown 60); a client
thread invokes it at a fixed rate above the target. From the AlarmHigh's history (DescribeAlarmHistory:
the evaluated datapoints when it went to ALARM), the scaling activity and the answers:

  first breach   the end of the first breaching period (its datapoint exists from then on)
  window closed  the end of the third breaching period: the alarm's 3 of 3 can decide
  decision       the scaling activity's StartTime (UpdateEndpointWeightsAndCapacities sent)
  InService      the activity's EndTime: the new instances serve (DescribeEndpoint InService)
  serving        the first answer from a new instance (the load's resolution: one request interval)

Before the runs, the instance start-up time is measured on the same path the autoscaler takes:
UpdateEndpointWeightsAndCapacities 1 -> 2 until InService. Goals: decision within one period of the
window closing; InService within the measured start-up time of the decision (both on the same path;
the start-up is measured without load, the runs under it).

    python bench/scaling_reaction.py [--time-scale 20] [--runs 3] [--rate 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import textwrap
import threading
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosting_options import Bench  # noqa: E402  (same deploy helpers)

from sagemaker_emulator.launcher import EmulatorProcess, free_port  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
PERIOD, DATAPOINTS, TARGET = 60, 3, 10.0
MODEL = textwrap.dedent("""
    import json, os

    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        return json.dumps({"instance": os.getpgid(0)}), "application/json"
""")


class Load:
    """Invokes at a fixed rate from a thread; keeps (answered at, instance) per answer and the failures."""

    def __init__(self, bench: Bench, endpoint: str, rate: float):
        self.bench, self.endpoint, self.interval = bench, endpoint, 1 / rate
        self.answers: list[tuple[float, int]] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                body = self.bench.runtime.invoke_endpoint(EndpointName=self.endpoint, Body=b"{}",
                                                          ContentType="application/json")["Body"].read()
                self.answers.append((time.time(), json.loads(body)["instance"]))
            except Exception:  # noqa: BLE001 - counted and printed
                self.failures += 1
            due += self.interval
            self._stop.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def wait_in_service(bench: Bench, endpoint: str) -> dict:
    bench.sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 0.05,
                                                                                        "MaxAttempts": 6000})
    return bench.sm.describe_endpoint(EndpointName=endpoint)


def measure_startup(bench: Bench, endpoint: str, rate: float, repeats: int = 3) -> dict[int, float]:
    """Seconds from UpdateEndpointWeightsAndCapacities(1 -> n) to InService, for n = 2 and 3, under the
    same load as the runs (median of ``repeats``): what a scale-out to n instances takes on this machine."""
    load = Load(bench, endpoint, rate)
    startup = {}
    for count in (2, 3):
        samples = []
        for _ in range(repeats):
            started = time.time()
            bench.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "DesiredInstanceCount": count}])
            wait_in_service(bench, endpoint)
            samples.append(time.time() - started)
            bench.sm.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "DesiredInstanceCount": 1}])
            wait_in_service(bench, endpoint)
        startup[count] = median(samples)
    load.stop()
    return startup


def one_run(bench: Bench, aas, cloudwatch, name: str, rate: float, period: float) -> dict:
    model_data = bench.upload(f"{name}/model.tar.gz", MODEL)
    bench.endpoint(name, {"ModelDataUrl": model_data}, {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
    resource = f"endpoint/{name}/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, MinCapacity=1, MaxCapacity=3,
                                 ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    policy = aas.put_scaling_policy(
        PolicyName="react", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": TARGET, "ScaleOutCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    high = next(a["AlarmName"] for a in policy["Alarms"] if "-AlarmHigh-" in a["AlarmName"])
    load = Load(bench, name, rate)
    deadline = time.time() + 120
    while not any(a["StatusCode"] == "Successful" for a in activities(aas, resource)) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # a few answers from the new instances
    load.stop()
    activity = activities(aas, resource)[-1]
    breach = first_alarm_datapoints(cloudwatch, high)
    first_breach = breach[0] + period
    window_closed = breach[-1] + period
    decision = activity["StartTime"].timestamp()
    first_instance = load.answers[0][1]
    serving = min(at for at, instance in load.answers if instance != first_instance and at >= decision)
    bench.sm.delete_endpoint(EndpointName=name)
    return {"instances": int(activity["Description"].split()[-1].rstrip(".")),
            "first_breach_to_serving_s": serving - first_breach,
            "window_close_to_decision_s": decision - window_closed,
            "decision_to_in_service_s": activity["EndTime"].timestamp() - decision,
            "decision_to_first_new_answer_s": serving - decision, "scaled_to": activity["Description"],
            "failures": load.failures, "answers": len(load.answers)}


def activities(aas, resource: str) -> list[dict]:
    return list(reversed(aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                         ResourceId=resource)["ScalingActivities"]))


def first_alarm_datapoints(cloudwatch, alarm: str) -> list[float]:
    """Start times (epoch s) of the periods the alarm evaluated when it went to ALARM, oldest first."""
    history = cloudwatch.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")
    for item in history["AlarmHistoryItems"]:
        data = json.loads(item["HistoryData"])
        if data["newState"]["stateValue"] == "ALARM":
            stamps = [p["timestamp"] for p in data["newState"]["stateReasonData"]["evaluatedDatapoints"]]
            return sorted(dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() for s in stamps)
    raise RuntimeError(f"{alarm} never went to ALARM")


def client(bench: Bench, service: str):
    import boto3

    return boto3.client(service, endpoint_url=bench.url, region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=8, help="requests per second (24 per 3 s period at 8)")
    args = parser.parse_args()
    period = PERIOD / args.time_scale
    OUT.mkdir(exist_ok=True)
    port = free_port()
    with EmulatorProcess(port, time_scale=args.time_scale, log=OUT / "scaling_reaction.emulator.log"):
        bench = Bench(f"http://127.0.0.1:{port}")
        aas, cloudwatch = client(bench, "application-autoscaling"), client(bench, "cloudwatch")
        bench.upload("startup/model.tar.gz", MODEL)
        bench.endpoint("startup", {"ModelDataUrl": "s3://bench/startup/model.tar.gz"},
                       {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
        startup = measure_startup(bench, "startup", args.rate)
        runs = [one_run(bench, aas, cloudwatch, f"react-{i}", args.rate, period) for i in range(args.runs)]
    summary = {"time_scale": args.time_scale, "period_s": period, "evaluation_window_s": DATAPOINTS * period,
               "startup_s_by_instances": startup, "runs": runs}
    (OUT / "scaling_reaction.json").write_text(json.dumps(summary, indent=2))
    print(f"time scale {args.time_scale:g}: period {period:.2f} s, AlarmHigh window {DATAPOINTS} periods = "
          f"{DATAPOINTS * period:.2f} s, measured start-up under the same load (median of 3): "
          f"1 -> 2 instances {startup[2]:.2f} s, 1 -> 3 instances {startup[3]:.2f} s")
    for i, run in enumerate(runs, 1):
        goal = startup[run["instances"]]
        print(f"run {i}: first breaching datapoint -> new instance serving {run['first_breach_to_serving_s']:.2f} s "
              f"| window closed -> decision {run['window_close_to_decision_s']:.2f} s (goal <= {period:.2f}) "
              f"| decision -> InService {run['decision_to_in_service_s']:.2f} s (goal <= {goal:.2f}), "
              f"first answer from a new instance {run['decision_to_first_new_answer_s']:.2f} s "
              f"| {run['scaled_to']} | {run['failures']} failed of {run['answers'] + run['failures']}")
    worst_decision = max(r["window_close_to_decision_s"] for r in runs)
    late = [r["decision_to_in_service_s"] - startup[r["instances"]] for r in runs]
    print(f"goals: decision within one period of the window closing: "
          f"{'met' if worst_decision <= period else 'MISSED'} (worst {worst_decision:.2f} s); InService within the "
          f"measured start-up time: {sum(x <= 0 for x in late)} of {len(runs)} runs (worst {max(late):+.2f} s)")

if __name__ == "__main__":
    main()
