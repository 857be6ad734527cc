"""The inference toolkit handler contract: defaults, user overrides, validation and error mapping."""

from __future__ import annotations

import io
import json
import types
from pathlib import Path

import numpy as np
import pytest

from sagemaker_emulator.runtime.handler import (
    CUSTOM_ATTRIBUTES_HEADER,
    BaseInferenceToolkitError,
    HandlerContext,
    MissingProgramError,
    ModelLoadError,
    Transformer,
    UnsupportedFormatError,
    default_input_fn,
    default_output_fn,
    import_user_module,
)


def user_module(**functions) -> types.ModuleType:
    module = types.ModuleType("inference")
    for name, function in functions.items():
        setattr(module, name, function)
    return module


def loaded(module: types.ModuleType, default_accept: str = "application/json") -> Transformer:
    transformer = Transformer(module, "/opt/ml/model", default_accept)
    transformer.load()
    return transformer


class Doubler:
    """A scikit-learn-like model: the default predict_fn calls .predict."""

    def predict(self, data):
        return np.asarray(data) * 2


SKLEARN_LIKE = user_module(model_fn=lambda model_dir: Doubler())


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


# --- Default decoders and encoders ---------------------------------------------------------


def test_default_input_fn_json() -> None:
    decoded = default_input_fn("[[1, 2], [3, 4]]", "application/json")
    np.testing.assert_array_equal(decoded, np.array([[1, 2], [3, 4]]))


def test_default_input_fn_csv_single_row_is_two_dimensional() -> None:
    decoded = default_input_fn("1,2,3", "text/csv")
    assert decoded.shape == (1, 3)
    assert decoded.dtype == np.float64


def test_default_input_fn_csv_rows_and_columns() -> None:
    assert default_input_fn("1,2\n3,4\n5,6\n", "text/csv").shape == (3, 2)
    assert default_input_fn("1\n2\n3\n", "text/csv; charset=utf-8").shape == (3, 1)


def test_default_input_fn_npy() -> None:
    decoded = default_input_fn(npy_bytes([[1.5, 2.5]]), "application/x-npy")
    np.testing.assert_array_equal(decoded, np.array([[1.5, 2.5]]))


def test_default_input_fn_unsupported_type_is_415() -> None:
    with pytest.raises(UnsupportedFormatError) as refused:
        default_input_fn(b"<xml/>", "application/xml")
    assert refused.value.status_code == 415
    assert "application/xml" in refused.value.message


def test_default_output_fn_json_handles_numpy() -> None:
    body, content_type = default_output_fn({"scores": np.array([1.5, 2.0]), "n": np.int64(2)}, "application/json")
    assert content_type == "application/json"
    assert json.loads(body) == {"scores": [1.5, 2.0], "n": 2}


def test_default_output_fn_csv_one_row_per_line() -> None:
    body, content_type = default_output_fn(np.array([[1, 2], [3, 4]]), "text/csv")
    assert content_type == "text/csv"
    assert body.splitlines() == ["1,2", "3,4"]


def test_default_output_fn_npy_round_trips() -> None:
    body, content_type = default_output_fn(np.arange(4).reshape(2, 2), "application/x-npy")
    assert content_type == "application/x-npy"
    np.testing.assert_array_equal(np.load(io.BytesIO(body)), np.arange(4).reshape(2, 2))


def test_default_output_fn_picks_first_supported_accept_type() -> None:
    _, content_type = default_output_fn([1], "text/html, text/csv;q=0.9, application/json")
    assert content_type == "text/csv"


def test_default_output_fn_unsupported_accept_is_415() -> None:
    with pytest.raises(UnsupportedFormatError) as refused:
        default_output_fn([1], "text/html")
    assert refused.value.status_code == 415


# --- The whole transform through the defaults ------------------------------------------------


def test_default_chain_json_in_json_out() -> None:
    result = loaded(SKLEARN_LIKE).transform(b"[1, 2, 3]", "application/json", "application/json")
    assert result.status == 200
    assert result.content_type == "application/json"
    assert json.loads(result.body) == [2, 4, 6]


