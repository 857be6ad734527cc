"""Model Monitor for real in the emulator: a baselining processing job over a dataset in S3, then
monitoring executions over an endpoint's captured traffic, with reports in S3 and metrics in CloudWatch.

The model scores CSV rows ``x,y,colour`` as ``x + y``. As Model Monitor expects, the baseline dataset
puts the model's output first (``score,x,y,colour``), and each captured record becomes one row of
endpointOutput followed by endpointInput.
"""

from __future__ import annotations

import json
import time
from datetime import timezone

import numpy as np
import pytest

from tests.emulator.conftest import BUCKET, ROLE_ARN
from tests.emulator.test_data_capture import capture, captured, destination
from tests.emulator.test_model_monitor_api import ANALYZER, error_of, job_definition, schedule, wait_for_job

SCORING_MODEL = """
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body  # the toolkit hands CSV over as text
    return [line.split(",") for line in text.splitlines() if line.strip()]

def predict_fn(rows, model):
    return [float(row[0]) + float(row[1]) for row in rows]

def output_fn(scores, accept):
    return "".join(f"{score:.6f}\\n" for score in scores), "text/csv"
"""
COLOURS = ("red", "green", "blue")
TERMINAL = {"Completed", "CompletedWithViolations", "Failed", "Stopped"}


def rows(count: int, seed: int, x_shift: float = 0.0) -> list[tuple[float, float, str]]:
    rng = np.random.default_rng(seed)
    xs, ys = rng.normal(0, 1, count) + x_shift, rng.normal(5, 2, count)
    return [(round(x, 4), round(y, 4), COLOURS[i % 3]) for i, (x, y) in enumerate(zip(xs, ys))]


@pytest.fixture(scope="module")
def baseline(emulator):
    """statistics.json and constraints.json from a baselining processing job, as suggest_baseline runs it."""
    from tests.emulator.conftest import Deployer

    deployer = Deployer(emulator)  # makes sure the bucket exists
    sm, s3 = deployer.sm, deployer.s3
    lines = ["score,x,y,colour"] + [f"{x + y:.6f},{x},{y},{c}" for x, y, c in rows(2000, seed=1)]
    s3.put_object(Bucket=BUCKET, Key="monitor-runs/dataset/train.csv", Body="\n".join(lines) + "\n")
    name = f"baseline-suggestion-job-{int(time.time() * 1000)}"
    sm.create_processing_job(
        ProcessingJobName=name, RoleArn=ROLE_ARN, AppSpecification={"ImageUri": ANALYZER},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                               "VolumeSizeInGB": 20}},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        ProcessingInputs=[{"InputName": "baseline_dataset_input", "S3Input": {
            "S3Uri": f"s3://{BUCKET}/monitor-runs/dataset", "LocalPath": "/opt/ml/processing/input/baseline_dataset_input",
            "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/monitor-runs/baseline", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]},
        Environment={"dataset_format": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
                     "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
                     "output_path": "/opt/ml/processing/output", "publish_cloudwatch_metrics": "Disabled"})
    described = wait_for_job(deployer, name, timeout=120)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    files = {key: json.loads(s3.get_object(Bucket=BUCKET, Key=f"monitor-runs/baseline/{key}")["Body"].read())
             for key in ("statistics.json", "constraints.json")}
    return {"job": name, **files}


def test_baselining_job_writes_model_monitor_files_and_logs(emulator, baseline):
    statistics, constraints = baseline["statistics.json"], baseline["constraints.json"]
    assert statistics["dataset"]["item_count"] == 2000
    features = {f["name"]: f for f in statistics["features"]}
    assert [f["name"] for f in statistics["features"]] == ["score", "x", "y", "colour"]
    assert features["x"]["inferred_type"] == "Fractional"
    assert features["colour"]["inferred_type"] == "String"
    assert abs(features["y"]["numerical_statistics"]["mean"] - 5) < 0.2
    assert {f["name"] for f in constraints["features"]} == {"score", "x", "y", "colour"}
    logs = emulator.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs",
                                        logStreamNamePrefix=f"{baseline['job']}/algo-1-")["logStreams"]
    assert len(streams) == 1
    events = logs.get_log_events(logGroupName="/aws/sagemaker/ProcessingJobs",
                                 logStreamName=streams[0]["logStreamName"])["events"]
    assert events, "the analyzer's output reaches CloudWatch Logs"


