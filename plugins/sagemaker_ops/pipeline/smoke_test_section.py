"""The ``smoke_test:`` (one) or ``smoke_tests:`` (a list) section, and which targets each test needs."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sagemaker_ops.packaging import MULTI_MODEL_SUFFIX
from sagemaker_ops.pipeline.fields import FieldReader
from sagemaker_ops.pipeline.models import EndpointConfig, ModelConfig, SmokeTestConfig

SMOKE_TEST_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
TARGET_FIELDS = ("target_model", "target_container_hostname", "target_variant")


def read_smoke_tests(fields: FieldReader, top: dict) -> dict[str, SmokeTestConfig] | None:
    """``smoke_test`` (one mapping) or ``smoke_tests`` (a list): each test by its field path, in order."""
    if "smoke_tests" in top and "smoke_test" in top:
        fields.fail("smoke_tests", "cannot be combined with smoke_test; list every test under smoke_tests")
        return None
    if "smoke_tests" not in top:
        test = fields.section(top, "smoke_test", lambda data: _smoke_test(fields, data, "smoke_test", None))
        return None if test is None else {"smoke_test": test}
    tests = {}
    for index, item in enumerate(fields.item_list(top, "", "smoke_tests", "smoke tests")):
        path = f"smoke_tests[{index}]"
        if not isinstance(item, Mapping):
            fields.fail(path, "must be a mapping (payload_file, content_type, accept, expected_json, ...)", item)
            continue
        tests[path] = _smoke_test(fields, dict(item), path, index)
    fields.unique([test.name for test in tests.values()], "smoke_tests", "names")
    return tests or None


def _smoke_test(fields: FieldReader, data: dict, path: str, index: int | None) -> SmokeTestConfig:
    fields.no_unknown_keys(data, path, {"payload_file", "content_type", "accept", "expected_json", "expected_body",
                                        "name", *TARGET_FIELDS, "async"})
    payload_file = fields.file(data, path, "payload_file")
    payload = ""
    if payload_file is not None:
        payload = payload_file.read_text(encoding="utf-8")
        if not payload.strip():
            fields.fail(f"{path}.payload_file", f"points at an empty file ({payload_file})")
    expected_body = fields.string(data, path, "expected_body", default=None)
    if "expected_json" in data and expected_body is not None:
        fields.fail(path, "takes expected_json or expected_body, not both")
    targets = {key: fields.string(data, path, key, default=None) for key in TARGET_FIELDS}
    asynchronous = fields.boolean(data, path, "async", default=False)
    if asynchronous and any(targets.values()):
        fields.fail(path, "takes no target_* with async: true (InvokeEndpointAsync has no targeted routing)")
    default_name = "smoke_test" if index is None else _default_name(targets, index)
    name = fields.string(data, path, "name", default=default_name, pattern=SMOKE_TEST_NAME_PATTERN,
                         expectation="a name of at most 40 letters, digits, '_' or '-'")
    return SmokeTestConfig(
        payload_file=payload_file,
        payload=payload,
        content_type=fields.string(data, path, "content_type", default="text/csv"),
        accept=fields.string(data, path, "accept", default="application/json"),
        expected_json=data.get("expected_json"),
        expected_body=expected_body,
        name=name or default_name,
        asynchronous=asynchronous,
        **targets,
    )


def _default_name(targets: dict[str, str | None], index: int) -> str:
    """A list item's name: what it targets (``sentiment_en.tar.gz`` -> ``sentiment_en``), else its position."""
    target = next((value for value in targets.values() if value), None)
    if target is None:
        return str(index + 1)
    return re.sub(r"[^A-Za-z0-9_-]", "_", target.removesuffix(MULTI_MODEL_SUFFIX))[:40]


def check_smoke_test_targets(fields: FieldReader, path: str, test: SmokeTestConfig, model: ModelConfig,
                             endpoint: EndpointConfig) -> None:
    """Each target must exist, and the endpoint's kind decides which targets a request needs."""
    archives = [archive.target_model for archive in model.multi_model]
    hostnames = [container.hostname for container in model.containers if container.hostname]
    direct = model.inference_mode == "Direct"
    variants = [variant.name for variant in endpoint.variants]
    if test.asynchronous != (endpoint.async_inference is not None):
        if test.asynchronous:
            fields.fail(f"{path}.async", "needs endpoint.async_inference (only an asynchronous endpoint "
                                         "takes InvokeEndpointAsync)", True)
        else:
            fields.fail(f"{path}.async", "must be true for an asynchronous endpoint (endpoint.async_inference "
                                         "is set: requests go through InvokeEndpointAsync)")
    _check_target(fields, f"{path}.target_model", test.target_model, archives,
                  needed=bool(archives) and not test.asynchronous,
                  what="the multi-model archives", only_for="a multi-model endpoint (model.multi_model)")
    _check_target(fields, f"{path}.target_container_hostname", test.target_container_hostname,
                  hostnames if direct else [], needed=direct and not test.asynchronous,
                  what="the container hostnames",
                  only_for="a multi-container endpoint with model.inference_mode Direct")
    _check_target(fields, f"{path}.target_variant", test.target_variant, variants, needed=False,
                  what="the endpoint's variants", only_for="an endpoint with variants")


def _check_target(fields: FieldReader, field_path: str, value: str | None, choices: list[str], *, needed: bool,
                  what: str, only_for: str) -> None:
    listed = ", ".join(choices)
    if value is None:
        if needed:
            fields.fail(field_path, f"is required: name one of {what} ({listed})")
    elif not choices:
        fields.fail(field_path, f"is only for {only_for}", value)
    elif value not in choices:
        fields.fail(field_path, f"must name one of {what} ({listed})", value)
