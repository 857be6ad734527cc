"""The Locust side of a load test: run as its own process, ``python -m sagemaker_ops.load_test.locustfile PLAN RESULT``.

Never imported by Airflow (Locust monkey-patches the standard library with gevent on import). The
plan (:class:`~sagemaker_ops.load_test.plan.LoadTestPlan`, JSON) says what to send; AWS credentials
come only from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``)
and are never printed. Every request is signed with SigV4 by botocore, so the same test runs against
a real endpoint on AWS or the emulator.

Three ways to load an endpoint:

* ``users`` (closed model): :class:`InvokeUser`, as many as the current stage says
  (:class:`StagesShape`, a ``LoadTestShape``), each on its own keep-alive connection;
* ``arrival_rate`` (open model): one :class:`ArrivalRateUser` sends on a fixed timeline through up
  to ``max_in_flight`` connections; latency is counted from the intended send time, requests sent
  more than ``late_after_ms`` late are counted, and those never sent before the end are ``unsent``;
* ``async``: :class:`AsyncUser` calls InvokeEndpointAsync and polls S3 for the answer (or the error):
  the latency is the time to result.

Locust runs the users, the shape and the timing; the requests themselves go through
:mod:`sagemaker_ops.load_test.http` rather than FastHttpUser's client, which costs three times the
CPU per request (see that module: the generator must not be what limits a measured capacity).
Locust's own request statistics are not used (the :class:`Recorder` keeps raw latencies instead).

Progress goes to stdout once per ``report_interval_seconds`` (the operator streams it into the task
log); the result document is written to RESULT as JSON.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # before anything imports ssl or sockets (botocore does), as Locust itself would

import json  # noqa: E402 - after the patch, on purpose
import resource
import sys
import time
from typing import Any

import gevent
import gevent.event
import gevent.pool
import gevent.queue
from locust import LoadTestShape, User, constant, task
from locust.env import Environment

from sagemaker_ops.load_test.plan import LoadTestPlan, capacity, percentiles, users_of
from sagemaker_ops.load_test.http import KeepAliveConnection, encode_request
from sagemaker_ops.load_test.signing import Signer

PLAN: LoadTestPlan  # set by main() before any user starts
SPAWN_RATE = 100  # users started per second when a stage changes: a stage reaches its users within a second
DRAIN_SECONDS = 10.0  # after the last stage, how long requests still in flight may finish


class Recorder:
    """Every answer, by the stage that sent it: latency, errors, lateness, cold starts."""

    def __init__(self, plan: LoadTestPlan) -> None:
        self.plan = plan
        self.start = time.time()
        self.ends: list[float] = []
        self.latencies: list[list[float]] = [[] for _ in plan.stages]
        self.errors = [0] * len(plan.stages)
        self.status_codes: dict[str, int] = {}
        self.error_samples: list[str] = []
        self.late = self.unsent = self.in_flight = self.unfinished = 0
        self.last_done = 0.0
        self.after_idle: list[float] = []
        self.interval: list[float] = []
        self.interval_errors = 0

    def begin(self, start: float) -> None:
        self.start = start
        self.ends = []
        offset = start
        for stage in self.plan.stages:
            offset += stage.duration_seconds
            self.ends.append(offset)

    def stage_at(self, moment: float) -> int:
        for index, end in enumerate(self.ends):
            if moment < end:
                return index
        return len(self.ends) - 1

    def sending(self, now: float) -> bool:
        """A request leaves now; True if it follows an idle period (the endpoint may start cold)."""
        idle = self.in_flight == 0 and (self.last_done == 0.0 or now - self.last_done >= self.plan.idle_seconds)
        self.in_flight += 1
        return idle

    def answered(self, stage: int, intended: float, sent: float, status: int, after_idle: bool,
                 error: str | None = None) -> None:
        end = time.time()
        self.in_flight -= 1
        self.last_done = end
        latency_ms = (end - intended) * 1000.0
        self.status_codes[str(status)] = self.status_codes.get(str(status), 0) + 1
        if (sent - intended) * 1000.0 > self.plan.late_after_ms:
            self.late += 1
        if error is None and 200 <= status < 300:
            self.latencies[stage].append(latency_ms)
            self.interval.append(latency_ms)
            if after_idle:
                self.after_idle.append(latency_ms)
        else:
            self.errors[stage] += 1
            self.interval_errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"HTTP {status}: {(error or '')[:300]}")

    def result(self) -> dict[str, Any]:
        steps = []
        for index, stage in enumerate(self.plan.stages):
            ok, errors = self.latencies[index], self.errors[index]
            steps.append({"name": stage.name, "value": stage.value, "duration_seconds": stage.duration_seconds,
                          "requests": len(ok) + errors, "errors": errors,
                          "throughput_rps": round(len(ok) / stage.duration_seconds, 3),
                          "latency_ms": percentiles(ok)})
        every = [latency for stage in self.latencies for latency in stage]
        errors = sum(self.errors)
        return {
            "endpoint_name": self.plan.endpoint_name, "model": self.plan.model,
            "duration_seconds": self.plan.duration_seconds,
            "totals": {"requests": len(every) + errors, "errors": errors,
                       "throughput_rps": round(len(every) / self.plan.duration_seconds, 3),
                       "latency_ms": percentiles(every), "status_codes": self.status_codes,
                       "late": self.late, "unsent": self.unsent, "unfinished": self.unfinished + self.in_flight,
                       "error_samples": self.error_samples},
            "steps": steps,
            "capacity": capacity(steps),
            "after_idle": {"requests": len(self.after_idle), "latency_ms": percentiles(self.after_idle),
                           "model_not_ready": self.status_codes.get("429", 0)},
        }

    def progress_line(self, now: float) -> str:
        stage = self.plan.stages[self.stage_at(now)]
        window, errors = self.interval, self.interval_errors
        self.interval, self.interval_errors = [], 0
        summary = percentiles(window)
        unit = "users" if self.plan.model != "arrival_rate" else "req/s target"
        return (f"[load-test] t={now - self.start:5.1f}s {stage.name} ({stage.value:g} {unit}): "
                f"{len(window) / self.plan.report_interval_seconds:.0f} req/s, p50 {summary.get('p50', 0):.1f} ms, "
                f"p99 {summary.get('p99', 0):.1f} ms, errors {errors}, in flight {self.in_flight}, late {self.late}")


RECORDER: Recorder


class SignedRequest:
    """The InvokeEndpoint request's bytes, encoded again only when its signature changes (once a second)."""

    def __init__(self, plan: LoadTestPlan) -> None:
        headers = {"Content-Type": plan.content_type, "Accept": plan.accept}
        if plan.target_variant:
            headers["X-Amzn-SageMaker-Target-Variant"] = plan.target_variant
        self.url = f"{plan.runtime_url.rstrip('/')}/endpoints/{plan.endpoint_name}/invocations"
        self.body = plan.payload.encode()
        self.signer = Signer(self.url, self.body, headers, plan.region)
        self._headers: dict[str, str] | None = None
        self._bytes = b""

    def bytes(self) -> bytes:
        headers = self.signer.headers()
        if headers is not self._headers:
            self._headers, self._bytes = headers, encode_request("POST", self.url, headers, self.body)
        return self._bytes


