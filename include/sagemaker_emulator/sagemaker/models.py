"""SageMaker control-plane state: pure Python, no HTTP, no processes.

Resources are plain records; endpoints move along an explicit state machine. The backend validates
requests against AWS's rules and hands the work of provisioning to a ``Provisioner`` (the deployment
controller), which reports back through the ``endpoint_*`` transition methods.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from sagemaker_emulator.sagemaker.endpoint_features import describe_features, validate_features
from sagemaker_emulator.sagemaker.shadows import refuse_guarded_with_shadows, shadow_variants, validate_shadow_variants
from sagemaker_emulator.sagemaker.guardrails import DeploymentPlan, RollingPlan, plan_deployment
from sagemaker_emulator.s3_uri import is_s3_uri
from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_emulator.sagemaker.listing import page_results
from sagemaker_emulator.sagemaker.tags import Tagging, arn_kind_and_name
from sagemaker_emulator.sagemaker.typed_requests import (ContainerDefinition, CreateEndpointRequest,
                                                         DeploymentConfig, DesiredWeightAndCapacity,
                                                         EndpointConfigSpec, ModelSpec, ProductionVariant,
                                                         UpdateEndpointRequest,
                                                         UpdateEndpointWeightsAndCapacitiesRequest)
from sagemaker_emulator.sagemaker.variants import validate_capacity_change, validate_endpoint_config


class Status:
    CREATING = "Creating"
    IN_SERVICE = "InService"
    UPDATING = "Updating"
    DELETING = "Deleting"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"  # a rolling deployment's rollback failed: old and new serve


IN_PROGRESS = {Status.CREATING, Status.UPDATING, Status.DELETING}

# Declared transitions; anything else is a bug in the controller, not a user error.
TRANSITIONS = {
    Status.CREATING: {Status.IN_SERVICE, Status.FAILED, Status.DELETING},
    Status.IN_SERVICE: {Status.UPDATING, Status.DELETING},
    Status.UPDATING: {Status.IN_SERVICE, Status.DELETING, Status.UPDATE_ROLLBACK_FAILED},
    Status.FAILED: {Status.DELETING},
    Status.UPDATE_ROLLBACK_FAILED: {Status.DELETING},
    Status.DELETING: {Status.FAILED},  # the deletion itself failed; DeleteEndpoint may be retried
}


class Provisioner(Protocol):
    """What the backend asks of the runtime; implemented by the deployment controller."""

    def create(self, endpoint: "Endpoint", config: "EndpointConfig", models: dict[str, "Model"]) -> None: ...

    def update(self, endpoint: "Endpoint", config: "EndpointConfig", models: dict[str, "Model"],
               plan: DeploymentPlan | RollingPlan | None = None) -> None: ...

    def existing_alarms(self, names: list[str]) -> set[str]:
        """Which of these CloudWatch alarms exist (AutoRollbackConfiguration must name existing ones)."""
        ...

    def delete(self, endpoint: "Endpoint") -> None: ...

    def update_variants(self, endpoint: "Endpoint", changes: dict[str, DesiredWeightAndCapacity]) -> None: ...

    def serving_counts(self, endpoint: "Endpoint") -> dict[str, int]:
        """Instances serving now per variant: they die and are replaced behind the state's back."""


def arn(region: str, account: str, kind: str, name: str) -> str:
    # AWS lowercases the resource name in ARNs.
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


@dataclass
class _Resource:
    """A resource that is its create request, described back with its ARN and creation time."""

    ARN_MEMBER: ClassVar[str]
    name: str
    arn: str
    spec: Any
    created: float = field(default_factory=time.time)
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {**self.spec.to_aws(), self.ARN_MEMBER: self.arn, "CreationTime": self.created}


@dataclass
class Model(_Resource):
    ARN_MEMBER = "ModelArn"
    spec: ModelSpec

    @property
    def containers(self) -> list[ContainerDefinition]:
        return self.spec.all_containers


@dataclass
class EndpointConfig(_Resource):
    ARN_MEMBER = "EndpointConfigArn"
    spec: EndpointConfigSpec

    @property
    def variants(self) -> list[ProductionVariant]:
        return self.spec.production_variants


