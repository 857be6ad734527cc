"""Pipeline files for every hosting option: multi-model, multi-container, serverless, async, data capture.

Each new field is read into the config the operators get, and each mistake is reported before any
AWS call as ``<file>: <field path> <problem>, got <value>``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from sagemaker_ops.operators.sagemaker_resources import endpoint_config_requests
from sagemaker_ops.pipeline import load_pipelines
from tests.unit.pipeline_documents import MODELS, PIPELINES, document_errors
from tests.unit.pipeline_documents import load_document as load
from tests.unit.pipeline_documents import shipped_document as document


def errors(tmp_path: Path, data: dict) -> list[str]:
    """The messages without the file's path (each must start with it)."""
    messages = document_errors(tmp_path, data)
    prefix = f"{(tmp_path / 'pipe.yaml').as_posix()}: "
    assert all(message.startswith(prefix) for message in messages), messages
    return [message.removeprefix(prefix) for message in messages]


def test_every_shipped_pipeline_is_valid_and_names_its_kind():
    kinds = {pipeline.name: pipeline.model.kind for pipeline in load_pipelines(PIPELINES)}
    assert kinds == {
        "iris": "single", "iris-tree": "single", "iris-serverless": "single", "iris-async": "single",
        "sentiment": "multi-model", "iris-sentiment-direct": "multi-container", "iris-serial": "multi-container",
    }


# -- what the new fields become ---------------------------------------------------------------------


def test_multi_model_lists_archives_and_smoke_tests_by_target_model(tmp_path):
    config = load(tmp_path, document("sentiment"))
    assert [(a.name, a.target_model, a.source_dir) for a in config.model.multi_model] == [
        ("sentiment_en", "sentiment_en.tar.gz", MODELS / "sentiment_en"),
        ("sentiment_de", "sentiment_de.tar.gz", MODELS / "sentiment_de"),
    ]
    assert config.model.source_dir is None and config.model.framework == "sklearn"
    assert [(t.task_id, t.target_model) for t in config.smoke_tests] == [
        ("smoke_test_sentiment_en", "sentiment_en.tar.gz"), ("smoke_test_sentiment_de", "sentiment_de.tar.gz")]


def test_containers_keep_their_order_images_and_mode(tmp_path):
    config = load(tmp_path, document("iris-serial"))
    assert config.model.kind == "multi-container" and config.model.inference_mode == "Serial"
    assert [(c.hostname, c.source_dir, c.framework) for c in config.model.containers] == [
        ("features", MODELS / "iris_features", "sklearn"), ("classifier", MODELS / "iris_scaled", "sklearn")]
    direct = load(tmp_path, document("iris-sentiment-direct"))
    assert [t.target_container_hostname for t in direct.smoke_tests] == ["iris", "sentiment-en"]


def test_inference_mode_defaults_to_serial_and_hostnames_are_optional_there(tmp_path):
    data = document("iris-serial")
    del data["model"]["inference_mode"]
    del data["model"]["containers"][0]["hostname"]
    config = load(tmp_path, data)
    assert config.model.inference_mode == "Serial"
    assert [c.key(i) for i, c in enumerate(config.model.containers)] == ["container_1", "classifier"]


def test_serverless_variant_has_no_instances(tmp_path):
    config = load(tmp_path, document("iris-serverless"))
    assert endpoint_config_requests(config.endpoint)["production_variants"] == [{
        "VariantName": "AllTraffic", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
        "InitialVariantWeight": 1.0}]
    assert config.endpoint.image_instance_type is None


def test_data_capture_becomes_the_aws_config_with_defaults(tmp_path):
    data = document("iris-tree")
    assert endpoint_config_requests(load(tmp_path, data).endpoint)["data_capture_config"] == {
        "EnableCapture": True, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://sagemaker-ops-artifacts/data-capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
    }
    data["endpoint"]["data_capture"] = {"sampling_percentage": 20, "capture": ["output"]}
    data.pop("monitoring")  # monitoring checks the captured requests: it needs input capture
    data["artifacts"]["bucket"] = "my-bucket"
    capture = endpoint_config_requests(load(tmp_path, data).endpoint)["data_capture_config"]
    assert capture["DestinationS3Uri"] == "s3://my-bucket/data-capture"
    assert capture["CaptureOptions"] == [{"CaptureMode": "Output"}]


