"""Idempotent SageMaker operators: ensure a model and an endpoint config, deploy an endpoint, set variant weights.

Each operator converges: a re-run after success does nothing, a re-run after a failure picks up
where the endpoint is. Names are either given or derived from a prefix plus a hash of the spec,
so "same name" implies "same spec" and a changed model flows into a new config and an update.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sagemaker_ops.endpoint_plan import TRANSITIONAL_STATUSES, Action, plan_next_step
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook
from sagemaker_ops.specs import check_resource_name, derive_name, spec_differences
from sagemaker_ops.triggers.sagemaker import (
    ENDPOINT_STATUS_QUERIES,
    EndpointDeletedTrigger,
    EndpointSettledTrigger,
)
from sagemaker_ops.variant_weights import (
    WeightUpdate,
    check_targets,
    current_weights,
    next_update,
    traffic_shares,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
DEFAULT_IMAGE_INSTANCE_TYPE = "ml.m5.large"
# CreateModel: a model holds at most 15 containers, run Serial (an inference pipeline) or Direct.
MAX_CONTAINERS = 15
INFERENCE_EXECUTION_MODES = ("Serial", "Direct")
CONTAINER_FIELDS = frozenset({"hostname", "model_data_url", "image_uri", "framework", "framework_version",
                              "environment"})


class ResourceSpecConflict(AirflowFailException):
    """A resource exists under the requested name with a different spec (retrying cannot help)."""


class EndpointDeploymentError(AirflowException):
    """The endpoint did not end InService on the target config."""


def _aws_tags(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": str(key), "Value": str(value)} for key, value in sorted((tags or {}).items())]


def _check_tags(tags: Any) -> None:
    if tags is not None and not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a mapping of tag key to value, got {type(tags).__name__}.")


def _is_already_exists(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Message", "").startswith("Cannot create already existing")


def _resolve_name(kind: str, name: str | None, name_prefix: str | None, spec: dict) -> str:
    """Use the explicit ``<kind>_name``, or derive ``<name_prefix>-<spec hash>``; exactly one is allowed."""
    if (name is None) == (name_prefix is None):
        raise ValueError(f"Pass exactly one of {kind}_name or name_prefix (got both or neither).")
    if name is not None:
        return check_resource_name(f"{kind}_name", name)
    if not isinstance(name_prefix, str) or not name_prefix:
        raise ValueError(f"name_prefix must be a non-empty string, got {name_prefix!r}.")
    return derive_name(name_prefix, spec)


class _EnsureResourceOperator(AwsBaseOperator[SageMakerOpsHook]):
    """Describe, then create if missing; same name + same spec is reused, a different spec is an error."""

    aws_hook_class = SageMakerOpsHook
    resource_kind: ClassVar[str]  # "model", "endpoint config": for messages

    def _ensure(self, name: str, spec: dict[str, Any], tags: Mapping[str, str] | None) -> tuple[dict, bool]:
        """Return (description or create response, created?)."""
        existing = self._describe(name)
        if existing is None:
            self.log.info("Creating %s %s", self.resource_kind, name)
            try:
                return self._create(name, spec, _aws_tags(tags)), True
            except ClientError as error:
                if not _is_already_exists(error):
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
    :param name_prefix: derive the name as ``<name_prefix>-<hash of the spec>``; a new artifact or
        image gives a new name.
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
    :param tags: tags for a newly created model (not compared: Describe does not return them).
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: AWS region name.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    resource_kind = "model"
    template_fields: Sequence[str] = aws_template_fields(
        "model_name",
        "name_prefix",
        "model_data_url",
        "execution_role_arn",
        "image_uri",
        "framework",
        "framework_version",
        "environment",
        "containers",
        "inference_execution_mode",
        "tags",
    )
    template_fields_renderers: ClassVar[dict] = {"environment": "json", "containers": "json", "tags": "json"}

    def __init__(
        self,
        *,
        execution_role_arn: str,
        model_data_url: str | None = None,
        model_name: str | None = None,
        name_prefix: str | None = None,
        image_uri: str | None = None,
        framework: str | None = None,
        framework_version: str | None = None,
        image_instance_type: str = DEFAULT_IMAGE_INSTANCE_TYPE,
        environment: dict[str, str] | None = None,
        multi_model: bool = False,
        containers: list[dict[str, Any]] | None = None,
        inference_execution_mode: str = "Serial",
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)  # lets downstream tasks use .output["<key>"]
        super().__init__(**kwargs)
        self.model_data_url = model_data_url
        self.execution_role_arn = execution_role_arn
        self.model_name = model_name
        self.name_prefix = name_prefix
        self.image_uri = image_uri
        self.framework = framework
        self.framework_version = framework_version
        self.image_instance_type = image_instance_type
        self.environment = environment
        self.multi_model = multi_model
        self.containers = containers
        self.inference_execution_mode = inference_execution_mode
        self.tags = tags

    def execute(self, context: Context) -> dict[str, Any]:
        requests = self._validated_containers()
        _check_tags(self.tags)
        definitions = [self._container_definition(request) for request in requests]
        spec: dict[str, Any] = {"ExecutionRoleArn": self.execution_role_arn}
        if self.containers is None:
            spec["PrimaryContainer"] = definitions[0]
        else:
            spec["Containers"] = definitions
            spec["InferenceExecutionConfig"] = {"Mode": self.inference_execution_mode}
        name = _resolve_name("model", self.model_name, self.name_prefix, spec)
        response, created = self._ensure(name, spec, self.tags)
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
        return self.hook.describe_model_or_none(name)

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
    :param name_prefix: derive the name as ``<name_prefix>-<hash of the spec>``; a new model name
        (hence a new artifact) gives a new config name.
    :param data_capture_config: ``DataCaptureConfig`` for CreateEndpointConfig, if any.
    :param async_inference_config: ``AsyncInferenceConfig`` for CreateEndpointConfig, if any (the
        endpoint then serves InvokeEndpointAsync, writing answers to S3).
    :param tags: tags for a newly created config (not compared: Describe does not return them).
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: AWS region name.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    resource_kind = "endpoint config"
    template_fields: Sequence[str] = aws_template_fields(
        "production_variants",
        "model_name",
        "endpoint_config_name",
        "name_prefix",
        "data_capture_config",
        "async_inference_config",
        "tags",
    )
    template_fields_renderers: ClassVar[dict] = {
        "production_variants": "json",
        "data_capture_config": "json",
        "async_inference_config": "json",
        "tags": "json",
    }

    def __init__(
        self,
        *,
        production_variants: list[dict[str, Any]],
        model_name: str | None = None,
        endpoint_config_name: str | None = None,
        name_prefix: str | None = None,
        data_capture_config: dict[str, Any] | None = None,
        async_inference_config: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)  # lets downstream tasks use .output["<key>"]
        super().__init__(**kwargs)
        self.production_variants = production_variants
        self.model_name = model_name
        self.endpoint_config_name = endpoint_config_name
        self.name_prefix = name_prefix
        self.data_capture_config = data_capture_config
        self.async_inference_config = async_inference_config
        self.tags = tags

    def execute(self, context: Context) -> dict[str, Any]:
        variants = self._validated_variants()
        _check_tags(self.tags)
        spec: dict[str, Any] = {"ProductionVariants": variants}
        for key, field, value in (("DataCaptureConfig", "data_capture_config", self.data_capture_config),
                                  ("AsyncInferenceConfig", "async_inference_config", self.async_inference_config)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{field} must be a {key} dict, got {value!r}.")
            if value:
                spec[key] = dict(value)
        name = _resolve_name("endpoint_config", self.endpoint_config_name, self.name_prefix, spec)
        response, created = self._ensure(name, spec, self.tags)
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
        return self.hook.describe_endpoint_config_or_none(name)

    def _create(self, name: str, spec: dict, tags: list[dict[str, str]]) -> dict:
        return self.hook.conn.create_endpoint_config(EndpointConfigName=name, Tags=tags, **spec)


class _EndpointWaitingOperator(AwsBaseOperator[SageMakerOpsHook]):
    """
    Waits on one endpoint with the waiters of ``sagemaker_ops/waiters/sagemaker.json``: in the
    worker, or deferred to the triggerer (the same waiter name on both paths). The deferred path
    resumes in ``execute_complete`` with the ``actions_taken`` it carried.
    """

    aws_hook_class = SageMakerOpsHook
    endpoint_name: str
    # A guard against something else changing the endpoint under us forever.
    max_steps = 12

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 120,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)  # lets downstream tasks use .output["<key>"]
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.deferrable = deferrable

    def execute(self, context: Context) -> dict[str, Any]:
        self._validate()
        return self._converge(actions_taken=[], wait_error=None)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after a deferred wait: judge the endpoint's state again and carry on converging."""
        event = validate_execute_complete_event(event)
        deployment = event.get("deployment") or {}
        wait_error = None if event.get("status") == "success" else str(event.get("message", event))
        self._validate()
        return self._converge(actions_taken=list(deployment.get("actions_taken", [])), wait_error=wait_error)

    def _validate(self) -> None:
        raise NotImplementedError

    def _converge(self, actions_taken: list[str], wait_error: str | None) -> dict[str, Any]:
        """Take the next step toward the target state, waiting (or deferring) between steps."""
        raise NotImplementedError

    def _check_waiter_arguments(self) -> None:
        for field in ("waiter_delay", "waiter_max_attempts"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field} must be an integer >= 1, got {value!r}.")

    def _defer(self, deleting: bool, actions_taken: list[str]) -> None:
        trigger_class = EndpointDeletedTrigger if deleting else EndpointSettledTrigger
        self.defer(
            trigger=trigger_class(
                endpoint_name=self.endpoint_name,
                actions_taken=actions_taken,
                waiter_delay=self.waiter_delay,
                waiter_max_attempts=self.waiter_max_attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
        )

    def _wait(self, waiter_name: str) -> str | None:
        """Wait synchronously; return None on success, else the waiter's error (judged by the next plan)."""
        try:
            wait(
                waiter=self.hook.get_waiter(waiter_name),
                waiter_delay=self.waiter_delay,
                waiter_max_attempts=self.waiter_max_attempts,
                args={"EndpointName": self.endpoint_name},
                failure_message=f"{waiter_name} failed for endpoint {self.endpoint_name}",
                status_message=f"Status of endpoint {self.endpoint_name}",
                status_args=ENDPOINT_STATUS_QUERIES,
            )
        except AirflowException as error:
            return str(error)
        return None


class DeployEndpointOperator(_EndpointWaitingOperator):
    """
    Make an endpoint serve a given endpoint config: create it, update it, or leave it alone.

    The operator converges from whatever state the endpoint is in:

    * missing: CreateEndpoint, wait;
    * ``Creating``/``Updating``/...: wait, then decide again;
    * ``InService`` on the target config: nothing to do;
    * ``InService`` (or ``UpdateRollbackFailed``) on another config: UpdateEndpoint, wait;
    * ``Failed``: AWS only allows DeleteEndpoint, so with ``replace_failed`` delete, wait until
      gone, create again.

    Success means ``InService`` on ``endpoint_config_name``; anything else fails with the
    endpoint's ``FailureReason`` (an update that was rolled back is a failure, not a success).
    The synchronous and the deferred path wait with the same waiters (``EndpointSettled``,
    ``EndpointDeletionComplete`` in ``sagemaker_ops/waiters/sagemaker.json``).

    Returns ``{"endpoint_name", "endpoint_arn", "endpoint_config_name", "endpoint_status",
    "actions_taken", "changed"}``.

    :param endpoint_name: the endpoint to deploy.
    :param endpoint_config_name: the config the endpoint must serve.
    :param replace_failed: delete and re-create an endpoint found ``Failed`` (logged).
    :param update_endpoint_kwargs: extra UpdateEndpoint arguments, e.g. ``DeploymentConfig`` or
        ``RetainAllVariantProperties``.
    :param tags: tags for a newly created endpoint.
    :param wait_for_completion: wait for the create/update this task starts. Waits that convergence
        needs before it can act (an endpoint already updating, a deletion) always happen.
    :param waiter_delay: seconds between two DescribeEndpoint calls while waiting.
    :param waiter_max_attempts: how many DescribeEndpoint calls before giving up.
    :param deferrable: wait in the triggerer instead of the worker.
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: AWS region name.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "endpoint_config_name", "update_endpoint_kwargs", "tags"
    )
    template_fields_renderers: ClassVar[dict] = {"update_endpoint_kwargs": "json", "tags": "json"}
    ui_color = "#c8e6c9"

    def __init__(
        self,
        *,
        endpoint_name: str,
        endpoint_config_name: str,
        replace_failed: bool = True,
        update_endpoint_kwargs: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.endpoint_config_name = endpoint_config_name
        self.replace_failed = replace_failed
        self.update_endpoint_kwargs = update_endpoint_kwargs
        self.tags = tags

    def _validate(self) -> None:
        check_resource_name("endpoint_name", self.endpoint_name)
        check_resource_name("endpoint_config_name", self.endpoint_config_name)
        if self.update_endpoint_kwargs is not None and not isinstance(self.update_endpoint_kwargs, Mapping):
            raise TypeError(f"update_endpoint_kwargs must be a dict, got {self.update_endpoint_kwargs!r}.")
        _check_tags(self.tags)
        self._check_waiter_arguments()

    def _converge(self, actions_taken: list[str], wait_error: str | None) -> dict[str, Any]:
        """Describe, plan, act, wait; repeat until the plan says done (or fail)."""
        for _ in range(self.max_steps):
            endpoint = self.hook.describe_endpoint_or_none(self.endpoint_name)
            step = plan_next_step(
                endpoint,
                endpoint_name=self.endpoint_name,
                target_config=self.endpoint_config_name,
                replace_failed=self.replace_failed,
                actions_taken=actions_taken,
            )
            self.log.info(step.reason)
            if step.action is Action.DONE:
                return self._result(endpoint, actions_taken)
            if step.action is Action.FAIL:
                raise EndpointDeploymentError(step.reason)
            if step.action in (Action.WAIT_SETTLED, Action.WAIT_DELETED) and wait_error:
                raise EndpointDeploymentError(f"{step.reason} Gave up waiting: {wait_error}")
            if not self._act(step.action, actions_taken):
                wait_error = None
                continue  # lost a race (already exists / in progress): look again
            if not self.wait_for_completion and step.action in (Action.CREATE, Action.UPDATE):
                return self._result(self.hook.describe_endpoint_or_none(self.endpoint_name), actions_taken)
            deleting = step.action in (Action.DELETE, Action.WAIT_DELETED)
            if self.deferrable:
                self._defer(deleting, actions_taken)
            wait_error = self._wait("EndpointDeletionComplete" if deleting else "EndpointSettled")
        raise EndpointDeploymentError(
            f"Endpoint {self.endpoint_name} did not converge in {self.max_steps} steps (actions {actions_taken})."
        )

    def _act(self, action: Action, actions_taken: list[str]) -> bool:
        """Start ``action`` (waits start nothing). Return False if AWS says someone else got there first."""
        if action in (Action.WAIT_SETTLED, Action.WAIT_DELETED):
            return True
        try:
            if action is Action.CREATE:
                self.hook.conn.create_endpoint(
                    EndpointName=self.endpoint_name,
                    EndpointConfigName=self.endpoint_config_name,
                    Tags=_aws_tags(self.tags),
                )
            elif action is Action.UPDATE:
                self.hook.conn.update_endpoint(
                    EndpointName=self.endpoint_name,
                    EndpointConfigName=self.endpoint_config_name,
                    **dict(self.update_endpoint_kwargs or {}),
                )
            elif action is Action.DELETE:
                self.hook.delete_endpoint(self.endpoint_name)
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if _is_already_exists(error) or "in-progress" in message:
                self.log.info("%s raced with another change (%s); describing again.", action.value, message)
                return False
            raise
        actions_taken.append(action.value)
        return True

    def _result(self, endpoint: dict | None, actions_taken: list[str]) -> dict[str, Any]:
        endpoint = endpoint or {}
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_arn": endpoint.get("EndpointArn"),
            "endpoint_config_name": endpoint.get("EndpointConfigName"),
            "endpoint_status": endpoint.get("EndpointStatus"),
            "actions_taken": list(actions_taken),
            "changed": bool(actions_taken),
        }


class VariantWeightsError(AirflowException):
    """The endpoint did not end InService at the wanted weights and instance counts."""


class UpdateVariantWeightsOperator(_EndpointWaitingOperator):
    """
    Set the traffic weights (and optionally instance counts) of an endpoint's variants in place.

    Calls UpdateEndpointWeightsAndCapacities (no new endpoint config, no redeployment), then waits
    until the endpoint is ``InService`` again with the same ``EndpointSettled`` waiter as
    :class:`DeployEndpointOperator`, in the worker or deferred. It converges: variants already at
    the wanted values are left out of the call, and an endpoint already there is left alone. AWS
    changes the weights of several variants, or the capacity of one, per call, so weight changes go
    in one call and each instance-count change in its own (see
    :mod:`sagemaker_ops.variant_weights`). An endpoint that is ``Updating`` is waited for first; a
    change that does not take effect fails with the endpoint's ``FailureReason``.

    Returns ``{"endpoint_name", "weights", "instance_counts", "traffic_shares", "actions_taken",
    "changed"}`` (weights, counts and shares are the endpoint's current ones, per variant).

    :param endpoint_name: the endpoint whose variants change.
    :param weights: variant name to weight (>= 0), e.g. ``{"Champion": 1, "Challenger": 9}``.
        Traffic share is weight over the sum of weights. Variants not named keep theirs.
    :param instance_counts: variant name to instance count (>= 1), for instance-based variants.
    :param wait_for_completion: wait until each change is in service.
    :param waiter_delay: seconds between two DescribeEndpoint calls while waiting.
    :param waiter_max_attempts: how many DescribeEndpoint calls before giving up.
    :param deferrable: wait in the triggerer instead of the worker.
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: AWS region name.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "weights", "instance_counts")
    template_fields_renderers: ClassVar[dict] = {"weights": "json", "instance_counts": "json"}
    ui_color = "#ffe0b2"

    # Weights take one call, instance counts one call each; more steps (max_steps) mean something else
    # is changing the endpoint.

    def __init__(
        self,
        *,
        endpoint_name: str,
        weights: dict[str, float] | None = None,
        instance_counts: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.weights = weights
        self.instance_counts = instance_counts

    def _validate(self) -> None:
        check_resource_name("endpoint_name", self.endpoint_name)
        if not self.weights and not self.instance_counts:
            raise ValueError("Pass weights and/or instance_counts (variant name to value); both are empty.")
        for field, minimum in (("weights", 0), ("instance_counts", 1)):
            values = getattr(self, field) or {}
            if not isinstance(values, Mapping):
                raise TypeError(f"{field} must map variant names to numbers, got {values!r}.")
            for name, value in values.items():
                check_resource_name(f"{field} variant name", name)
                wanted_type = int if field == "instance_counts" else int | float
                if not isinstance(value, wanted_type) or isinstance(value, bool) or value < minimum:
                    kind = "an integer" if field == "instance_counts" else "a number"
                    raise ValueError(f"{field}[{name!r}] must be {kind} >= {minimum}, got {value!r}.")
        self._check_waiter_arguments()

    def _converge(self, actions_taken: list[str], wait_error: str | None) -> dict[str, Any]:
        """Describe, decide, call, wait; repeat until the endpoint serves the wanted weights."""
        for _ in range(self.max_steps):
            endpoint = self.hook.describe_endpoint_or_none(self.endpoint_name)
            if endpoint is None:
                raise VariantWeightsError(f"Endpoint {self.endpoint_name} does not exist; deploy it first.")
            status, reason = endpoint["EndpointStatus"], endpoint.get("FailureReason") or "no FailureReason given"
            if status in TRANSITIONAL_STATUSES:
                if wait_error:
                    raise VariantWeightsError(f"Endpoint {self.endpoint_name} is still {status}: {wait_error}")
                self.log.info("Endpoint %s is %s; waiting for it to settle.", self.endpoint_name, status)
                wait_error = self._settle(actions_taken)
                continue
            if status != "InService":
                raise VariantWeightsError(
                    f"Endpoint {self.endpoint_name} is {status} ({reason}); variant weights change only on an "
                    "InService endpoint."
                )
            check_targets(endpoint, self.weights, self.instance_counts)
            update = next_update(endpoint, self.weights, self.instance_counts)
            if update is None:
                self.log.info("Endpoint %s serves the wanted weights %s.", self.endpoint_name,
                              current_weights(endpoint))
                return self._result(endpoint, actions_taken)
            if actions_taken and actions_taken[-1] == update.description:
                raise VariantWeightsError(
                    f"UpdateEndpointWeightsAndCapacities ({update.description}) did not take effect on endpoint "
                    f"{self.endpoint_name}: {reason}."
                )
            if not self._call(update):
                continue  # the endpoint started updating under us: wait for it, then decide again
            actions_taken.append(update.description)
            if not self.wait_for_completion:
                return self._result(self.hook.describe_endpoint_or_none(self.endpoint_name) or {}, actions_taken)
            wait_error = self._settle(actions_taken)
        raise VariantWeightsError(
            f"Endpoint {self.endpoint_name} did not converge in {self.max_steps} steps (actions {actions_taken})."
        )

    def _call(self, update: WeightUpdate) -> bool:
        self.log.info("Endpoint %s: UpdateEndpointWeightsAndCapacities %s", self.endpoint_name, update.description)
        try:
            self.hook.conn.update_endpoint_weights_and_capacities(
                EndpointName=self.endpoint_name, DesiredWeightsAndCapacities=update.desired
            )
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if "in-progress" in message:
                self.log.info("Endpoint %s is being changed by someone else (%s).", self.endpoint_name, message)
                return False
            raise
        return True

    def _settle(self, actions_taken: list[str]) -> str | None:
        if self.deferrable:
            self._defer(False, actions_taken)
        return self._wait("EndpointSettled")

    def _result(self, endpoint: Mapping[str, Any], actions_taken: list[str]) -> dict[str, Any]:
        variants = endpoint.get("ProductionVariants", [])
        weights = current_weights(endpoint)
        return {
            "endpoint_name": self.endpoint_name,
            "weights": weights,
            "instance_counts": {v["VariantName"]: v["CurrentInstanceCount"] for v in variants
                                if "CurrentInstanceCount" in v},
            "traffic_shares": {name: round(share, 6) for name, share in traffic_shares(weights).items()},
            "actions_taken": list(actions_taken),
            "changed": bool(actions_taken),
        }