@dataclass
class VariantSummary:
    """What DescribeEndpoint shows per production variant."""

    name: str
    image: str
    current_weight: float
    desired_weight: float
    current_count: int
    desired_count: int
    image_resolved_at: float = field(default_factory=time.time)
    # A deployment's green variants: [{Status, StatusMessage, StartTime}] (Creating, ActivatingTraffic, Baking)
    variant_status: list[dict[str, Any]] | None = None
    instance_type: str | None = None  # shown in PendingDeploymentSummary only
    # Serverless variants show their ServerlessConfig instead of instance counts.
    current_serverless: dict[str, Any] | None = None
    desired_serverless: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        out = self._describe()
        if self.variant_status is not None:
            out["VariantStatus"] = copy.deepcopy(self.variant_status)
        if self.instance_type is not None:
            out["InstanceType"] = self.instance_type
        if self.desired_serverless is not None:
            del out["CurrentInstanceCount"], out["DesiredInstanceCount"]
            out["DesiredServerlessConfig"] = self.desired_serverless
            if self.current_serverless is not None:
                out["CurrentServerlessConfig"] = self.current_serverless
        return out

    def _describe(self) -> dict[str, Any]:
        return {
            "VariantName": self.name,
            "DeployedImages": [{
                "SpecifiedImage": self.image,
                "ResolvedImage": self.image,
                "ResolutionTime": self.image_resolved_at,
            }],
            "CurrentWeight": self.current_weight,
            "DesiredWeight": self.desired_weight,
            "CurrentInstanceCount": self.current_count,
            "DesiredInstanceCount": self.desired_count,
        }


@dataclass
class Endpoint:
    name: str
    arn: str
    config_name: str
    status: str = Status.CREATING
    failure_reason: str | None = None
    variants: list[VariantSummary] = field(default_factory=list)
    pending_config_name: str | None = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    # DescribeEndpoint's DataCaptureConfig and AsyncInferenceConfig of the config in service (and the next one)
    features: dict[str, Any] = field(default_factory=dict)
    pending_features: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    deployment_config: DeploymentConfig | None = None  # the last one given (LastDeploymentConfig)
    pending: PendingDeployment | None = None  # a guarded deployment in progress

    def move_to(self, status: str) -> None:
        if status not in TRANSITIONS[self.status]:
            raise RuntimeError(f"illegal endpoint transition {self.status} -> {status} for {self.name}")
        self.status = status
        self.modified = time.time()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "EndpointConfigName": self.config_name,
            "EndpointStatus": self.status,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        }
        if self.variants:
            out["ProductionVariants"] = [v.describe() for v in self.variants]
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        out.update(self.features)
        if self.deployment_config is not None:
            out["LastDeploymentConfig"] = self.deployment_config.to_aws()
        if self.pending is not None:
            out["PendingDeploymentSummary"] = self.pending.describe()
        return out


@dataclass
class PendingDeployment:
    """DescribeEndpoint's PendingDeploymentSummary: the green side of a guarded deployment."""

    config_name: str
    variants: list[VariantSummary]
    started: float = field(default_factory=time.time)

    def progress(self, status: str, message: str, provisioned: bool = True) -> None:
        """Every green variant enters ``status`` (Creating, ActivatingTraffic, Baking) with AWS's message."""
        for variant in self.variants:
            variant.variant_status = [{"Status": status, "StatusMessage": message, "StartTime": time.time()}]
            variant.current_count = variant.desired_count if provisioned else 0

    def describe(self) -> dict[str, Any]:
        return {"EndpointConfigName": self.config_name, "StartTime": self.started,
                "ProductionVariants": [v.describe() for v in self.variants]}


def desired_variants(config: EndpointConfig, models: dict[str, Model], live: bool) -> list[VariantSummary]:
    """Variant summaries for a config; ``live`` once its instances serve (Current* = Desired*)."""
    summaries = []
    for variant in config.variants:
        weight, count = variant.weight, variant.instance_count
        image = models[variant.model_name].containers[0].image or ""
        serverless = variant.serverless_config.to_aws() if variant.serverless_config else None
        summaries.append(VariantSummary(
            name=variant.variant_name, image=image,
            current_weight=weight if live else 0.0, desired_weight=weight,
            current_count=count if live else 0, desired_count=count,
            current_serverless=copy.deepcopy(serverless) if live and serverless else None,
            desired_serverless=serverless,
        ))
    return summaries


