"""What every operator of ``sagemaker_ops`` shares: settings stored from its signature, a dict result, checks.

Each operator declares its settings once, in its ``__init__`` signature (types, defaults, keyword
only), decorated with :func:`store_arguments`; :class:`SageMakerOpsOperator` makes the result a
dict whose keys downstream tasks read (``.output["endpoint_name"]``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import AwsHookType
from airflow.sdk import conf

InitMethod = TypeVar("InitMethod", bound=Callable[..., None])


def store_arguments(init: InitMethod) -> InitMethod:
    """
    Store every keyword-only argument of an operator's ``__init__`` as the attribute of the same name.

    The decorated ``__init__`` declares the operator's settings and passes the rest on
    (``super().__init__(**kwargs)``); the settings are then stored, defaults included, for
    ``template_fields`` to render and ``execute`` to read, instead of one ``self.x = x`` line each.
    The signature stays the function's own (``functools.wraps``), so Airflow's ``default_args``,
    its missing-argument check and ``.partial()``/``.expand()`` see every setting as before.
    """
    signature = inspect.signature(init)
    settings = [name for name, parameter in signature.parameters.items() if parameter.kind is parameter.KEYWORD_ONLY]

    @functools.wraps(init)
    def init_and_store(self: Any, **kwargs: Any) -> None:
        arguments = signature.bind(self, **kwargs)
        arguments.apply_defaults()
        init(self, **kwargs)
        for name in settings:
            setattr(self, name, arguments.arguments[name])

    return init_and_store  # type: ignore[return-value]


class SageMakerOpsOperator(AwsBaseOperator[AwsHookType]):
    """
    The base of this package's operators: each returns a small JSON-serialisable dict, published
    key by key (``multiple_outputs``) so that a downstream task can take ``.output["<key>"]``.

    Every operator takes the provider's connection parameters besides its own:

    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: AWS region name.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)


class WaitingOperator(SageMakerOpsOperator[AwsHookType]):
    """
    An operator that waits for what it started with a waiter: in the worker, or deferred to the
    triggerer (the same waiter name on both paths).

    :param waiter_delay: seconds between two looks.
    :param waiter_max_attempts: how many looks before giving up.
    :param deferrable: wait in the triggerer instead of the worker.
    """

    @store_arguments
    def __init__(
        self,
        *,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 120,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def trigger_arguments(self) -> dict[str, Any]:
        """The waiter settings and the connection, as the provider's waiter triggers take them."""
        return {"waiter_delay": self.waiter_delay, "waiter_max_attempts": self.waiter_max_attempts,
                "aws_conn_id": self.aws_conn_id, "region_name": self.region_name, "verify": self.verify,
                "botocore_config": self.botocore_config}


def check_waiter_arguments(operator: Any) -> None:
    """An operator's ``waiter_delay`` (seconds) and ``waiter_max_attempts`` must be integers >= 1."""
    check_positive("waiter_delay", operator.waiter_delay)
    check_positive("waiter_max_attempts", operator.waiter_max_attempts)


def check_s3_uri(field: str, value: Any) -> None:
    """``value`` must be an ``s3://`` URI with something after the scheme; the error names ``field``."""
    if not isinstance(value, str) or not value.startswith("s3://") or len(value) <= len("s3://"):
        raise ValueError(f"{field} must be an s3:// URI, got {value!r}.")


def check_positive(field: str, value: Any, maximum: int | None = None) -> None:
    """``value`` must be an integer from 1 (to ``maximum``); the error names ``field``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (maximum and value > maximum):
        bound = f"from 1 to {maximum}" if maximum else ">= 1"
        raise ValueError(f"{field} must be an integer {bound}, got {value!r}.")
