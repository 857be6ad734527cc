"""The multi-model container API of a worker (``SAGEMAKER_MULTI_MODEL=true``), as mms-container-apis
describes it: SageMaker, not the caller, decides which models an instance holds and tells the
container through these routes.

    POST   /models                {"model_name": ..., "url": ...}  load; 409 if loaded, 507 if out of memory
    GET    /models                {"models": [{"modelName", "modelUrl"}], "nextPageToken"?}
    GET    /models/{name}         {"modelName", "modelUrl", "memoryBytes"}; 404 if not loaded
    DELETE /models/{name}         unload; 404 if not loaded
    POST   /models/{name}/invoke  one invocation of that model; 404 if not loaded
    GET    /ping

``url`` is a model directory (what SageMaker passes: the archive already extracted) or, in the
emulator, an http(s) URL of the archive (a pre-signed GET on the emulator's S3), which the worker
downloads and extracts itself, as the single-model worker does. Each model brings its own
``code/inference.py``; it is imported under a module name of its own, so two models' scripts never
share a ``sys.modules`` entry. A load answers with what it measured: the download and load times and
the model's footprint (resident memory the process gained across the load), which the router uses to
keep the instance within its memory budget.

Loads run one at a time on a loader thread, so a footprint is not mixed up with another model's load;
invocations keep running on the inference thread meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import importlib.util
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator
from urllib.parse import parse_qsl

from sagemaker_emulator.runtime.handler import JSON, MissingProgramError, ModelLoadError, Transformer
from sagemaker_emulator.runtime.model_server import (
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    OK,
    Handler,
    InferenceThread,
    Request,
    Response,
    json_response,
    predict,
)
from sagemaker_emulator.runtime.worker import (
    ModelSource,
    StartupError,
    _max_extract_bytes,
    download_model_data,
    extract_model_data,
)

log = logging.getLogger("sagemaker_emulator.worker.multi_model")

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DEFAULT_LIST_LIMIT = 100
_module_numbers = itertools.count(1)


class LoadFailed(Exception):
    """A model could not be loaded; carries the HTTP status and error type of the management API."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass
class LoadedModel:
    name: str
    url: str
    model_dir: Path
    module_name: str
    transformer: Transformer
    memory_bytes: int


@dataclass
class LoadReport:
    model: LoadedModel
    download_us: float
    load_us: float


