"""The inference handler contract of the AWS sagemaker-inference-toolkit, for one model worker.

A user module (``code/inference.py``) may define ``model_fn``, ``input_fn``, ``predict_fn``,
``output_fn``, ``transform_fn``, ``pre_model_fn`` and ``model_warmup_fn``; anything missing falls
back to the toolkit defaults below. Each function may take one extra trailing ``context`` argument.
:class:`Transformer` loads the model once and then turns request bodies into responses.

Errors are exceptions that carry an HTTP status (:class:`BaseInferenceToolkitError` and subclasses);
:func:`error_result` is the one place where exceptions become responses. NumPy is imported only
inside the default decoders/encoders, so a worker whose model never needs it starts faster.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import sys
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"
UTF8_TYPES = (JSON, CSV)  # Request bodies of these types reach input_fn as str, others as bytes.
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"


# --- Errors (mirroring sagemaker_inference/errors.py) ------------------------------------------


class BaseInferenceToolkitError(Exception):
    """An inference failure that carries its own HTTP status; user code may raise or subclass it."""

    def __init__(self, status_code: int, message: str, phrase: str):
        self.status_code = status_code
        self.message = message
        self.phrase = phrase
        super().__init__(status_code, message, phrase)

    def __str__(self) -> str:
        return str(self.message)


class GenericInferenceToolkitError(BaseInferenceToolkitError):
    """A BaseInferenceToolkitError whose message and phrase are optional."""

    def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None):
        message = message or "Invalid Request"
        super().__init__(status_code, message, phrase or message)


class UnsupportedFormatError(GenericInferenceToolkitError):
    """The request Content-Type or the Accept type has no decoder/encoder: HTTP 415."""

    def __init__(self, content_type: str):
        super().__init__(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"Content type {content_type} is not supported by this framework. "
            "Please implement input_fn to deserialize the request data or an output_fn to "
            "serialize the response.",
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE.phrase,
        )


class ModelLoadError(Exception):
    """model_fn (or pre_model_fn / model_warmup_fn) raised; the cause is the user's exception."""

    def __init__(self, function_name: str, cause: BaseException):
        self.function_name = function_name
        super().__init__(f"{function_name} raised {type(cause).__name__}: {cause}")


class MissingProgramError(FileNotFoundError):
    """The inference script named by SAGEMAKER_PROGRAM is not in the code directory."""


# --- Request context (the subset of the model server's Context that handlers use) --------------


class HandlerContext:
    """What a handler's optional ``context`` argument receives.

    Shaped like the model server context the toolkit passes (``system_properties``,
    ``get_request_header(idx, key)``, ``set_response_header(idx, key, value)``) so existing
    inference scripts run unchanged. A handler echoes custom attributes back to the caller with
    ``context.set_response_header(0, CUSTOM_ATTRIBUTES_HEADER, value)``.
    """

    def __init__(self, model_dir: str, request_headers: dict[str, str] | None = None):
        self.system_properties = {"model_dir": model_dir, "gpu_id": None}
        self._request_headers = {k.lower(): v for k, v in (request_headers or {}).items()}
        self.response_headers: dict[str, str] = {}

    @property
    def custom_attributes(self) -> str | None:
        """The caller's ``CustomAttributes`` (``X-Amzn-SageMaker-Custom-Attributes``), if any."""
        return self.get_request_header(0, CUSTOM_ATTRIBUTES_HEADER)

    def get_request_header(self, idx: int, key: str) -> str | None:  # idx: batch index, always 0
        return self._request_headers.get(key.lower())

    def get_all_request_header(self, idx: int) -> dict[str, str]:
        return dict(self._request_headers)

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.response_headers[key] = value