REQUEST: SignedRequest


class InvokeUser(User):
    """A closed-model user: the next request as soon as the previous one is answered, on its own
    keep-alive connection (:mod:`sagemaker_ops.load_test.http`: a third of FastHttpUser's CPU per request)."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.connection = KeepAliveConnection(REQUEST.url)

    def on_stop(self) -> None:
        self.connection.close()

    @task
    def invoke(self) -> None:
        # One task that loops rather than one task per request: Locust's scheduling between tasks (wait
        # time, task choice, a yield) would cost as much CPU as the request. The runner stops the loop.
        while True:
            send(self.connection, time.time())


def send(connection: KeepAliveConnection, intended: float) -> None:
    """One InvokeEndpoint, recorded against the stage of its intended time."""
    sent = time.time()
    stage = RECORDER.stage_at(intended)
    after_idle = RECORDER.sending(sent)
    try:
        status, body = connection.request(REQUEST.bytes())
    except gevent.GreenletExit:  # the test ended with this request in flight: neither answer nor error
        RECORDER.in_flight -= 1
        RECORDER.unfinished += 1
        raise
    except OSError as error:  # refused, reset, timed out: an error answer, and a new connection next time
        connection.close()
        status, body = 0, str(error).encode()
    error = None if 200 <= status < 300 else body.decode("utf-8", "replace")
    RECORDER.answered(stage, intended, sent, status, after_idle, error)


class ArrivalRateUser(User):
    """The open model: one user that sends each request at its due time through up to ``max_in_flight``
    connections."""

    wait_time = constant(0)

    @task
    def follow_timeline(self) -> None:
        pool = gevent.pool.Pool(PLAN.max_in_flight)
        idle = gevent.queue.LifoQueue()  # connections not in use (the pool bounds how many exist)
        end = RECORDER.ends[-1]
        stage_start = RECORDER.start
        for stage in PLAN.stages:
            count = int(stage.value * stage.duration_seconds)
            for index in range(count):
                intended = stage_start + index / stage.value
                delay = intended - time.time()
                if delay > 0:
                    gevent.sleep(delay)
                # Every connection busy: wait for one (the request is then late, and its wait counted).
                if time.time() >= end or not pool.wait_available(timeout=max(0.0, end - time.time())):
                    RECORDER.unsent += count - index + sum(int(s.value * s.duration_seconds)
                                                           for s in PLAN.stages[PLAN.stages.index(stage) + 1:])
                    return self._finish(pool)
                pool.spawn(_send_on_idle_connection, idle, intended)
            stage_start += stage.duration_seconds
        self._finish(pool)

    def _finish(self, pool: gevent.pool.Pool) -> None:
        pool.join(timeout=DRAIN_SECONDS)
        TIMELINE_DONE.set()
        gevent.sleep(3600)  # idle until the runner stops this user


def _send_on_idle_connection(idle: gevent.queue.LifoQueue, intended: float) -> None:
    connection = idle.get() if idle.qsize() else KeepAliveConnection(REQUEST.url)
    try:
        send(connection, intended)
    finally:
        idle.put(connection)


class AsyncUser(User):
    """InvokeEndpointAsync, then poll S3 for the answer: the latency is the time to result."""

    wait_time = constant(0)

    def on_start(self) -> None:
        import boto3

        self.runtime = boto3.client("sagemaker-runtime", region_name=PLAN.region, endpoint_url=PLAN.runtime_url)
        self.s3 = boto3.client("s3", region_name=PLAN.region, endpoint_url=PLAN.extra.get("s3_endpoint_url"))

    @task
    def invoke_async(self) -> None:
        sent = time.time()
        stage, after_idle = RECORDER.stage_at(sent), RECORDER.sending(sent)
        try:
            answer = self.runtime.invoke_endpoint_async(
                EndpointName=PLAN.endpoint_name, InputLocation=PLAN.async_input_location,
                ContentType=PLAN.content_type, Accept=PLAN.accept)
        except Exception as error:  # noqa: BLE001 - an error answer is a measurement, not a crash
            status = getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return RECORDER.answered(stage, sent, sent, status, after_idle, str(error))
        found = self._poll([answer["OutputLocation"], answer.get("FailureLocation")])
        if found == answer["OutputLocation"]:
            RECORDER.answered(stage, sent, sent, 200, after_idle)
        else:
            RECORDER.answered(stage, sent, sent, 500 if found else 504, after_idle,
                              f"failure written to {found}" if found else "no result in time")

    def _poll(self, locations: list[str | None]) -> str | None:
        deadline = time.time() + PLAN.async_timeout_seconds
        while time.time() < deadline:
            for location in filter(None, locations):
                bucket, _, key = location.removeprefix("s3://").partition("/")
                try:
                    self.s3.head_object(Bucket=bucket, Key=key)
                    return location
                except Exception:  # noqa: BLE001 - not there yet
                    pass
            gevent.sleep(PLAN.async_poll_seconds)
        return None


class StagesShape(LoadTestShape):
    """The closed model's users per stage (Locust asks every second)."""

    def tick(self) -> tuple[int, float] | None:
        now = time.time()
        for stage, end in zip(PLAN.stages, RECORDER.ends):
            if now < end:
                return users_of(stage), SPAWN_RATE
        return None