class SageMakerBackend:
    """One account and region of SageMaker resources."""

    def __init__(self, account_id: str, region: str, provisioner: Provisioner):
        self.account_id = account_id
        self.region = region
        self.provisioner = provisioner
        self.models: dict[str, Model] = {}
        self.endpoint_configs: dict[str, EndpointConfig] = {}
        self.endpoints: dict[str, Endpoint] = {}
        # Other parts of the API with state of their own (processing jobs, monitoring); see responses.py.
        self.services: list[Any] = []
        self.tagging = Tagging(self.find_by_arn)

    # -- names and lookups ------------------------------------------------------------------------

    def _arn(self, kind: str, name: str) -> str:
        return arn(self.region, self.account_id, kind, name)

    # Names are unique case-insensitively; we key by the lowercase name and keep the given case.
    def get_model(self, name: str) -> Model:
        model = self.models.get(name.lower())
        if model is None:
            raise ValidationException(f'Could not find model "{self._arn("model", name)}".')
        return model

    def get_endpoint_config(self, name: str) -> EndpointConfig:
        config = self.endpoint_configs.get(name.lower())
        if config is None:
            raise ValidationException(
                f'Could not find endpoint configuration "{self._arn("endpoint-config", name)}".')
        return config

    def get_endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name.lower())
        if endpoint is None:
            raise ValidationException(f'Could not find endpoint "{self._arn("endpoint", name)}".')
        return endpoint

    def find_by_arn(self, arn: str) -> Any:
        """The resource an ARN names, here or in one of the services (the error AWS gives if none)."""
        kind, name = arn_kind_and_name(arn)
        lookups = {"model": self.get_model, "endpoint-config": self.get_endpoint_config, "endpoint": self.get_endpoint}
        for service in self.services:
            lookups.update(service.lookups())
        if kind not in lookups:
            raise ValidationException(f'Could not find resource "{arn}": the emulator has no {kind} resources.')
        resource = lookups[kind](name)
        if resource.arn.lower() != arn.lower():  # another region or account
            raise ValidationException(f'Could not find {kind} "{arn}".')
        return resource

    def add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.tagging.add_tags(params)

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.tagging.list_tags(params)

    def delete_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.tagging.delete_tags(params)

    def _models_of(self, config: EndpointConfig) -> dict[str, Model]:
        return {v.model_name: self.get_model(v.model_name) for v in (*config.variants, *shadow_variants(config.spec))}

    # -- models -----------------------------------------------------------------------------------

    def create_model(self, spec: ModelSpec) -> dict[str, Any]:
        name = spec.model_name
        if name.lower() in self.models:
            raise ValidationException(f'Cannot create already existing model "{self._arn("model", name)}".')
        containers = spec.all_containers
        if not containers:
            raise ValidationException("Either PrimaryContainer or Containers must be provided.")
        if spec.primary_container and spec.containers:
            raise ValidationException("PrimaryContainer and Containers cannot both be specified.")
        for container in containers:
            url = container.model_data_url
            if url is not None and not is_s3_uri(url):
                raise ValidationException(
                    f"ModelDataUrl '{url}' is not a valid S3 URI: it must start with s3:// (e.g. s3://bucket/model.tar.gz).")
        _check_containers(spec)
        model = Model(name=name, arn=self._arn("model", name), spec=spec, tags=spec.tags)
        self.models[name.lower()] = model
        return {"ModelArn": model.arn}

    def describe_model(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.get_model(params["ModelName"]).describe()

    def delete_model(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self.get_model(params["ModelName"])
        del self.models[model.name.lower()]
        return {}

    def list_models(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [{"ModelName": m.name, "ModelArn": m.arn, "CreationTime": m.created} for m in self.models.values()]
        page, token = page_results(rows, params, "ModelName")
        return {"Models": page, **token}

    # -- endpoint configs -------------------------------------------------------------------------

    def create_endpoint_config(self, spec: EndpointConfigSpec) -> dict[str, Any]:
        name = spec.endpoint_config_name
        if name.lower() in self.endpoint_configs:
            raise ValidationException(
                f'Cannot create already existing endpoint configuration "{self._arn("endpoint-config", name)}".')
        names = [v.variant_name for v in spec.production_variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValidationException(f"Variant names must be unique within an endpoint configuration: {duplicates}.")
        for variant in spec.production_variants:
            if not variant.model_name:
                raise ValidationException(f"ModelName is required for production variant {variant.variant_name}.")
            self.get_model(variant.model_name)
            if not variant.serverless_config and (not variant.instance_type or variant.initial_instance_count is None):
                raise ValidationException(
                    f"InstanceType and InitialInstanceCount are required for production variant "
                    f"{variant.variant_name} (or give it a ServerlessConfig).")
        validate_endpoint_config(spec, {v.model_name: self.get_model(v.model_name) for v in spec.production_variants})
        validate_shadow_variants(spec, self.get_model)
        validate_features(spec)
        config = EndpointConfig(name=name, arn=self._arn("endpoint-config", name), spec=spec, tags=spec.tags)
        self.endpoint_configs[name.lower()] = config
        return {"EndpointConfigArn": config.arn}

    def describe_endpoint_config(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.get_endpoint_config(params["EndpointConfigName"]).describe()

    def delete_endpoint_config(self, params: dict[str, Any]) -> dict[str, Any]:
        # AWS allows deleting a config an endpoint still runs on; the endpoint keeps serving.
        config = self.get_endpoint_config(params["EndpointConfigName"])
        del self.endpoint_configs[config.name.lower()]
        return {}

    def list_endpoint_configs(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [{"EndpointConfigName": c.name, "EndpointConfigArn": c.arn, "CreationTime": c.created}
                for c in self.endpoint_configs.values()]
        page, token = page_results(rows, params, "EndpointConfigName")
        return {"EndpointConfigs": page, **token}

    # -- endpoints --------------------------------------------------------------------------------

    def create_endpoint(self, request: CreateEndpointRequest) -> dict[str, Any]:
        name = request.endpoint_name
        if name.lower() in self.endpoints:
            raise ValidationException(f'Cannot create already existing endpoint "{self._arn("endpoint", name)}".')
        config = self.get_endpoint_config(request.endpoint_config_name)
        models = self._models_of(config)
        endpoint = Endpoint(name=name, arn=self._arn("endpoint", name), config_name=config.name, tags=request.tags)
        # Stored, not used now: UpdateEndpoint(RetainDeploymentConfig=True) reuses it (AWS does the same).
        endpoint.deployment_config = request.deployment_config
        endpoint.variants = desired_variants(config, models, live=False)
        endpoint.features = describe_features(config.spec, models)
        self.endpoints[name.lower()] = endpoint
        self.provisioner.create(endpoint, copy.deepcopy(config), models)
        return {"EndpointArn": endpoint.arn}

    def describe_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.get_endpoint(params["EndpointName"])
        if endpoint.status == Status.IN_SERVICE:  # an instance that died counts only once replaced
            serving = self.provisioner.serving_counts(endpoint)
            for variant in endpoint.variants:
                if variant.desired_serverless is None and variant.name in serving:
                    variant.current_count = serving[variant.name]
        return endpoint.describe()

    def update_endpoint(self, request: UpdateEndpointRequest) -> dict[str, Any]:
        endpoint = self.get_endpoint(request.endpoint_name)
        self._require_settled(endpoint)
        if endpoint.status in (Status.FAILED, Status.UPDATE_ROLLBACK_FAILED):
            raise ValidationException(
                f'Cannot update endpoint "{endpoint.arn}" in status {endpoint.status}: '
                "delete it with DeleteEndpoint and create it again.")
        config = copy.deepcopy(self.get_endpoint_config(request.endpoint_config_name))
        models = self._models_of(config)
        if request.retain_all_variant_properties:
            _retain_variant_properties(config, endpoint, request.excluded_properties)
        deployment = self._deployment_config(endpoint, request)
        plan = None
        if deployment is not None:
            refuse_guarded_with_shadows(endpoint.features, config.spec)
            blue = {v.name: None if v.desired_serverless is not None else v.current_count for v in endpoint.variants}
            plan = plan_deployment(deployment, blue, config.variants, self.provisioner.existing_alarms)
        endpoint.move_to(Status.UPDATING)
        endpoint.failure_reason = None
        endpoint.pending_config_name = config.name
        endpoint.pending_features = describe_features(config.spec, models)
        if deployment is not None:
            endpoint.deployment_config = deployment
            endpoint.pending = PendingDeployment(config.name, _pending_variants(config, models))
        self.provisioner.update(endpoint, config, models, plan)
        return {"EndpointArn": endpoint.arn}

    @staticmethod
    def _deployment_config(endpoint: Endpoint, request: UpdateEndpointRequest) -> DeploymentConfig | None:
        if request.deployment_config is not None:
            if request.retain_deployment_config:
                raise ValidationException("Give either DeploymentConfig or RetainDeploymentConfig=true, not both.")
            return copy.deepcopy(request.deployment_config)
        if not request.retain_deployment_config:
            return None
        if endpoint.deployment_config is None:
            raise ValidationException(
                f'RetainDeploymentConfig is true but endpoint "{endpoint.arn}" has no deployment configuration to '
                "retain: give a DeploymentConfig.")
        return copy.deepcopy(endpoint.deployment_config)

    def update_endpoint_weights_and_capacities(self, request: UpdateEndpointWeightsAndCapacitiesRequest
                                               ) -> dict[str, Any]:
        """Change variant weights and instance counts in place; Desired* now, Current* once real."""
        endpoint = self.get_endpoint(request.endpoint_name)
        self._require_settled(endpoint)
        if endpoint.status in (Status.FAILED, Status.UPDATE_ROLLBACK_FAILED):
            raise ValidationException(f'Cannot update endpoint "{endpoint.arn}" in status {endpoint.status}.')
        variants = {v.name: v for v in endpoint.variants}
        changes: dict[str, DesiredWeightAndCapacity] = {}
        for desired in request.desired_weights_and_capacities:
            name = desired.variant_name
            if name not in variants:
                raise ValidationException(
                    f'The variant name "{name}" is not present in endpoint "{endpoint.arn}". '
                    f"Existing variants: {', '.join(sorted(variants))}.")
            validate_capacity_change(name, variants[name].desired_serverless, desired)
            # Asynchronous endpoints may scale to zero: their queue holds requests until capacity returns.
            if desired.desired_instance_count == 0 and "AsyncInferenceConfig" not in endpoint.features:
                raise ValidationException(
                    f"DesiredInstanceCount for variant {name} must be at least 1 for an instance-based variant.")
            changes[name] = desired
        weights = {n: _first(getattr(changes.get(n), "desired_weight", None), v.desired_weight)
                   for n, v in variants.items()}
        if not any(w > 0 for w in weights.values()):
            raise ValidationException("At least one production variant must have a DesiredWeight greater than 0.")
        endpoint.move_to(Status.UPDATING)
        endpoint.failure_reason = None
        for name, change in changes.items():
            variant = variants[name]
            variant.desired_weight = float(_first(change.desired_weight, variant.desired_weight))
            variant.desired_count = int(_first(change.desired_instance_count, variant.desired_count))
            if change.serverless_update_config is not None:
                variant.desired_serverless = {**variant.desired_serverless, **change.serverless_update_config.to_aws()}
        self.provisioner.update_variants(endpoint, changes)
        return {"EndpointArn": endpoint.arn}

    def delete_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.get_endpoint(params["EndpointName"])
        if endpoint.status == Status.DELETING:
            return {}  # already on its way out; deleting twice converges
        # Design choice: a Creating/Updating endpoint may be deleted; in-flight provisioning is cancelled.
        endpoint.move_to(Status.DELETING)
        self.provisioner.delete(endpoint)
        return {}

    def list_endpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [{"EndpointName": e.name, "EndpointArn": e.arn, "CreationTime": e.created,
                 "LastModifiedTime": e.modified, "EndpointStatus": e.status} for e in self.endpoints.values()]
        page, token = page_results(rows, params, "EndpointName", equal={"StatusEquals": "EndpointStatus"})
        return {"Endpoints": page, **token}

    def _require_settled(self, endpoint: Endpoint) -> None:
        if endpoint.status in IN_PROGRESS:
            raise ValidationException(f'Cannot update in-progress endpoint "{endpoint.arn}".')

    # -- transitions reported by the provisioner --------------------------------------------------

    def endpoint_created(self, endpoint: Endpoint, variants: list[VariantSummary]) -> None:
        endpoint.move_to(Status.IN_SERVICE)
        endpoint.variants = variants

    def endpoint_create_failed(self, endpoint: Endpoint, reason: str) -> None:
        endpoint.move_to(Status.FAILED)
        endpoint.failure_reason = reason

    def endpoint_updated(self, endpoint: Endpoint, config_name: str, variants: list[VariantSummary]) -> None:
        endpoint.move_to(Status.IN_SERVICE)
        endpoint.config_name = config_name
        endpoint.pending_config_name = None
        endpoint.pending = None
        endpoint.features = endpoint.pending_features
        endpoint.variants = variants

    def endpoint_update_failed(self, endpoint: Endpoint, reason: str) -> None:
        # The old fleet never stopped serving: the endpoint returns to InService on its old config.
        endpoint.move_to(Status.IN_SERVICE)
        endpoint.pending_config_name = None
        endpoint.pending = None
        endpoint.failure_reason = reason

    def endpoint_rollback_failed(self, endpoint: Endpoint, reason: str) -> None:
        # Both configs' instances serve: the pending summary keeps describing the new one.
        endpoint.move_to(Status.UPDATE_ROLLBACK_FAILED)
        endpoint.failure_reason = reason

    def endpoint_variants_updated(self, endpoint: Endpoint) -> None:
        endpoint.move_to(Status.IN_SERVICE)
        for variant in endpoint.variants:
            variant.current_weight, variant.current_count = variant.desired_weight, variant.desired_count
            variant.current_serverless = variant.desired_serverless

    def endpoint_variants_update_failed(self, endpoint: Endpoint, reason: str) -> None:
        # Capacity that could not start is not pretended: Desired* fall back to what serves.
        endpoint.move_to(Status.IN_SERVICE)
        endpoint.failure_reason = reason
        for variant in endpoint.variants:
            variant.desired_weight, variant.desired_count = variant.current_weight, variant.current_count
            variant.desired_serverless = variant.current_serverless

    def endpoint_delete_failed(self, endpoint: Endpoint, reason: str) -> None:
        endpoint.move_to(Status.FAILED)
        endpoint.failure_reason = reason

    def endpoint_deleted(self, endpoint: Endpoint) -> None:
        if self.endpoints.get(endpoint.name.lower()) is endpoint:
            del self.endpoints[endpoint.name.lower()]


def _pending_variants(config: EndpointConfig, models: dict[str, Model]) -> list[VariantSummary]:
    variants = desired_variants(config, models, live=False)
    for summary, variant in zip(variants, config.variants):
        summary.instance_type = variant.instance_type
    return variants


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value


def _retain_variant_properties(config: EndpointConfig, endpoint: Endpoint, excluded: set[str]) -> None:
    """RetainAllVariantProperties: variants the endpoint already has keep their desired instance count and
    weight (scaled by hand or by autoscaling) instead of the new config's, unless excluded."""
    serving = {v.name: v for v in endpoint.variants}
    for variant in config.variants:
        current = serving.get(variant.variant_name)
        if current is None:
            continue
        if "DesiredInstanceCount" not in excluded and current.desired_serverless is None \
                and variant.initial_instance_count is not None:
            variant.initial_instance_count = current.desired_count
        if "DesiredWeight" not in excluded:
            variant.initial_variant_weight = current.desired_weight


def _check_containers(spec: ModelSpec) -> None:
    """Multi-container rules: Direct needs a hostname on every container; hostnames are unique."""
    mode = spec.inference_execution_config.mode if spec.inference_execution_config else None
    if mode and not spec.containers:
        raise ValidationException("InferenceExecutionConfig is only supported for models with Containers.")
    containers = spec.all_containers
    hostnames = [c.container_hostname for c in containers if c.container_hostname]
    if len(hostnames) != len(set(hostnames)):
        raise ValidationException(f"ContainerHostname values must be unique within a model: {hostnames}.")
    if mode == "Direct" and len(hostnames) != len(containers):
        raise ValidationException(
            "ContainerHostname must be specified for every container when InferenceExecutionConfig Mode is Direct.")