def test_default_chain_csv_in_csv_out() -> None:
    result = loaded(SKLEARN_LIKE).transform(b"1,2\n3,4\n", "text/csv", "text/csv")
    assert (result.status, result.content_type) == (200, "text/csv")
    assert result.body.decode().splitlines() == ["2.0,4.0", "6.0,8.0"]


def test_default_chain_npy_in_npy_out() -> None:
    result = loaded(SKLEARN_LIKE).transform(npy_bytes([1.0, 2.0]), "application/x-npy", "application/x-npy")
    assert (result.status, result.content_type) == (200, "application/x-npy")
    np.testing.assert_array_equal(np.load(io.BytesIO(result.body)), [2.0, 4.0])


@pytest.mark.parametrize("accept", [None, "", "*/*"])
def test_missing_or_wildcard_accept_uses_the_default_accept(accept) -> None:
    result = loaded(SKLEARN_LIKE, default_accept="text/csv").transform(b"[1]", "application/json", accept)
    assert (result.status, result.content_type) == (200, "text/csv")


def test_missing_content_type_means_json() -> None:
    result = loaded(SKLEARN_LIKE).transform(b"[5]", None, None)
    assert json.loads(result.body) == [10]


def test_unsupported_content_type_is_415() -> None:
    result = loaded(SKLEARN_LIKE).transform(b"<xml/>", "application/xml", "application/json")
    assert result.status == 415
    assert b"application/xml" in result.body


def test_unsupported_accept_is_415() -> None:
    result = loaded(SKLEARN_LIKE).transform(b"[1]", "application/json", "image/png")
    assert result.status == 415


def test_model_without_predict_and_no_predict_fn_is_500() -> None:
    result = loaded(user_module(model_fn=lambda model_dir: {"no": "predict"})).transform(b"[1]", None, None)
    assert result.status == 500
    assert b"predict_fn" in result.body


# --- User functions --------------------------------------------------------------------------


def test_user_functions_receive_decoded_text_and_can_return_a_tuple() -> None:
    seen = {}

    def input_fn(body, content_type):
        seen["input"] = (body, content_type)
        return json.loads(body)

    module = user_module(
        model_fn=lambda model_dir: {"offset": 10},
        input_fn=input_fn,
        predict_fn=lambda data, model: sum(data) + model["offset"],
        output_fn=lambda prediction, accept: (f"total={prediction}", "text/plain"),
    )

    result = loaded(module).transform(b"[1, 2]", "application/json", "application/json")

    assert seen["input"] == ("[1, 2]", "application/json")  # str for JSON, as in the toolkit
    assert (result.status, result.body, result.content_type) == (200, b"total=13", "text/plain")


def test_binary_content_types_reach_input_fn_as_bytes() -> None:
    module = user_module(
        model_fn=lambda model_dir: None,
        input_fn=lambda body, content_type: type(body).__name__,
        predict_fn=lambda data, model: data,
        output_fn=lambda prediction, accept: prediction,
    )
    result = loaded(module).transform(b"\x89PNG", "image/png", "text/plain")
    assert (result.body, result.content_type) == (b"bytes", "text/plain")


def test_transform_fn_replaces_the_chain() -> None:
    def transform_fn(model, data, content_type, accept):
        return json.dumps({"model": model, "data": data, "ct": content_type, "accept": accept})

    result = loaded(user_module(model_fn=lambda model_dir: "m", transform_fn=transform_fn)).transform(
        b'"hello"', "application/json", "application/json"
    )

    assert result.status == 200
    assert result.content_type == "application/json"
    assert json.loads(result.body) == {"model": "m", "data": '"hello"', "ct": "application/json", "accept": "application/json"}


def test_transform_fn_with_predict_fn_is_a_value_error() -> None:
    module = user_module(model_fn=lambda d: None, transform_fn=lambda m, d, c, a: d, predict_fn=lambda d, m: d)
    with pytest.raises(ValueError, match="Cannot use transform_fn implementation in conjunction"):
        Transformer(module, "/opt/ml/model")


def test_missing_model_fn_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="model_fn"):
        Transformer(user_module(predict_fn=lambda d, m: d), "/opt/ml/model")