def test_async_inference_becomes_the_aws_config(tmp_path):
    data = document("iris-async")
    config = load(tmp_path, data)
    assert endpoint_config_requests(config.endpoint)["async_inference_config"] == {
        "OutputConfig": {"S3OutputPath": "s3://sagemaker-ops-artifacts/async/iris/output",
                         "S3FailurePath": "s3://sagemaker-ops-artifacts/async/iris/failure"},
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }
    assert config.smoke_test.asynchronous is True
    data["endpoint"]["async_inference"]["success_topic"] = "arn:aws:sns:us-east-1:123456789012:done"
    data["endpoint"]["async_inference"].pop("max_concurrent_invocations_per_instance")
    output = endpoint_config_requests(load(tmp_path, data).endpoint)["async_inference_config"]
    assert output == {"OutputConfig": {"S3OutputPath": "s3://sagemaker-ops-artifacts/async/iris/output",
                                       "S3FailurePath": "s3://sagemaker-ops-artifacts/async/iris/failure",
                                       "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:123456789012:done"}}}


def test_smoke_test_list_items_get_names_from_their_target_or_position(tmp_path):
    data = document("iris")
    test = data.pop("smoke_test")
    data["smoke_tests"] = [dict(test, target_variant="AllTraffic"), dict(test), dict(test, name="by-name")]
    config = load(tmp_path, data)
    assert [t.task_id for t in config.smoke_tests] == ["smoke_test_AllTraffic", "smoke_test_2", "smoke_test_by-name"]
    assert config.smoke_test is config.smoke_tests[0]


# -- every mistake, with its field path -----------------------------------------------------------


def edit(path: str, value):
    """An edit setting ``a.b[0].c`` (None: delete it; one past a list's end: append)."""
    def apply(data: dict) -> None:
        *parents, last = _steps(path)
        target = data
        for step in parents:
            target = target[step]
        if value is None:
            del target[last]
        elif isinstance(target, list) and last == len(target):
            target.append(copy.deepcopy(value))
        else:
            target[last] = copy.deepcopy(value)
    return apply


def _steps(path: str) -> list:
    steps: list = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        steps.append(name)
        if index:
            steps.append(int(index.rstrip("]")))
    return steps


