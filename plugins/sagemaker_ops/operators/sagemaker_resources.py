"""Ensure SageMaker models and endpoint configs: create if missing, reuse if the same, refuse if different.

Names are either given or derived from a prefix plus a hash of the spec, so "same name" implies
"same spec": a changed model flows into a new config, and the endpoint operators
(:mod:`sagemaker_ops.operators.sagemaker_endpoint`) update the endpoint to it. The request each
operator sends (CreateModel's containers, CreateEndpointConfig's variants) is built here, next to
the call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowFailException
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook, is_already_exists
from sagemaker_ops.operators.base import SageMakerOpsOperator, store_arguments
from sagemaker_ops.pipeline.models import CAPTURE_MODES
from sagemaker_ops.specs import aws_tags, check_resource_name, check_tags, derive_name, spec_differences

if TYPE_CHECKING:
    from airflow.sdk import Context
    from sagemaker_ops.pipeline.models import (
        AsyncInferenceConfig,
        DataCaptureConfig,
        EndpointConfig,
        VariantConfig,
    )

ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
DEFAULT_IMAGE_INSTANCE_TYPE = "ml.m5.large"
# CreateModel: a model holds at most 15 containers, run Serial (an inference pipeline) or Direct.
MAX_CONTAINERS = 15
INFERENCE_EXECUTION_MODES = ("Serial", "Direct")
CONTAINER_FIELDS = frozenset({"hostname", "model_data_url", "image_uri", "framework", "framework_version",
                              "environment"})


class ResourceSpecConflict(AirflowFailException):
    """A resource exists under the requested name with a different spec (retrying cannot help)."""


def _resolve_name(kind: str, name: str | None, name_prefix: str | None, spec: dict) -> str:
    """Use the explicit ``<kind>_name``, or derive ``<name_prefix>-<spec hash>``; exactly one is allowed."""
    if (name is None) == (name_prefix is None):
        raise ValueError(f"Pass exactly one of {kind}_name or name_prefix (got both or neither).")
    if name is not None:
        return check_resource_name(f"{kind}_name", name)
    if not isinstance(name_prefix, str) or not name_prefix:
        raise ValueError(f"name_prefix must be a non-empty string, got {name_prefix!r}.")
    return derive_name(name_prefix, spec)


class _EnsureResourceOperator(SageMakerOpsOperator[SageMakerOpsHook]):
    """
    Describe, then create if missing; same name + same spec is reused, a different spec is an error.

    :param name_prefix: derive the name as ``<name_prefix>-<hash of the spec>``, so that a new spec
        (a new artifact, image or model) gets a new name. Mutually exclusive with the explicit name.
    :param tags: tags for a newly created resource (not compared: Describe does not return them).
    """

    aws_hook_class = SageMakerOpsHook
    resource_kind: ClassVar[str]  # "model", "endpoint config": for messages
    template_fields: Sequence[str] = aws_template_fields("name_prefix", "tags")
    template_fields_renderers: ClassVar[dict] = {"tags": "json"}

    @store_arguments
    def __init__(self, *, name_prefix: str | None = None, tags: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def _ensure(self, name: str, spec: dict[str, Any]) -> tuple[dict, bool]:
        """Return (description or create response, created?)."""
        existing = self._describe(name)
        if existing is None:
            self.log.info("Creating %s %s", self.resource_kind, name)
            try:
                return self._create(name, spec, aws_tags(self.tags)), True
            except ClientError as error:
                if not is_already_exists(error):
                    raise
                existing = self._describe(name)  # created concurrently: judge it like any existing one
                if existing is None:
                    raise
        differences = spec_differences(spec, existing)
        if differences:
            raise ResourceSpecConflict(
                f"SageMaker {self.resource_kind} {name} already exists with a different spec: "
                f"{'; '.join(differences)}. SageMaker {self.resource_kind}s cannot be changed in place; "
                f"choose a new name (or pass name_prefix to derive one from the spec)."
            )
        self.log.info("Reusing %s %s: it already exists with the same spec.", self.resource_kind, name)
        return existing, False

    def _describe(self, name: str) -> dict | None:
        raise NotImplementedError

    def _create(self, name: str, spec: dict, tags: list[dict[str, str]]) -> dict:
        raise NotImplementedError


class EnsureModelOperator(_EnsureResourceOperator):
    """
    Create a SageMaker model, or reuse it if one with the same name and spec exists.

    Three shapes, as the SageMaker hosting options need them:

    * one container (``PrimaryContainer``): ``model_data_url`` of a ``model.tar.gz``;
    * a multi-model endpoint's container: ``multi_model=True`` and ``model_data_url`` the S3
      prefix (ending in ``/``) holding ``<name>.tar.gz`` per model (``Mode: MultiModel``);
    * several containers (``Containers``, 2-15): ``containers``, each a dict with ``hostname``,
      ``model_data_url``, ``image_uri`` or ``framework`` + ``framework_version`` and
      ``environment``, invoked per ``inference_execution_mode`` (``Serial``: an inference
      pipeline; ``Direct``: each request names its container, so every container needs a hostname).

    A container's image is either ``image_uri`` or resolved from ``framework`` and
    ``framework_version`` with the SageMaker SDK (``sagemaker.core.image_uris.retrieve``), at run
    time. Returns ``{"model_name", "model_arn", "created", "image_uri", "model_data_url",
    "containers"}``; ``image_uri`` and ``model_data_url`` are those of the single container (None
    with ``containers``), ``containers`` lists ``{"hostname", "image_uri", "model_data_url"}`` of each.

    :param model_data_url: S3 URI of ``model.tar.gz`` (e.g. ``PackageModelOperator``'s ``s3_uri``),
        or with ``multi_model`` the S3 prefix of the archives (``PackageMultiModelOperator``'s ``s3_uri``).
    :param execution_role_arn: IAM role SageMaker assumes to pull the image and the model data.
    :param model_name: the model's name. Mutually exclusive with ``name_prefix``.
    :param image_uri: the inference container image. Mutually exclusive with ``framework``.
    :param framework: a SageMaker framework container, e.g. ``sklearn``; needs ``framework_version``.
    :param framework_version: the framework container version, e.g. ``1.2-1``.
    :param image_instance_type: instance type used to pick the CPU/GPU image flavour.
    :param environment: environment variables for the container (string to string).
    :param multi_model: serve many models from one container (``Mode: MultiModel``); requests name
        theirs with ``TargetModel``.
    :param containers: the containers of a multi-container model, instead of ``model_data_url``,
        ``image_uri``/``framework`` and ``environment``.
    :param inference_execution_mode: ``Serial`` (default) or ``Direct``, with ``containers``.
    ``name_prefix`` and ``tags`` are :class:`_EnsureResourceOperator`'s.
    """

    resource_kind = "model"
    template_fields: Sequence[str] = aws_template_fields(
        *_EnsureResourceOperator.template_fields, "model_name", "model_data_url", "execution_role_arn", "image_uri",
        "framework", "framework_version", "environment", "containers", "inference_execution_mode",
    )
    template_fields_renderers: ClassVar[dict] = {**_EnsureResourceOperator.template_fields_renderers,
                                                 "environment": "json", "containers": "json"}

    @store_arguments
    def __init__(
        self,
        *,
        execution_role_arn: str,
        model_data_url: str | None = None,
        model_name: str | None = None,
        image_uri: str | None = None,
        framework: str | None = None,
        framework_version: str | None = None,
        image_instance_type: str = DEFAULT_IMAGE_INSTANCE_TYPE,
        environment: dict[str, str] | None = None,
        multi_model: bool = False,
        containers: list[dict[str, Any]] | None = None,
        inference_execution_mode: str = "Serial",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        requests = self._validated_containers()
        check_tags(self.tags)
        definitions = [self._container_definition(request) for request in requests]
        spec: dict[str, Any] = {"ExecutionRoleArn": self.execution_role_arn}
        if self.containers is None:
            spec["PrimaryContainer"] = definitions[0]
        else:
            spec["Containers"] = definitions
            spec["InferenceExecutionConfig"] = {"Mode": self.inference_execution_mode}
        name = _resolve_name("model", self.model_name, self.name_prefix, spec)
        response, created = self._ensure(name, spec)
        single = definitions[0] if self.containers is None else {}
        return {
            "model_name": name,
            "model_arn": response["ModelArn"],
            "created": created,
            "image_uri": single.get("Image"),
            "model_data_url": single.get("ModelDataUrl"),
            "containers": [
                {"hostname": d.get("ContainerHostname"), "image_uri": d["Image"], "model_data_url": d["ModelDataUrl"]}
                for d in definitions
            ],
        }

    def _validated_containers(self) -> list[dict[str, Any]]:
        """Check every argument before any AWS call; return one request dict per container."""
        if not isinstance(self.execution_role_arn, str) or not ROLE_ARN_PATTERN.match(self.execution_role_arn):
            raise ValueError(
                "execution_role_arn must be an IAM role ARN like arn:aws:iam::123456789012:role/name, "
                f"got {self.execution_role_arn!r}."
            )
        if self.containers is None:
            request = {"model_data_url": self.model_data_url, "image_uri": self.image_uri,
                       "framework": self.framework, "framework_version": self.framework_version,
                       "environment": self.environment}
            self._check_container("", request)
            return [request]
        single = {"model_data_url": self.model_data_url, "image_uri": self.image_uri, "framework": self.framework,
                  "environment": self.environment, "multi_model": self.multi_model}
        given = sorted(key for key, value in single.items() if value)
        if given:
            raise ValueError(f"Pass containers, or {', '.join(given)} for a single container, not both.")
        return self._validated_container_list()

    def _validated_container_list(self) -> list[dict[str, Any]]:
        if not isinstance(self.containers, list | tuple) or not 1 <= len(self.containers) <= MAX_CONTAINERS:
            raise ValueError(f"containers must be a list of 1 to {MAX_CONTAINERS} container dicts, "
                             f"got {self.containers!r}.")
        if self.inference_execution_mode not in INFERENCE_EXECUTION_MODES:
            raise ValueError(f"inference_execution_mode must be Serial or Direct, got {self.inference_execution_mode!r}.")
        requests = []
        for index, container in enumerate(self.containers):
            field = f"containers[{index}]"
            if not isinstance(container, Mapping) or not set(container) <= CONTAINER_FIELDS:
                raise ValueError(f"{field} must be a dict with keys among {', '.join(sorted(CONTAINER_FIELDS))}, "
                                 f"got {container!r}.")
            if container.get("hostname") is not None:
                check_resource_name(f"{field}.hostname", container["hostname"])
            elif self.inference_execution_mode == "Direct":
                raise ValueError(f"{field} needs a hostname: with inference_execution_mode Direct each request "
                                 "names its container (TargetContainerHostname).")
            self._check_container(f"{field}.", container)
            requests.append(dict(container))
        hostnames = [request["hostname"] for request in requests if request.get("hostname")]
        if len(set(hostnames)) != len(hostnames):
            raise ValueError(f"containers: hostnames must be unique, got {hostnames}.")
        return requests

    def _check_container(self, field: str, request: Mapping[str, Any]) -> None:
        url = request.get("model_data_url")
        if self.multi_model:
            if not isinstance(url, str) or not url.startswith("s3://") or not url.endswith("/"):
                raise ValueError(f"{field}model_data_url must be the s3:// prefix (ending in /) of the multi-model "
                                 f"archives, got {url!r}.")
        elif not isinstance(url, str) or not url.startswith("s3://"):
            raise ValueError(f"{field}model_data_url must be an s3:// URI of model.tar.gz, got {url!r}.")
        image_uri, framework = request.get("image_uri"), request.get("framework")
        if bool(image_uri) == bool(framework):
            raise ValueError(
                f"Pass either {field}image_uri or {field}framework (+ framework_version), not both or neither; "
                f"got image_uri={image_uri!r}, framework={framework!r}."
            )
        if framework and not request.get("framework_version"):
            raise ValueError(f"{field}framework {framework!r} needs framework_version (e.g. '1.2-1' for sklearn).")
        environment = request.get("environment") or {}
        if not isinstance(environment, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in environment.items()
        ):
            raise TypeError(f"{field}environment must map strings to strings, got {environment!r}.")

    def _container_definition(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """A ``ContainerDefinition`` (keys only when set, so a single model's spec stays what it always was)."""
        definition: dict[str, Any] = {
            "Image": request.get("image_uri") or self._framework_image(request["framework"],
                                                                      request["framework_version"]),
            "ModelDataUrl": request["model_data_url"],
            "Environment": dict(request.get("environment") or {}),
        }
        if request.get("hostname"):
            definition["ContainerHostname"] = request["hostname"]
        if self.multi_model:
            definition["Mode"] = "MultiModel"
        return definition

    def _framework_image(self, framework: str, framework_version: str) -> str:
        # The SageMaker SDK takes seconds to import: only pay for it when a framework image is asked for.
        from sagemaker.core import image_uris

        region = self.region_name or self.hook.conn_region_name
        try:
            image_uri = image_uris.retrieve(
                framework,
                region=region,
                version=framework_version,
                instance_type=self.image_instance_type,
                image_scope="inference",
            )
        except ValueError as error:
            raise ValueError(
                f"Cannot resolve an inference image for framework={framework!r}, "
                f"framework_version={framework_version!r} in {region}: {error}. "
                "Fix the framework/version, or pass image_uri instead."
            ) from error
        self.log.info("Resolved %s %s to %s", framework, framework_version, image_uri)
        return image_uri

    def _describe(self, name: str) -> dict | None:
        return self.hook.describe_or_none("model", name)

    def _create(self, name: str, spec: dict, tags: list[dict[str, str]]) -> dict:
        return self.hook.conn.create_model(ModelName=name, Tags=tags, **spec)


class EnsureEndpointConfigOperator(_EnsureResourceOperator):
    """
    Create a SageMaker endpoint config, or reuse it if one with the same name and spec exists.

    Returns ``{"endpoint_config_name", "endpoint_config_arn", "created", "model_names"}``.

    :param production_variants: ``ProductionVariant`` dicts as for ``CreateEndpointConfig``
        (``VariantName``, ``InstanceType``, ``InitialInstanceCount``, ``InitialVariantWeight``, ...).
        A variant without ``ModelName`` serves ``model_name``.
    :param model_name: the model for variants that name none.
    :param endpoint_config_name: the config's name. Mutually exclusive with ``name_prefix``.
    :param data_capture_config: ``DataCaptureConfig`` for CreateEndpointConfig, if any.
    :param async_inference_config: ``AsyncInferenceConfig`` for CreateEndpointConfig, if any (the
        endpoint then serves InvokeEndpointAsync, writing answers to S3).
    ``name_prefix`` (a new model name, hence a new artifact, gives a new config name) and ``tags``
    are :class:`_EnsureResourceOperator`'s.
    """

    resource_kind = "endpoint config"
    template_fields: Sequence[str] = aws_template_fields(
        *_EnsureResourceOperator.template_fields, "production_variants", "model_name", "endpoint_config_name",
        "data_capture_config", "async_inference_config",
    )
    template_fields_renderers: ClassVar[dict] = {**_EnsureResourceOperator.template_fields_renderers,
                                                 "production_variants": "json", "data_capture_config": "json",
                                                 "async_inference_config": "json"}

    @store_arguments
    def __init__(
        self,
        *,
        production_variants: list[dict[str, Any]],
        model_name: str | None = None,
        endpoint_config_name: str | None = None,
        data_capture_config: dict[str, Any] | None = None,
        async_inference_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        variants = self._validated_variants()
        check_tags(self.tags)
        spec: dict[str, Any] = {"ProductionVariants": variants}
        for key, field, value in (("DataCaptureConfig", "data_capture_config", self.data_capture_config),
                                  ("AsyncInferenceConfig", "async_inference_config", self.async_inference_config)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{field} must be a {key} dict, got {value!r}.")
            if value:
                spec[key] = dict(value)
        name = _resolve_name("endpoint_config", self.endpoint_config_name, self.name_prefix, spec)
        response, created = self._ensure(name, spec)
        return {
            "endpoint_config_name": name,
            "endpoint_config_arn": response["EndpointConfigArn"],
            "created": created,
            "model_names": sorted({variant["ModelName"] for variant in variants}),
        }

    def _validated_variants(self) -> list[dict[str, Any]]:
        if not isinstance(self.production_variants, list | tuple) or not self.production_variants:
            raise ValueError(
                "production_variants must be a non-empty list of ProductionVariant dicts, "
                f"got {self.production_variants!r}."
            )
        variants = [self._validated_variant(index, variant) for index, variant in enumerate(self.production_variants)]
        names = [variant["VariantName"] for variant in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"production_variants: VariantName values must be unique, got {names}.")
        return variants

    def _validated_variant(self, index: int, variant: Any) -> dict[str, Any]:
        field = f"production_variants[{index}]"
        if not isinstance(variant, Mapping):
            raise TypeError(f"{field} must be a ProductionVariant dict, got {variant!r}.")
        variant = dict(variant)
        variant.setdefault("ModelName", self.model_name)
        check_resource_name(f"{field}.VariantName", variant.get("VariantName"))
        check_resource_name(f"{field}.ModelName (or model_name)", variant["ModelName"])
        count = variant.get("InitialInstanceCount")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise ValueError(f"{field}.InitialInstanceCount must be an integer >= 1, got {count!r}.")
        weight = variant.get("InitialVariantWeight")
        if weight is not None and (not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0):
            raise ValueError(f"{field}.InitialVariantWeight must be a number >= 0, got {weight!r}.")
        if ("InstanceType" in variant) == ("ServerlessConfig" in variant):
            raise ValueError(f"{field} needs InstanceType (e.g. 'ml.m5.large') or ServerlessConfig (exactly one).")
        return variant

    def _describe(self, name: str) -> dict | None:
        return self.hook.describe_or_none("endpoint_config", name)

    def _create(self, name: str, spec: dict, tags: list[dict[str, str]]) -> dict:
        return self.hook.conn.create_endpoint_config(EndpointConfigName=name, Tags=tags, **spec)


# -- CreateEndpointConfig's request, from a pipeline file's endpoint section -------------------------


def endpoint_config_requests(endpoint: EndpointConfig) -> dict[str, Any]:
    """:class:`EnsureEndpointConfigOperator`'s ``production_variants``, ``data_capture_config`` and
    ``async_inference_config`` for a pipeline file's endpoint (the variants name no model: the
    operator's ``model_name`` serves them)."""
    capture, asynchronous = endpoint.data_capture, endpoint.async_inference
    return {
        "production_variants": [production_variant_request(variant) for variant in endpoint.variants],
        "data_capture_config": data_capture_request(capture) if capture else None,
        "async_inference_config": async_inference_request(asynchronous) if asynchronous else None,
    }


def production_variant_request(variant: VariantConfig) -> dict[str, Any]:
    """The ``ProductionVariant`` dict for CreateEndpointConfig (ModelName is added by the operator)."""
    if variant.serverless is not None:
        serverless = variant.serverless
        return {
            "VariantName": variant.name,
            "ServerlessConfig": {"MemorySizeInMB": serverless.memory_size_mb,
                                 "MaxConcurrency": serverless.max_concurrency,
                                 **({"ProvisionedConcurrency": serverless.provisioned_concurrency}
                                    if serverless.provisioned_concurrency else {})},
            "InitialVariantWeight": variant.weight,
        }
    return {
        "VariantName": variant.name,
        "InstanceType": variant.instance_type,
        "InitialInstanceCount": variant.instance_count,
        "InitialVariantWeight": variant.weight,
    }


def data_capture_request(capture: DataCaptureConfig) -> dict[str, Any]:
    """The ``DataCaptureConfig`` for CreateEndpointConfig."""
    return {
        "EnableCapture": capture.enabled,
        "InitialSamplingPercentage": capture.sampling_percentage,
        "DestinationS3Uri": capture.destination_s3_uri,
        "CaptureOptions": [{"CaptureMode": CAPTURE_MODES[mode]} for mode in capture.capture],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": list(capture.csv_content_types),
            "JsonContentTypes": list(capture.json_content_types),
        },
    }


def async_inference_request(config: AsyncInferenceConfig) -> dict[str, Any]:
    """The ``AsyncInferenceConfig`` for CreateEndpointConfig."""
    output: dict[str, Any] = {"S3OutputPath": config.output_path, "S3FailurePath": config.failure_path}
    topics = {"SuccessTopic": config.success_topic, "ErrorTopic": config.error_topic}
    if any(topics.values()):
        output["NotificationConfig"] = {key: value for key, value in topics.items() if value}
    request: dict[str, Any] = {"OutputConfig": output}
    if config.max_concurrent_invocations_per_instance is not None:
        request["ClientConfig"] = {
            "MaxConcurrentInvocationsPerInstance": config.max_concurrent_invocations_per_instance
        }
    return request