def resident_bytes() -> int:
    """This process's resident set size (Linux /proc; 0 where that is not available)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so an unload shows in the RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextmanager
def model_code_on_path(code_dir: Path, module_name: str) -> Iterator[None]:
    """Keep one model's code apart from the others' while it is imported and loaded.

    The code dir is on sys.path for the duration, so the script (and its model_fn) can import its own
    helper modules; afterwards those helpers leave sys.modules (the script keeps its references), so
    another model's same-named helper is imported afresh rather than reused. A helper imported only
    later, inside predict_fn, is therefore not found: import helpers at the top of the script.
    """
    known = set(sys.modules)
    sys.path.insert(0, str(code_dir))
    try:
        yield
    finally:
        sys.path.remove(str(code_dir))
        for name in set(sys.modules) - known - {module_name}:
            if _lives_in(sys.modules[name], code_dir):
                del sys.modules[name]


def import_script(code_dir: Path, program: str, module_name: str) -> ModuleType:
    """Import ``code_dir/program`` under the given module name (a distinct one per loaded model)."""
    script = code_dir / (program if program.endswith(".py") else f"{program}.py")
    if not script.is_file():
        raise MissingProgramError(f"inference script not found: expected {script}")
    spec = importlib.util.spec_from_file_location(module_name, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # registered, so pickles and dataclasses can find it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _lives_in(module: ModuleType, directory: Path) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and Path(file).resolve().is_relative_to(directory.resolve())


class ModelStore:
    """The models this worker has loaded, by the opaque name SageMaker gave each."""

    def __init__(self, models_dir: Path, container_name: str):
        self.models_dir = models_dir
        self.container_name = container_name
        self.models: dict[str, LoadedModel] = {}
        self.loading: set[str] = set()

    def load(self, name: str, url: str) -> LoadReport:
        """Fetch (if a URL), import and load one model; runs on the loader thread."""
        before = resident_bytes()
        model_dir = self.models_dir / name / "model"
        download_us = 0.0
        try:
            if url.startswith(("http://", "https://")):
                started = time.perf_counter()
                self._fetch(url, model_dir)
                download_us = (time.perf_counter() - started) * 1e6
            else:
                model_dir = Path(url)
                if not model_dir.is_dir():
                    raise LoadFailed(404, "ModelNotFoundException", f"Model directory {url} does not exist.")
            started = time.perf_counter()
            module_name = f"sagemaker_mme_model_{next(_module_numbers)}"
            transformer = self._load_handler(model_dir, module_name)
            load_us = (time.perf_counter() - started) * 1e6
        except BaseException:
            self._remove_files(name)
            raise
        footprint = max(resident_bytes() - before, 0)
        model = LoadedModel(name, url, model_dir, module_name, transformer, footprint)
        log.info('Loaded model "%s" in %.2f s (download %.2f s); it holds %.1f MiB',
                 name, load_us / 1e6, download_us / 1e6, footprint / 2**20)
        return LoadReport(model, download_us, load_us)

    def _fetch(self, url: str, model_dir: Path) -> None:
        # The URL's query is a signature: leave it out of logs and messages.
        source = ModelSource(argparse.Namespace(model_data_url=url, model_data_source=url.split("?", 1)[0],
                                                container_name=self.container_name))
        model_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="sagemaker-model-data-") as scratch:
            tar_path = Path(scratch) / "model.tar.gz"
            try:
                max_bytes = _max_extract_bytes()
                download_model_data(source, tar_path, max_bytes)
            except StartupError as error:
                # A download error wraps the OSError behind it; an oversize archive raises directly.
                error_type = "DownloadModelException" if error.__cause__ is not None else "ModelTooLargeException"
                raise LoadFailed(400, error_type, error.reason) from error
            try:
                extract_model_data(source, tar_path, model_dir, max_bytes)
            except StartupError as error:
                raise LoadFailed(400, "InvalidModelException", error.reason) from error

    def _load_handler(self, model_dir: Path, module_name: str) -> Transformer:
        program = os.environ.get("SAGEMAKER_PROGRAM") or "inference.py"
        default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON
        try:
            with model_code_on_path(model_dir / "code", module_name):
                module = import_script(model_dir / "code", program, module_name)
                transformer = Transformer(module, model_dir, default_accept)
                transformer.load()
        except MemoryError as error:
            sys.modules.pop(module_name, None)
            raise LoadFailed(507, "InsufficientMemoryException", "Not enough memory to load the model.") from error
        except ModelLoadError as error:
            sys.modules.pop(module_name, None)
            if isinstance(error.__cause__, MemoryError):
                raise LoadFailed(507, "InsufficientMemoryException", f"Not enough memory: {error}") from error
            log.error("Model loading failed", exc_info=error.__cause__)
            raise LoadFailed(500, "ModelLoadException", f"Failed to load the model: {error}") from error
        except MissingProgramError as error:
            raise LoadFailed(400, "InvalidModelException", f"The model archive has no code/{program}.") from error
        except Exception as error:  # the user's script failed to import or breaks the handler contract
            sys.modules.pop(module_name, None)
            log.error("Importing code/%s failed", program, exc_info=error)
            raise LoadFailed(500, "ModelLoadException",
                             f"Failed to import code/{program}: {type(error).__name__}: {error}") from error
        return transformer

    def unload(self, model: LoadedModel) -> None:
        """Forget the model, its module and its files; runs on the loader thread."""
        sys.modules.pop(model.module_name, None)
        self._remove_files(model.name)
        model.transformer = None  # drop the last reference to the user's model object
        release_free_memory()
        log.info('Unloaded model "%s"', model.name)

    def _remove_files(self, name: str) -> None:
        shutil.rmtree(self.models_dir / name, ignore_errors=True)


def _error(status: int, error_type: str, message: str) -> Response:
    """The model server's error body: {"code", "type", "message"}."""
    return json_response({"code": status, "type": error_type, "message": message}, status=status)