CASES = [
    # serverless
    ("iris-serverless", edit("endpoint.variants[0].serverless.memory_size_mb", 1500),
     "endpoint.variants[0].serverless.memory_size_mb must be one of 1024, 2048, 3072, 4096, 5120, 6144 (1 GB steps), got 1500"),
    ("iris-serverless", edit("endpoint.variants[0].serverless.memory_size_mb", 7168),
     "endpoint.variants[0].serverless.memory_size_mb must be one of 1024, 2048, 3072, 4096, 5120, 6144 (1 GB steps), got 7168"),
    ("iris-serverless", edit("endpoint.variants[0].serverless.memory_size_mb", None),
     "endpoint.variants[0].serverless.memory_size_mb is required (one of 1024, 2048, 3072, 4096, 5120, 6144)"),
    ("iris-serverless", edit("endpoint.variants[0].serverless.max_concurrency", 201),
     "endpoint.variants[0].serverless.max_concurrency must be an integer from 1 to 200, got 201"),
    ("iris-serverless", edit("endpoint.variants[0].serverless.max_concurrency", 0),
     "endpoint.variants[0].serverless.max_concurrency must be an integer from 1 to 200, got 0"),
    ("iris-serverless", edit("endpoint.variants[0].serverless", "big"),
     "endpoint.variants[0].serverless must be a mapping (memory_size_mb, max_concurrency), got 'big'"),
    ("iris-serverless", edit("endpoint.variants[0].instance_type", "ml.m5.large"),
     "endpoint.variants[0].instance_type cannot be combined with serverless (serverless capacity is "
     "memory_size_mb and max_concurrency, not instances), got 'ml.m5.large'"),
    ("iris-serverless", edit("endpoint.variants[1]", {"name": "B", "instance_type": "ml.m5.large", "instance_count": 1}),
     "endpoint.variants must hold a single variant (variant AllTraffic is serverless, and Serverless Inference "
     "does not support multiple production variants), got 2"),
    ("iris-serverless", edit("endpoint.data_capture", {"sampling_percentage": 10}),
     "endpoint.data_capture cannot be used (variant AllTraffic is serverless, and Serverless Inference does not "
     "support data capture)"),
    ("iris-serverless", edit("endpoint.async_inference", {"output_path": "s3://b/o", "failure_path": "s3://b/f"}),
     "endpoint.async_inference cannot be used (variant AllTraffic is serverless, and Serverless Inference does "
     "not support asynchronous inference)"),
    ("sentiment", edit("endpoint.variants[0]", {"name": "AllTraffic", "serverless": {"memory_size_mb": 2048, "max_concurrency": 1}}),
     "model.multi_model cannot be used (variant AllTraffic is serverless, and Serverless Inference does not "
     "support multi-model endpoints)"),
    ("iris-serial", edit("endpoint.variants[0]", {"name": "AllTraffic", "serverless": {"memory_size_mb": 2048, "max_concurrency": 1}}),
     "model.containers cannot be used (variant AllTraffic is serverless, and Serverless Inference does not "
     "support multi-container endpoints)"),
    # data capture
    ("iris-tree", edit("endpoint.data_capture.sampling_percentage", 101),
     "endpoint.data_capture.sampling_percentage must be an integer from 0 to 100, got 101"),
    ("iris-tree", edit("endpoint.data_capture.sampling_percentage", None),
     "endpoint.data_capture.sampling_percentage is required (an integer from 0 to 100)"),
    ("iris-tree", edit("endpoint.data_capture.capture", ["input", "both"]),
     "endpoint.data_capture.capture must be a list of input and/or output (each at most once), got ['input', 'both']"),
    ("iris-tree", edit("endpoint.data_capture.capture", ["input", "input"]),
     "endpoint.data_capture.capture must be a list of input and/or output (each at most once), got ['input', 'input']"),
    ("iris-tree", edit("endpoint.data_capture.destination_s3_uri", "/tmp/capture"),
     "endpoint.data_capture.destination_s3_uri must be an S3 URI like s3://bucket/prefix, got '/tmp/capture'"),
    ("iris-tree", edit("endpoint.data_capture.csv_content_types", []),
     "endpoint.data_capture.csv_content_types must be a list of 1 to 10 content types like text/csv, got []"),
    ("iris-tree", edit("endpoint.data_capture.json_content_types", ["json"]),
     "endpoint.data_capture.json_content_types must be a list of 1 to 10 content types like application/json, got ['json']"),
    ("iris-tree", edit("endpoint.data_capture.rate", 5),
     "endpoint.data_capture.rate is not a known field"),
    # async inference
    ("iris-async", edit("endpoint.async_inference.output_path", None),
     "endpoint.async_inference.output_path is required (an S3 URI like s3://bucket/prefix)"),
    ("iris-async", edit("endpoint.async_inference.failure_path", "bucket/failures"),
     "endpoint.async_inference.failure_path must be an S3 URI like s3://bucket/prefix, got 'bucket/failures'"),
    ("iris-async", edit("endpoint.async_inference.error_topic", "my-topic"),
     "endpoint.async_inference.error_topic must be an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:name, got 'my-topic'"),
    ("iris-async", edit("endpoint.async_inference.max_concurrent_invocations_per_instance", 1001),
     "endpoint.async_inference.max_concurrent_invocations_per_instance must be an integer from 1 to 1000, got 1001"),
    ("iris-async", edit("smoke_test.async", None),
     "smoke_test.async must be true for an asynchronous endpoint (endpoint.async_inference is set: requests go "
     "through InvokeEndpointAsync)"),
    ("iris", edit("smoke_test.async", True),
     "smoke_test.async needs endpoint.async_inference (only an asynchronous endpoint takes InvokeEndpointAsync), got True"),
    ("iris-async", edit("smoke_test.target_variant", "AllTraffic"),
     "smoke_test takes no target_* with async: true (InvokeEndpointAsync has no targeted routing)"),
    # multi-model
    ("sentiment", edit("model.multi_model.models", []),
     "model.multi_model.models must be a non-empty list of models (name, source), got []"),
    ("sentiment", edit("model.multi_model.models[1].name", "sentiment_en"),
     "model.multi_model.models must have unique names, got ['sentiment_en', 'sentiment_en']"),
    ("sentiment", edit("model.multi_model.models[0].name", "english.tar.gz"),
     "model.multi_model.models[0].name must not end in .tar.gz (it is added: the archive is <name>.tar.gz), got 'english.tar.gz'"),
    ("sentiment", edit("model.multi_model.models[0].name", "en glish"),
     "model.multi_model.models[0].name must be a model name of letters, digits, '.', '_' or '-' of at most 63 characters, got 'en glish'"),
    ("sentiment", edit("model.multi_model.models[0].source", "/does/not/exist"),
     "model.multi_model.models[0].source must be an existing folder (resolved to /does/not/exist), got '/does/not/exist'"),
    ("sentiment", edit("model.source", "/tmp"),
     "model takes one of source (one model), multi_model (a multi-model endpoint) or containers (a multi-container endpoint), got ['source', 'multi_model']"),
    ("sentiment", edit("smoke_tests[0].target_model", None),
     "smoke_tests[0].target_model is required: name one of the multi-model archives (sentiment_en.tar.gz, sentiment_de.tar.gz)"),
    ("sentiment", edit("smoke_tests[0].target_model", "sentiment_fr.tar.gz"),
     "smoke_tests[0].target_model must name one of the multi-model archives (sentiment_en.tar.gz, sentiment_de.tar.gz), got 'sentiment_fr.tar.gz'"),
    ("iris", edit("smoke_test.target_model", "iris.tar.gz"),
     "smoke_test.target_model is only for a multi-model endpoint (model.multi_model), got 'iris.tar.gz'"),
    # multi-container
    ("iris-serial", edit("model.containers", [{"hostname": "only", "source": str(MODELS / "iris"), "framework": "sklearn", "framework_version": "1.2-1"}]),
     "model.containers must list 2 to 15 containers (for one model use model.source), got 1"),
    ("iris-serial", edit("model.containers[1].hostname", "features"),
     "model.containers must have unique hostnames, got ['features', 'features']"),
    ("iris-serial", edit("model.containers[1].hostname", "under_score"),
     "model.containers[1].hostname must be a container hostname (letters, digits and hyphens) of at most 63 characters, got 'under_score'"),
    ("iris-serial", edit("model.containers[1].framework", None),
     "model.containers[1] needs either image_uri or framework + framework_version (exactly one)"),
    ("iris-serial", edit("model.inference_mode", "Parallel"),
     "model.inference_mode must be one of Serial, Direct, got 'Parallel'"),
    ("iris-serial", edit("model.framework", "sklearn"),
     "model.framework is set per container in a multi-container model (model.containers[].framework), got 'sklearn'"),
    ("iris", edit("model.inference_mode", "Direct"),
     "model.inference_mode is only for a multi-container model (model.containers), got 'Direct'"),
    ("iris-sentiment-direct", edit("model.containers[0].hostname", None),
     "model.containers[0].hostname is required when model.inference_mode is Direct (each request names its container by hostname)"),
    ("iris-sentiment-direct", edit("smoke_tests[0].target_container_hostname", None),
     "smoke_tests[0].target_container_hostname is required: name one of the container hostnames (iris, sentiment-en)"),
    ("iris-sentiment-direct", edit("smoke_tests[0].target_container_hostname", "qa"),
     "smoke_tests[0].target_container_hostname must name one of the container hostnames (iris, sentiment-en), got 'qa'"),
    ("iris-serial", edit("smoke_test.target_container_hostname", "features"),
     "smoke_test.target_container_hostname is only for a multi-container endpoint with model.inference_mode Direct, got 'features'"),
    # smoke tests
    ("iris", edit("smoke_test.target_variant", "Blue"),
     "smoke_test.target_variant must name one of the endpoint's variants (AllTraffic), got 'Blue'"),
    ("iris", edit("smoke_tests", []),
     "smoke_tests cannot be combined with smoke_test; list every test under smoke_tests"),
    ("sentiment", edit("smoke_tests[1].name", "sentiment_en"),
     "smoke_tests must have unique names, got ['sentiment_en', 'sentiment_en']"),
    ("sentiment", edit("smoke_tests[1].name", "a b"),
     "smoke_tests[1].name must be a name of at most 40 letters, digits, '_' or '-', got 'a b'"),
    ("sentiment", edit("smoke_tests", "all"),
     "smoke_tests must be a non-empty list of smoke tests, got 'all'"),
]


@pytest.mark.parametrize(("pipeline", "change", "expected"), CASES,
                         ids=[f"{case[0]}:{case[2].split(' ')[0]}-{index}" for index, case in enumerate(CASES)])
def test_each_mistake_names_its_field(tmp_path, pipeline, change, expected):
    data = document(pipeline)
    change(data)
    messages = errors(tmp_path, data)
    assert any(message.startswith(expected) for message in messages), messages
