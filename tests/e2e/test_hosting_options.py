"""Every hosting option end to end with dag.test() against the emulator: one run per DAG.

Multi-model, multi-container (Direct and Serial), serverless, asynchronous, data capture, and the
A/B test DAG (split checked, shifted to 1:9, checked again).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_release_dag import returned

REPO = Path(__file__).resolve().parents[2]
BUCKET = "sagemaker-ops-artifacts"
IRIS_ANSWER = ["setosa", "versicolor", "virginica"]

pytestmark = pytest.mark.e2e


def run(dags, dag_id: str, **kwargs):
    dag_run = dags[dag_id].test(**kwargs)
    assert dag_run.state == "success", f"{dag_id} ended {dag_run.state}"
    return dag_run


def s3_objects(emulator, prefix: str) -> dict[str, bytes]:
    s3 = emulator.client("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listed}


def test_multi_model_endpoint_serves_each_model_by_target_model(dags, emulator):
    dag_run = run(dags, "release_sentiment")

    package = returned(dag_run, "package_model")
    assert package["s3_uri"] == f"s3://{BUCKET}/models/sentiment/{package['sha256']}/"
    assert sorted(s3_objects(emulator, f"models/sentiment/{package['sha256']}/")) == [
        f"models/sentiment/{package['sha256']}/sentiment_de.tar.gz",
        f"models/sentiment/{package['sha256']}/sentiment_en.tar.gz",
    ]
    model = emulator.client("sagemaker").describe_model(ModelName=returned(dag_run, "ensure_model")["model_name"])
    assert model["PrimaryContainer"]["Mode"] == "MultiModel"
    assert model["PrimaryContainer"]["ModelDataUrl"] == package["s3_uri"]
    for language in ("en", "de"):
        smoke = returned(dag_run, f"smoke_test_sentiment_{language}")
        assert (smoke["target"], smoke["prediction"]) == (f"sentiment_{language}.tar.gz", ["positive", "negative"])


def test_direct_multi_container_endpoint_serves_each_container_by_hostname(dags, emulator):
    dag_run = run(dags, "release_iris_sentiment_direct")

    assert returned(dag_run, "smoke_test_iris")["prediction"] == IRIS_ANSWER
    assert returned(dag_run, "smoke_test_sentiment-en")["prediction"] == ["positive", "negative"]
    model = emulator.client("sagemaker").describe_model(ModelName=returned(dag_run, "ensure_model")["model_name"])
    assert model["InferenceExecutionConfig"] == {"Mode": "Direct"}
    assert [c["ContainerHostname"] for c in model["Containers"]] == ["iris", "sentiment-en"]


def test_serial_inference_pipeline_scales_then_classifies(dags, emulator):
    dag_run = run(dags, "release_iris_serial")

    assert returned(dag_run, "smoke_test")["prediction"] == IRIS_ANSWER
    model = emulator.client("sagemaker").describe_model(ModelName=returned(dag_run, "ensure_model")["model_name"])
    assert model["InferenceExecutionConfig"] == {"Mode": "Serial"}
    assert [c["ContainerHostname"] for c in model["Containers"]] == ["features", "classifier"]


def test_serverless_endpoint_answers(dags, emulator):
    dag_run = run(dags, "release_iris_serverless")

    assert returned(dag_run, "smoke_test")["prediction"] == IRIS_ANSWER
    config = emulator.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=returned(dag_run, "ensure_endpoint_config")["endpoint_config_name"])
    [variant] = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant


def test_async_endpoint_writes_the_answer_to_s3(dags, emulator):
    dag_run = run(dags, "release_iris_async")

    smoke = returned(dag_run, "smoke_test")
    assert smoke["prediction"] == IRIS_ANSWER
    assert smoke["output_location"].startswith(f"s3://{BUCKET}/async/iris/output/")
    assert smoke["input_location"].startswith(f"s3://{BUCKET}/async-inputs/iris-async/")


def test_data_capture_records_the_smoke_test(dags, emulator):
    dag_run = run(dags, "release_iris_tree")
    assert returned(dag_run, "smoke_test")["prediction"] == IRIS_ANSWER

    described = emulator.client("sagemaker").describe_endpoint(EndpointName="iris-tree")
    assert described["DataCaptureConfig"]["EnableCapture"] is True
    assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == 100
    records = wait_for_capture(emulator, "data-capture/iris-tree/AllTraffic/")
    sample = (REPO / "include/data/iris_sample.csv").read_text()
    assert any(record["captureData"]["endpointInput"]["data"] == sample
               and json.loads(record["captureData"]["endpointOutput"]["data"]) == IRIS_ANSWER
               for record in records)


def wait_for_capture(emulator, prefix: str, attempts: int = 60) -> list[dict]:
    """Capture is buffered and written on a timer: wait (bounded) for the first file."""
    import time

    for _ in range(attempts):
        files = s3_objects(emulator, prefix)
        if files:
            return [json.loads(line) for body in files.values() for line in body.decode().splitlines()]
        time.sleep(0.5)
    raise AssertionError(f"no capture file under s3://{BUCKET}/{prefix} after {attempts} looks")


def test_ab_test_checks_the_split_shifts_it_and_checks_again(dags, emulator):
    dag_run = run(dags, "ab_test")

    initial, shifted = returned(dag_run, "check_initial_split"), returned(dag_run, "check_shifted_split")
    assert initial["expected_shares"] == {"Challenger": 0.5, "Champion": 0.5}
    assert shifted["expected_shares"] == {"Challenger": 0.9, "Champion": 0.1}
    for check in (initial, shifted):
        assert check["consistent"] is True and check["invocations"] == 200
        assert sum(check["counts"].values()) == 200 and set(check["counts"]) <= {"Champion", "Challenger"}
        assert min(check["p_values"].values()) >= check["threshold"]
    assert returned(dag_run, "shift_traffic")["actions_taken"] == ["weights Challenger=9"]
    described = emulator.client("sagemaker").describe_endpoint(EndpointName="iris-ab")
    assert {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]} == {
        "Champion": 1.0, "Challenger": 9.0}