def test_model_fn_gets_the_model_dir_and_optional_context() -> None:
    calls = []
    module = user_module(
        model_fn=lambda model_dir, context: calls.append((model_dir, context.system_properties["model_dir"])),
    )
    loaded(module)
    assert calls == [("/opt/ml/model", "/opt/ml/model")]


def test_model_fn_failure_names_the_function_and_exception() -> None:
    def model_fn(model_dir):
        raise RuntimeError("boom")

    transformer = Transformer(user_module(model_fn=model_fn), "/opt/ml/model")
    with pytest.raises(ModelLoadError, match="model_fn raised RuntimeError: boom"):
        transformer.load()


def test_pre_model_fn_and_warmup_run_around_model_fn() -> None:
    order = []
    module = user_module(
        pre_model_fn=lambda model_dir: order.append("pre"),
        model_fn=lambda model_dir: order.append("model") or "the-model",
        model_warmup_fn=lambda model_dir, model: order.append(f"warmup:{model}"),
    )
    loaded(module)
    assert order == ["pre", "model", "warmup:the-model"]


def test_context_carries_custom_attributes_and_echoes_them_back() -> None:
    def predict_fn(data, model, context):
        context.set_response_header(0, CUSTOM_ATTRIBUTES_HEADER, f"seen={context.custom_attributes}")
        return data

    module = user_module(model_fn=lambda d: None, predict_fn=predict_fn)
    context = HandlerContext("/opt/ml/model", {"x-amzn-sagemaker-custom-attributes": "trace=abc"})

    result = loaded(module).transform(b"[1]", None, None, context)

    assert result.status == 200
    assert result.headers == {CUSTOM_ATTRIBUTES_HEADER: "seen=trace=abc"}


def test_wrong_arity_is_a_500_at_call_time_like_the_toolkit() -> None:
    module = user_module(model_fn=lambda d: None, predict_fn=lambda data, model, context, extra: data)
    result = loaded(module).transform(b"[1]", None, None)
    assert result.status == 500
    assert b"predict_fn" in result.body or b"<lambda>" in result.body


# --- Error mapping ---------------------------------------------------------------------------


def test_user_exception_is_500_with_message_and_traceback() -> None:
    def predict_fn(data, model):
        raise KeyError("missing feature")

    result = loaded(user_module(model_fn=lambda d: None, predict_fn=predict_fn)).transform(b"[1]", None, None)

    assert result.status == 500
    body = result.body.decode()
    assert body.startswith("'missing feature'")
    assert "Traceback (most recent call last)" in body
    assert "in predict_fn" in body
    assert isinstance(result.error, KeyError)


def test_value_error_in_input_fn_is_500() -> None:
    def input_fn(body, content_type):
        raise ValueError("bad payload")

    result = loaded(user_module(model_fn=lambda d: None, input_fn=input_fn)).transform(b"x", None, None)
    assert result.status == 500
    assert result.body.startswith(b"bad payload")


def test_toolkit_error_keeps_its_status_message_and_phrase() -> None:
    def predict_fn(data, model):
        raise BaseInferenceToolkitError(422, "input has 3 features, expected 4", "Unprocessable\r\nEntity")

    result = loaded(user_module(model_fn=lambda d: None, predict_fn=predict_fn)).transform(b"[1]", None, None)

    assert (result.status, result.body) == (422, b"input has 3 features, expected 4")
    assert result.phrase == "Unprocessable Entity"  # CRLF removed so it fits a status line


# --- Importing the user module ---------------------------------------------------------------


def test_import_user_module_supports_sibling_imports(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "helpers_for_test_handler.py").write_text("FACTOR = 3\n")
    (code / "inference.py").write_text(
        "from helpers_for_test_handler import FACTOR\ndef model_fn(model_dir):\n    return FACTOR\n"
    )

    module = import_user_module(code, "inference.py")

    assert module.model_fn(str(tmp_path)) == 3


def test_import_user_module_missing_script_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(MissingProgramError, match=str(tmp_path / "code" / "serve.py")):
        import_user_module(tmp_path / "code", "serve.py")