class MonitoredEndpoint:
    """An endpoint with capture, a job definition on the baseline, and an hourly schedule."""

    def __init__(self, deployer, baseline_prefix: str):
        self.deployer, self.sm = deployer, deployer.sm
        self.capture_uri = destination()
        config = deployer.name("config")
        self.sm.create_endpoint_config(
            EndpointConfigName=config, DataCaptureConfig=capture(self.capture_uri),
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": deployer.model(SCORING_MODEL),
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        self.name = deployer.endpoint(config)
        self.reports = f"s3://{BUCKET}/monitor-runs/reports-{self.name}"
        definition = job_definition(deployer, self.name, DataQualityBaselineConfig={
            "ConstraintsResource": {"S3Uri": f"{baseline_prefix}/constraints.json"},
            "StatisticsResource": {"S3Uri": f"{baseline_prefix}/statistics.json"}},
            DataQualityJobOutputConfig={"MonitoringOutputs": [{"S3Output": {
                "S3Uri": self.reports, "LocalPath": "/opt/ml/processing/output"}}]})
        self.schedule = schedule(deployer, definition)
        self.sent = 0

    def send(self, batch: list[tuple], columns: int = 3) -> None:
        for start in range(0, len(batch), 20):
            body = "".join(",".join(str(v) for v in row[:columns]) + "\n" for row in batch[start:start + 20])
            self.deployer.runtime.invoke_endpoint(EndpointName=self.name, Body=body, ContentType="text/csv")
            self.sent += 1
        captured(self.deployer, self.capture_uri, at_least=self.sent)

    def run(self, emulator) -> dict:
        import urllib.request

        request = urllib.request.Request(f"{emulator.url}/_emulator/monitoring-schedules/{self.schedule}/executions",
                                         method="POST")
        with urllib.request.urlopen(request) as response:
            assert response.status == 201
        return self.wait_for_execution()

    def wait_for_execution(self, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            summaries = self.sm.list_monitoring_executions(MonitoringScheduleName=self.schedule)[
                "MonitoringExecutionSummaries"]
            if summaries and summaries[0]["MonitoringExecutionStatus"] in TERMINAL:
                return summaries[0]
            time.sleep(0.3)
        raise AssertionError(f"no execution of {self.schedule} finished")

    def report(self, execution: dict, file_name: str) -> dict:
        when = execution["ScheduledTime"].astimezone(timezone.utc)
        key = (f"{self.reports[len(f's3://{BUCKET}/'):]}/{self.name}/{self.schedule}/"
               f"{when:%Y/%m/%d/%H}/{file_name}")
        return json.loads(self.deployer.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


@pytest.fixture
def monitored(deployer, baseline):
    return MonitoredEndpoint(deployer, f"s3://{BUCKET}/monitor-runs/baseline")


def violations_by_check(report: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for violation in report["violations"]:
        found.setdefault(violation["constraint_check_type"], set()).add(violation["feature_name"])
    return found


def test_traffic_like_the_training_data_completes_without_violations(emulator, monitored):
    monitored.send(rows(400, seed=2))
    execution = monitored.run(emulator)
    assert execution["MonitoringExecutionStatus"] == "Completed", execution.get("FailureReason")
    assert monitored.report(execution, "constraint_violations.json")["violations"] == []
    statistics = monitored.report(execution, "statistics.json")
    assert statistics["dataset"]["item_count"] == 400

    described = monitored.sm.describe_monitoring_schedule(MonitoringScheduleName=monitored.schedule)
    assert described["LastMonitoringExecutionSummary"]["MonitoringExecutionStatus"] == "Completed"
    job = monitored.sm.describe_processing_job(ProcessingJobName=execution["ProcessingJobArn"].rsplit("/", 1)[1])
    assert job["MonitoringScheduleArn"] == described["MonitoringScheduleArn"]
    assert job["Environment"]["sagemaker_endpoint_name"] == monitored.name

    metrics = emulator.client("cloudwatch").list_metrics(
        Namespace="/aws/sagemaker/Endpoints/data-metric",
        Dimensions=[{"Name": "EndpointName", "Value": monitored.name},
                    {"Name": "ScheduleName", "Value": monitored.schedule}])["Metrics"]
    names = {m["MetricName"] for m in metrics}
    assert {"feature_baseline_drift_x", "feature_non_null_colour", "feature_data_y"} <= names


def test_shifted_traffic_violates_drift_for_the_shifted_features_only(emulator, monitored):
    monitored.send(rows(400, seed=3, x_shift=3.0))
    execution = monitored.run(emulator)
    assert execution["MonitoringExecutionStatus"] == "CompletedWithViolations", execution.get("FailureReason")
    found = violations_by_check(monitored.report(execution, "constraint_violations.json"))
    # x moved, and the score the model computes from it moved with it; y and colour did not.
    assert found == {"baseline_drift_check": {"x", "score"}}
    job = monitored.sm.describe_processing_job(ProcessingJobName=execution["ProcessingJobArn"].rsplit("/", 1)[1])
    assert job["ExitMessage"].startswith("CompletedWithViolations: Job completed successfully with 2 violations")


def test_traffic_missing_a_column_is_reported(emulator, monitored):
    monitored.send(rows(200, seed=4), columns=2)
    execution = monitored.run(emulator)
    assert execution["MonitoringExecutionStatus"] == "CompletedWithViolations", execution.get("FailureReason")
    found = violations_by_check(monitored.report(execution, "constraint_violations.json"))
    assert "missing_column_check" in found


def test_a_one_time_schedule_runs_by_itself(emulator, deployer, baseline):
    monitored = MonitoredEndpoint(deployer, f"s3://{BUCKET}/monitor-runs/baseline")
    monitored.send(rows(100, seed=5))
    definition = monitored.sm.describe_monitoring_schedule(
        MonitoringScheduleName=monitored.schedule)["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]
    monitored.sm.delete_monitoring_schedule(MonitoringScheduleName=monitored.schedule)
    monitored.schedule = schedule(deployer, definition, expression="NOW",
                                  DataAnalysisStartTime="-PT1H", DataAnalysisEndTime="-PT0H")
    execution = monitored.wait_for_execution()
    assert execution["MonitoringExecutionStatus"] == "Completed", execution.get("FailureReason")


def test_an_execution_with_no_captured_data_in_its_window_fails_with_the_reason(emulator, deployer, baseline):
    monitored = MonitoredEndpoint(deployer, f"s3://{BUCKET}/monitor-runs/baseline")
    execution = monitored.run(emulator)
    assert execution["MonitoringExecutionStatus"] == "Failed"
    assert execution["FailureReason"].startswith("ClientError: no objects found under")


def test_unknown_schedule_for_the_test_control(emulator):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{emulator.url}/_emulator/monitoring-schedules/nope/executions", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["__type"] == "ResourceNotFound"