@dataclass
class InvocationResult:
    """What the HTTP layer sends back: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    phrase: str | None = None
    error: BaseException | None = None  # kept so the worker can log the traceback


def error_result(error: BaseException) -> InvocationResult:
    """Turn any exception into a response, like the toolkit's ``Transformer.handle_error``.

    Toolkit errors keep their status and message; anything else is a 500 whose body carries the
    message and traceback, which is what callers see as the ModelError's OriginalMessage.
    """
    if isinstance(error, BaseInferenceToolkitError):
        status, body, phrase = int(error.status_code), str(error.message), error.phrase
    else:
        trace = "".join(traceback.format_exception(error))
        status, body, phrase = 500, f"{error}\n{trace}", None
    return InvocationResult(
        status=status,
        body=body.encode("utf-8"),
        content_type="text/plain; charset=utf-8",
        phrase=_header_safe(phrase or _standard_phrase(status)),
        error=error,
    )


# --- Toolkit defaults --------------------------------------------------------------------------


def default_model_fn(model_dir: str) -> Any:
    raise NotImplementedError("Please provide a model_fn implementation in your inference script.")


def default_input_fn(input_data: str | bytes, content_type: str) -> Any:
    """Decode JSON, CSV or NPY into a numpy array; any other type is a 415."""
    decoder = _DECODERS.get(media_type(content_type))
    if decoder is None:
        raise UnsupportedFormatError(content_type)
    return decoder(input_data)


def default_predict_fn(data: Any, model: Any) -> Any:
    """Call ``model.predict(data)`` as the scikit-learn container does; otherwise predict_fn is required."""
    predict = getattr(model, "predict", None)
    if not callable(predict):
        raise NotImplementedError(
            "Please provide a predict_fn implementation: the model returned by model_fn "
            f"({type(model).__name__}) has no predict method."
        )
    return predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes | str, str]:
    """Encode to the first type in Accept that has an encoder; return (body, content_type)."""
    for candidate in parse_accept(accept):
        encoder = _ENCODERS.get(candidate)
        if encoder is not None:
            return encoder(prediction), candidate
    raise UnsupportedFormatError(accept)


def media_type(content_type: str) -> str:
    """``"text/csv; charset=utf-8"`` -> ``"text/csv"``."""
    return content_type.split(";", 1)[0].strip().lower()


def parse_accept(accept: str) -> list[str]:
    """``"text/csv;q=0.9, application/json"`` -> ``["text/csv", "application/json"]``."""
    return [media_type(part) for part in accept.split(",") if part.strip()]


def _json_to_numpy(text: str | bytes) -> Any:
    import numpy as np

    return np.array(json.loads(text))


def _csv_to_numpy(text: str | bytes) -> Any:
    import numpy as np

    if isinstance(text, bytes):
        text = text.decode("utf-8")
    # ndmin=2 keeps rows as rows: one CSV line is shape (1, n), one column is (m, 1).
    return np.loadtxt(io.StringIO(text), delimiter=",", dtype=float, ndmin=2)


def _npy_to_numpy(data: bytes) -> Any:
    import numpy as np

    # No pickles: an object array in a request body would run arbitrary code in the worker.
    return np.load(io.BytesIO(data), allow_pickle=False)


def encode_json(value: Any) -> str:
    """json.dumps that also accepts numpy arrays and scalars (anything with ``tolist``)."""
    return json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _numpy_to_csv(value: Any) -> str:
    import numpy as np

    array = np.asarray(value)
    if array.ndim == 0:  # savetxt needs at least one dimension
        array = array.reshape(1)
    buffer = io.StringIO()
    np.savetxt(buffer, array, delimiter=",", fmt="%s")
    return buffer.getvalue()


def _numpy_to_npy(value: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(value), allow_pickle=False)
    return buffer.getvalue()


_DECODERS: dict[str, Callable[[Any], Any]] = {JSON: _json_to_numpy, CSV: _csv_to_numpy, NPY: _npy_to_numpy}
_ENCODERS: dict[str, Callable[[Any], Any]] = {JSON: encode_json, CSV: _numpy_to_csv, NPY: _numpy_to_npy}


# --- Loading the user module -------------------------------------------------------------------


def import_user_module(code_dir: str | Path, program: str = "inference.py") -> ModuleType:
    """Import ``program`` from ``code_dir`` the way the toolkit does: by name, from sys.path.

    Importing by name (rather than from a file path) lets the script import its sibling modules
    and lets pickled objects refer to classes defined in it.
    """
    script = Path(code_dir) / (program if program.endswith(".py") else f"{program}.py")
    if not script.is_file():
        raise MissingProgramError(f"inference script not found: expected {script}")
    module_name = ".".join(Path(program).with_suffix("").parts)
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    sys.modules.pop(module_name, None)  # never reuse a same-named module imported earlier
    importlib.invalidate_caches()
    return importlib.import_module(module_name)


class _HandlerFunction:
    """A user or default function called with the toolkit's optional trailing ``context``.

    The toolkit counts parameters: exactly the expected number means no context, one more means
    context is appended, anything else is a TypeError when called. Counting once here keeps
    ``inspect.signature`` off the request path.
    """

    def __init__(self, function: Callable[..., Any], expected_args: int):
        self.function = function
        self.name = getattr(function, "__name__", repr(function))
        try:
            self.parameter_count = len(inspect.signature(function).parameters)
        except (TypeError, ValueError):  # builtins without a signature: assume the plain form
            self.parameter_count = expected_args

    def __call__(self, *args: Any, context: HandlerContext | None) -> Any:
        if self.parameter_count == len(args):
            return self.function(*args)
        if self.parameter_count == len(args) + 1:
            return self.function(*args, context)
        raise TypeError(f"{self.name} takes {self.parameter_count} arguments but {len(args)} were given.")


class Transformer:
    """Loads the model once, then runs input_fn -> predict_fn -> output_fn (or transform_fn)."""

    def __init__(self, user_module: ModuleType, model_dir: str | Path, default_accept: str = JSON):
        self.model_dir = str(model_dir)
        self.default_accept = default_accept or JSON
        self.model: Any = None
        self._bind_functions(user_module)

    def _bind_functions(self, user_module: ModuleType) -> None:
        """Pick the user's functions or the defaults, rejecting combinations the toolkit rejects."""

        def user(name: str) -> Callable[..., Any] | None:
            return getattr(user_module, name, None)

        if user("transform_fn") and (user("input_fn") or user("predict_fn") or user("output_fn")):
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with "
                "input_fn, predict_fn, and/or output_fn implementation"
            )
        if user("model_fn") is None:
            # The toolkit would fall back to a default_model_fn that always raises; say so up front.
            raise ValueError(
                "The inference script does not define model_fn(model_dir). The SageMaker inference "
                "toolkit has no default model loader, so model_fn is required."
            )
        self._model_fn = _HandlerFunction(user("model_fn"), 1)
        self._pre_model_fn = _HandlerFunction(user("pre_model_fn"), 1) if user("pre_model_fn") else None
        self._warmup_fn = _HandlerFunction(user("model_warmup_fn"), 2) if user("model_warmup_fn") else None
        self._transform_fn = _HandlerFunction(user("transform_fn"), 4) if user("transform_fn") else None
        self._input_fn = _HandlerFunction(user("input_fn") or default_input_fn, 2)
        self._predict_fn = _HandlerFunction(user("predict_fn") or default_predict_fn, 2)
        self._output_fn = _HandlerFunction(user("output_fn") or default_output_fn, 2)

    @property
    def uses_default_codecs(self) -> bool:
        """Whether requests go through the numpy-based default input_fn or output_fn."""
        if self._transform_fn:
            return False
        return self._input_fn.function is default_input_fn or self._output_fn.function is default_output_fn

    def load(self) -> None:
        """Run pre_model_fn, model_fn and model_warmup_fn; any failure becomes ModelLoadError."""
        context = HandlerContext(self.model_dir)
        stage = self._model_fn
        try:
            if self._pre_model_fn:
                stage = self._pre_model_fn
                stage(self.model_dir, context=context)
            stage = self._model_fn
            self.model = stage(self.model_dir, context=context)
            if self._warmup_fn:
                stage = self._warmup_fn
                stage(self.model_dir, self.model, context=context)
        except Exception as error:
            raise ModelLoadError(stage.name, error) from error

    def transform(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        context: HandlerContext | None = None,
    ) -> InvocationResult:
        """Answer one invocation. Never raises: failures come back as error results."""
        context = context or HandlerContext(self.model_dir)
        try:
            content_type = content_type or JSON
            if not accept or accept.strip() == ANY:
                accept = self.default_accept
            data = body.decode("utf-8") if media_type(content_type) in UTF8_TYPES else body
            result = self._run_transform(data, content_type, accept, context)
            # An output_fn may return (body, content_type); otherwise the answer is of the Accept type.
            response, response_type = result if isinstance(result, tuple) else (result, _first_type(accept))
            return InvocationResult(200, _to_bytes(response), str(response_type), dict(context.response_headers))
        except Exception as error:
            return error_result(error)

    def _run_transform(self, data: Any, content_type: str, accept: str, context: HandlerContext) -> Any:
        if self._transform_fn:
            return self._transform_fn(self.model, data, content_type, accept, context=context)
        decoded = self._input_fn(data, content_type, context=context)
        prediction = self._predict_fn(decoded, self.model, context=context)
        return self._output_fn(prediction, accept, context=context)


def warm_default_codecs() -> None:
    """Import numpy ahead of the first request that needs a default decoder or encoder."""
    import numpy  # noqa: F401


def _first_type(accept: str) -> str:
    """The content type to report for a plain body: the first concrete type the caller accepts."""
    concrete = [candidate for candidate in parse_accept(accept) if "*" not in candidate]
    return concrete[0] if concrete else accept


def _to_bytes(response: Any) -> bytes:
    if response is None:
        return b""
    if isinstance(response, (bytes, bytearray, memoryview)):
        return bytes(response)
    if isinstance(response, str):
        return response.encode("utf-8")
    return encode_json(response).encode("utf-8")  # like the model server: other objects as JSON


def _standard_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _header_safe(text: str) -> str:
    """A reason phrase must be one line (the toolkit's utils.remove_crlf)."""
    return " ".join(text.split())