def _not_loaded(name: str) -> Response:
    return _error(404, "ModelNotFoundException", f"Model not found: {name}")


def multi_model_handler(models_dir: Path, container_name: str,
                        inference: InferenceThread) -> tuple[Handler, Callable[[], None]]:
    """The routes of the multi-model container contract, and the clean-up to run at shutdown."""
    store = ModelStore(models_dir, container_name)
    loader = InferenceThread(asyncio.get_running_loop(), name="model-loader")

    async def load(request: Request) -> Response:
        fields = dict(parse_qsl(request.query))
        if request.body:
            try:
                document = json.loads(request.body)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                return _error(400, "BadRequestException", "The request body is not a valid JSON object.")
            fields.update(document)
        name, url = fields.get("model_name"), fields.get("url")
        if not name or not url:
            return _error(400, "BadRequestException", "Parameters model_name and url are required.")
        if name in store.models or name in store.loading:
            return _error(409, "ConflictStatusException", f"Model {name} is already loaded.")
        store.loading.add(name)
        try:
            report = await loader.run(store.load, name, url)
        except LoadFailed as error:
            log.warning('Loading model "%s" failed (%d): %s', name, error.status, error.message)
            return _error(error.status, error.error_type, error.message)
        finally:
            store.loading.discard(name)
        store.models[name] = report.model
        return json_response({"status": f'Model "{name}" loaded', "modelName": name,
                              "memoryBytes": report.model.memory_bytes,
                              "downloadMicros": round(report.download_us), "loadMicros": round(report.load_us)})

    def list_models(request: Request) -> Response:
        names = sorted(store.models)
        query = dict(parse_qsl(request.query))
        try:
            limit = int(query.get("limit", DEFAULT_LIST_LIMIT))
            start = int(query.get("next_page_token", 0))
        except ValueError:
            return _error(400, "BadRequestException", "limit and next_page_token must be integers.")
        page = names[start:start + max(limit, 1)]
        body: dict = {"models": [{"modelName": n, "modelUrl": store.models[n].url.split("?", 1)[0]} for n in page]}
        if start + len(page) < len(names):
            body["nextPageToken"] = str(start + len(page))
        return json_response(body)

    def describe(name: str) -> Response:
        model = store.models.get(name)
        if model is None:
            return _not_loaded(name)
        return json_response({"modelName": model.name, "modelUrl": model.url.split("?", 1)[0],
                              "memoryBytes": model.memory_bytes})

    async def unload(name: str) -> Response:
        model = store.models.pop(name, None)
        if model is None:
            return _not_loaded(name)
        await loader.run(store.unload, model)
        return json_response({"status": f'Model "{model.name}" unloaded'})

    def invoke(name: str, request: Request) -> Response | asyncio.Future:
        model = store.models.get(name)
        if model is None:
            return _not_loaded(name)
        return inference.run(predict, model.transformer, request, model.name)

    def handle(request: Request):
        method, parts = request.method, request.path.strip("/").split("/")
        if parts == ["ping"]:
            return OK if method in ("GET", "HEAD") else METHOD_NOT_ALLOWED
        if parts[0] != "models" or len(parts) > 3 or (len(parts) == 3 and parts[2] != "invoke"):
            return NOT_FOUND
        if len(parts) == 1:
            return load(request) if method == "POST" else list_models(request) if method == "GET" else METHOD_NOT_ALLOWED
        if len(parts) == 3:
            return invoke(parts[1], request) if method == "POST" else METHOD_NOT_ALLOWED
        if method == "GET":
            return describe(parts[1])
        return unload(parts[1]) if method == "DELETE" else METHOD_NOT_ALLOWED

    return handle, loader.close
