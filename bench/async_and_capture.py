"""Asynchronous inference latency and data capture overhead, measured in one run on one machine.

  async     InvokeEndpointAsync with an inline body on the trivial model: time until the 202 answer,
            and until the result object exists in S3 (polled with HEAD every millisecond), beside
            InvokeEndpoint on a real-time endpoint of the same model (the reference).
            ``TotalProcessingTime`` is the queue's own figure (received -> result written).
  capture   the same trivial model on two real-time endpoints, one capturing 100 % of its traffic:
            the emulator's CPU time per request (user + system, from the OS) with and without
            capture, interleaved over rounds, and the in-process cost of ``CaptureWriter.record``
            (the hot path) and of formatting and writing one record at flush time. The flush runs
            on a timer off the request path (every 60 s at time scale 1), so the per-request CPU
            figures cover the hot path; the flush's share is the in-process figure.

    python bench/async_and_capture.py [--requests 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from statistics import median, quantiles

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosting_options import Bench  # noqa: E402  (same deploy helpers)
from router_overhead import PAYLOAD, TRIVIAL_MODEL, run_generator  # noqa: E402

from sagemaker_emulator.launcher import EmulatorProcess, free_port  # noqa: E402

CAPTURE = {"InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://bench/capture",
           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
           "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}


def percentiles(values: list[float]) -> dict:
    cuts = quantiles(values, n=100)
    return {"p50": median(values), "p90": cuts[89], "p99": cuts[98]}


def deploy(bench: Bench, name: str, model_data: str, **config) -> str:
    bench.sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                          PrimaryContainer={"Image": "bench", "ModelDataUrl": model_data})
    bench.sm.create_endpoint_config(EndpointConfigName=name, **config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    bench.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    bench.sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
    return name


def async_latency(bench: Bench, model_data: str, requests: int) -> dict:
    endpoint = deploy(bench, "async", model_data,
                      AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://bench/async-out"}})
    real_time = deploy(bench, "real-time", model_data)
    accepted, done, reference = [], [], []
    for i in range(requests + 10):  # the first 10 warm up
        started = time.perf_counter()
        location = bench.runtime.invoke_endpoint_async(EndpointName=endpoint, Body=PAYLOAD,
                                                       ContentType="application/json")["OutputLocation"]
        answered = time.perf_counter()
        key = location[len("s3://bench/"):]
        while True:
            try:
                bench.s3.head_object(Bucket="bench", Key=key)
                break
            except bench.s3.exceptions.ClientError:
                time.sleep(0.001)
        finished = time.perf_counter()
        sync_ms = bench.timed_invoke(real_time)
        if i >= 10:
            accepted.append((answered - started) * 1000)
            done.append((finished - started) * 1000)
            reference.append(sync_ms)
    time.sleep(2.5)  # let the queue publish its metrics
    processing = bench_metric(bench, endpoint, "TotalProcessingTime")
    return {"accepted_ms": percentiles(accepted), "result_in_s3_ms": percentiles(done),
            "invoke_endpoint_ms": percentiles(reference), "total_processing_time_ms": processing}


def bench_metric(bench: Bench, endpoint: str, metric: str) -> dict:
    import datetime as dt

    import boto3

    cloudwatch = boto3.client("cloudwatch", endpoint_url=bench.url, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
    now = dt.datetime.now(dt.timezone.utc)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName=metric, Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
        StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=1), Period=7200,
        Statistics=["Average", "Maximum", "SampleCount"])["Datapoints"]
    return {k: points[0][k] for k in ("Average", "Maximum", "SampleCount")} if points else {}


def capture_cpu(bench: Bench, model_data: str, emulator_pid: int, requests: int, rounds: int) -> dict:
    urls = {"without": deploy(bench, "plain", model_data), "with capture": deploy(bench, "captured", model_data,
                                                                                   DataCaptureConfig=CAPTURE)}
    urls = {name: f"{bench.url}/endpoints/{endpoint}/invocations" for name, endpoint in urls.items()}
    emulator = psutil.Process(emulator_pid)
    per_request: dict[str, list[float]] = {name: [] for name in urls}
    latency: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            run_generator(url, 50, 1, 30)  # warm-up
            before = emulator.cpu_times()
            result = run_generator(url, requests, 1, 60)
            after = emulator.cpu_times()
            spent = (after.user - before.user) + (after.system - before.system)
            per_request[name].append(spent / result["count"] * 1e6)
            latency[name].append(median(result["latencies_ms"]))
    return {name: {"emulator_cpu_us_per_request": median(per_request[name]), "p50_ms": median(latency[name])}
            for name in urls}


def capture_in_process(records: int) -> dict:
    """The hot path (record) and the flush (format + moto put), per record, without HTTP."""
    from sagemaker_emulator import moto_bridge
    from sagemaker_emulator.runtime.capture import CaptureConfig, CaptureWriter

    moto_bridge.s3().create_bucket("bench", "us-east-1")
    writer = CaptureWriter("ep", CaptureConfig.from_spec({"DataCaptureConfig": CAPTURE}), flush_seconds=3600)
    headers = {"Content-Type": "application/json"}

    async def scenario() -> tuple[float, float]:
        started = time.perf_counter()
        for _ in range(records):
            writer.record("AllTraffic", headers, PAYLOAD, "application/json", PAYLOAD)
        recorded = time.perf_counter()
        await writer.flush()
        flushed = time.perf_counter()
        await writer.close()
        return (recorded - started) / records * 1e6, (flushed - recorded) / records * 1e6

    record_us, flush_us = asyncio.run(scenario())
    return {"record_us": record_us, "flush_us_per_record": flush_us}


def report(results: dict) -> None:
    a = results["async"]
    print(f"\nAsynchronous inference, trivial model, sequential ({os.cpu_count()} CPUs), ms")
    print(f"{'':<34}{'p50':>8}{'p90':>8}{'p99':>8}")
    for label, key in (("InvokeEndpointAsync -> 202", "accepted_ms"), ("-> result object in S3", "result_in_s3_ms"),
                       ("InvokeEndpoint (reference)", "invoke_endpoint_ms")):
        row = a[key]
        print(f"{label:<34}{row['p50']:>8.2f}{row['p90']:>8.2f}{row['p99']:>8.2f}")
    print(f"TotalProcessingTime (queue's metric): {a['total_processing_time_ms']}")
    print("\nData capture (100 %, Input + Output, JSON), real-time trivial model")
    for name, figures in results["capture"].items():
        print(f"  {name:<14} emulator CPU {figures['emulator_cpu_us_per_request']:7.0f} us/request, "
              f"p50 {figures['p50_ms']:.2f} ms")
    inproc = results["capture_in_process"]
    print(f"  in-process: record() {inproc['record_us']:.2f} us, flush {inproc['flush_us_per_record']:.1f} us/record")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/out/async_and_capture.json"))
    args = parser.parse_args()
    results = {}
    with EmulatorProcess(free_port(), log=Path(os.devnull)) as emulator:
        bench = Bench(emulator.url)
        model_data = bench.upload("trivial/model.tar.gz", TRIVIAL_MODEL)
        results["async"] = async_latency(bench, model_data, args.requests // 3)
        results["capture"] = capture_cpu(bench, model_data, emulator.process.pid, args.requests, args.rounds)
    results["capture_in_process"] = capture_in_process(20_000)
    report(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
