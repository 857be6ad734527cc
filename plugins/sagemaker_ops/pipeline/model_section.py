"""The ``model:`` section: one model (``source``), a multi-model set or a multi-container model."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sagemaker_ops.packaging import ARCHIVE_NAME_PATTERN, MULTI_MODEL_SUFFIX
from sagemaker_ops.pipeline.fields import SAGEMAKER_NAME_PATTERN, FieldReader
from sagemaker_ops.pipeline.models import IMAGE_FIELDS, ArchiveConfig, ContainerConfig, ModelConfig

ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
# CreateModel: 2-15 containers in a multi-container model, invoked Serial (a pipeline) or Direct.
MAX_CONTAINERS = 15
INFERENCE_MODES = ("Serial", "Direct")


def read_model(fields: FieldReader, data: dict) -> ModelConfig:
    fields.no_unknown_keys(data, "model", {"source", "role_arn", *IMAGE_FIELDS, "multi_model", "containers",
                                           "inference_mode"})
    kinds = [key for key in ("source", "multi_model", "containers") if data.get(key) is not None]
    if len(kinds) > 1:
        fields.fail("model", "takes one of source (one model), multi_model (a multi-model endpoint) or "
                             "containers (a multi-container endpoint)", kinds)
    role_arn = fields.string(data, "model", "role_arn", pattern=ROLE_ARN_PATTERN,
                             expectation="an IAM role ARN like arn:aws:iam::123456789012:role/name")
    if "inference_mode" in data and "containers" not in data:
        fields.fail("model.inference_mode", "is only for a multi-container model (model.containers)",
                    data["inference_mode"])
    if "containers" in data:
        for key in sorted(set(IMAGE_FIELDS) & set(data)):
            fields.fail(f"model.{key}", f"is set per container in a multi-container model "
                                        f"(model.containers[].{key})", data[key])
        mode = fields.choice(data, "model", "inference_mode", INFERENCE_MODES, default="Serial")
        return ModelConfig(source_dir=None, role_arn=role_arn, image_uri=None, framework=None,
                           framework_version=None, environment={}, inference_mode=mode,
                           containers=_containers(fields, data["containers"], mode))
    image_uri, framework, framework_version = _image(fields, data, "model")
    return ModelConfig(
        source_dir=None if "multi_model" in data else fields.folder(data, "model", "source"),
        role_arn=role_arn,
        image_uri=image_uri,
        framework=framework,
        framework_version=framework_version,
        environment=fields.string_map(data, "model", "environment"),
        multi_model=_multi_model(fields, data["multi_model"]) if "multi_model" in data else (),
    )


def _image(fields: FieldReader, data: dict, path: str) -> tuple[str | None, str | None, str | None]:
    """``image_uri``, or ``framework`` + ``framework_version`` (resolved to an image at run time)."""
    image_uri = fields.string(data, path, "image_uri", default=None)
    framework = fields.string(data, path, "framework", default=None)
    framework_version = fields.string(data, path, "framework_version", default=None)
    if bool(image_uri) == bool(framework):
        fields.fail(path, "needs either image_uri or framework + framework_version (exactly one)")
    if framework and not framework_version:
        fields.fail(f"{path}.framework_version", f"is required with framework {framework!r} (e.g. '1.2-1')")
    return image_uri, framework, framework_version


def _multi_model(fields: FieldReader, value: Any) -> tuple[ArchiveConfig, ...]:
    path = "model.multi_model"
    data = fields.mapping(value, path)
    fields.no_unknown_keys(data, path, {"models"})
    archives = []
    for index, item in enumerate(fields.item_list(data, path, "models", "models (name, source)")):
        item_path = f"{path}.models[{index}]"
        if not isinstance(item, Mapping):
            fields.fail(item_path, "must be a mapping (name, source)", item)
            continue
        item = dict(item)
        fields.no_unknown_keys(item, item_path, {"name", "source"})
        name = fields.string(item, item_path, "name", pattern=ARCHIVE_NAME_PATTERN, max_length=63,
                             expectation="a model name of letters, digits, '.', '_' or '-'")
        if name and name.endswith(MULTI_MODEL_SUFFIX):
            fields.fail(f"{item_path}.name", f"must not end in {MULTI_MODEL_SUFFIX} (it is added: the "
                                             f"archive is <name>{MULTI_MODEL_SUFFIX})", name)
            name = None
        source_dir = fields.folder(item, item_path, "source")
        if name and source_dir:
            archives.append(ArchiveConfig(name=name, source_dir=source_dir))
    fields.unique([archive.name for archive in archives], f"{path}.models", "names")
    return tuple(archives)


def _containers(fields: FieldReader, value: Any, mode: str | None) -> tuple[ContainerConfig, ...]:
    path = "model.containers"
    if not isinstance(value, list):
        fields.fail(path, f"must be a list of 2 to {MAX_CONTAINERS} containers", value)
        return ()
    if not 2 <= len(value) <= MAX_CONTAINERS:
        fields.fail(path, f"must list 2 to {MAX_CONTAINERS} containers (for one model use model.source), "
                          f"got {len(value)}")
    containers = tuple(_container(fields, item, f"{path}[{index}]", mode) for index, item in enumerate(value))
    fields.unique([c.hostname for c in containers if c and c.hostname], path, "hostnames")
    fields.unique([c.key(index) for index, c in enumerate(containers) if c], path,
                  "task names (the hostname, else container-<position>)")
    return tuple(container for container in containers if container)


def _container(fields: FieldReader, item: Any, path: str, mode: str | None) -> ContainerConfig | None:
    if not isinstance(item, Mapping):
        fields.fail(path, "must be a mapping (hostname, source, image_uri or framework, environment)", item)
        return None
    data = dict(item)
    fields.no_unknown_keys(data, path, {"hostname", "source", *IMAGE_FIELDS})
    hostname = fields.string(data, path, "hostname", default=None, pattern=SAGEMAKER_NAME_PATTERN, max_length=63,
                             expectation="a container hostname (letters, digits and hyphens)")
    if mode == "Direct" and "hostname" not in data:
        fields.fail(f"{path}.hostname", "is required when model.inference_mode is Direct (each request names "
                                        "its container by hostname)")
    image_uri, framework, framework_version = _image(fields, data, path)
    source_dir = fields.folder(data, path, "source")
    if source_dir is None:
        return None
    return ContainerConfig(hostname=hostname, source_dir=source_dir, image_uri=image_uri, framework=framework,
                           framework_version=framework_version,
                           environment=fields.string_map(data, path, "environment"))