TIMELINE_DONE = gevent.event.Event()


def run(plan: LoadTestPlan) -> dict[str, Any]:
    """Follow the plan; the result document (see :meth:`Recorder.result`)."""
    global PLAN, RECORDER, REQUEST
    PLAN, RECORDER, REQUEST = plan, Recorder(plan), SignedRequest(plan)
    if plan.model == "arrival_rate":
        user_class, shape = ArrivalRateUser, None
    else:
        user_class, shape = (AsyncUser if plan.model == "async" else InvokeUser), StagesShape()
    environment = Environment(user_classes=[user_class], shape_class=shape, host=plan.runtime_url,
                              catch_exceptions=True)
    runner = environment.create_local_runner()
    cpu_at_start = _cpu_seconds()
    RECORDER.begin(time.time())
    reporter = gevent.spawn(_report_progress)
    if shape is not None:
        runner.start_shape()
    else:
        runner.start(1, spawn_rate=1)
    # The closed model ends with the last stage (requests then in flight are counted unfinished); the
    # open model's timeline ends there too, and its requests in flight get DRAIN_SECONDS to finish.
    TIMELINE_DONE.wait(timeout=max(0.0, RECORDER.ends[-1] - time.time()))
    if plan.model == "arrival_rate":
        TIMELINE_DONE.wait(timeout=DRAIN_SECONDS + 1)
    reporter.kill()
    runner.quit()
    result = RECORDER.result()
    result["generator"] = _generator_load(cpu_at_start, time.time() - RECORDER.start, result["totals"]["requests"])
    return result


def _generator_load(cpu_at_start: float, seconds: float, requests: int) -> dict[str, float]:
    """This process's CPU during the test (imports excluded): near a whole core, the generator, not the
    endpoint, may be what limited the throughput."""
    cpu = _cpu_seconds() - cpu_at_start
    return {"cpu_seconds": round(cpu, 3), "cpu_share_of_a_core": round(cpu / max(seconds, 1e-9), 3),
            "cpu_us_per_request": round(cpu * 1e6 / max(requests, 1), 1)}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report_progress() -> None:
    while True:
        gevent.sleep(PLAN.report_interval_seconds)
        print(RECORDER.progress_line(time.time()), flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m sagemaker_ops.load_test.locustfile PLAN.json RESULT.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        plan = LoadTestPlan.from_json(json.load(handle))
    result = run(plan)
    with open(argv[1], "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    totals = result["totals"]
    print(f"[load-test] done: {totals['requests']} requests, {totals['errors']} errors, "
          f"{totals['throughput_rps']:.1f} req/s, p99 {totals['latency_ms'].get('p99', 0):.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
