"""SageMaker control-plane hook with this project's endpoint waiters."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

WAITERS_FILE = Path(__file__).resolve().parents[1] / "waiters" / "sagemaker.json"


def is_not_found(error: ClientError) -> bool:
    """SageMaker reports a missing model/config/endpoint as ValidationException "Could not find ..."."""
    details = error.response.get("Error", {})
    return details.get("Code") == "ValidationException" and "Could not find" in details.get("Message", "")


class SageMakerOpsHook(SageMakerHook):
    """
    Interact with Amazon SageMaker; thick wrapper around ``boto3.client("sagemaker")``.

    Extends the provider's :class:`~airflow.providers.amazon.aws.hooks.sagemaker.SageMakerHook` with
    describe-or-None helpers and DeleteEndpoint, and loads the custom waiters in
    ``sagemaker_ops/waiters/sagemaker.json`` (``EndpointSettled``, ``EndpointDeletionComplete``).
    That file replaces the provider's custom SageMaker waiters for this hook; boto's official
    waiters (``endpoint_in_service``, ...) stay available.
    """

    @cached_property
    def waiter_path(self) -> os.PathLike[str] | None:
        return WAITERS_FILE

    def describe_model_or_none(self, model_name: str) -> dict[str, Any] | None:
        return self._describe_or_none("describe_model", ModelName=model_name)

    def describe_endpoint_config_or_none(self, config_name: str) -> dict[str, Any] | None:
        return self._describe_or_none("describe_endpoint_config", EndpointConfigName=config_name)

    def describe_endpoint_or_none(self, endpoint_name: str) -> dict[str, Any] | None:
        return self._describe_or_none("describe_endpoint", EndpointName=endpoint_name)

    def delete_endpoint(self, endpoint_name: str) -> None:
        """Delete an endpoint (the only call AWS accepts on a ``Failed`` endpoint)."""
        self.conn.delete_endpoint(EndpointName=endpoint_name)

    def _describe_or_none(self, method: str, **kwargs: str) -> dict[str, Any] | None:
        try:
            response = getattr(self.conn, method)(**kwargs)
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        response.pop("ResponseMetadata", None)
        return response
