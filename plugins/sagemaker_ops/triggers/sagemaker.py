"""Triggers that wait on SageMaker endpoints in the triggerer (the deferred half of the operators)."""

from __future__ import annotations

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook

ENDPOINT_STATUS_QUERIES = ["EndpointStatus", "EndpointConfigName", "FailureReason"]


class _EndpointWaiterTrigger(AwsBaseWaiterTrigger):
    """
    Wait on one endpoint with a waiter from ``sagemaker_ops/waiters/sagemaker.json``.

    The event carries ``actions_taken`` (what the deploying task already did) so that
    ``execute_complete`` can decide the next step from the event alone.

    :param endpoint_name: the endpoint to watch.
    :param actions_taken: the deploying task's actions so far, oldest first.
    :param waiter_delay: seconds between two DescribeEndpoint calls.
    :param waiter_max_attempts: how many DescribeEndpoint calls before giving up.
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: the AWS region of the endpoint.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    aws_hook_class = SageMakerOpsHook
    waiter_name: str
    failure_message: str

    def __init__(
        self,
        *,
        endpoint_name: str,
        actions_taken: list[str] | None = None,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 120,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ) -> None:
        actions_taken = list(actions_taken or [])
        super().__init__(
            serialized_fields={"endpoint_name": endpoint_name, "actions_taken": actions_taken},
            waiter_name=self.waiter_name,
            waiter_args={"EndpointName": endpoint_name},
            failure_message=f"{self.failure_message} {endpoint_name}",
            status_message=f"Status of endpoint {endpoint_name}",
            status_queries=ENDPOINT_STATUS_QUERIES,
            return_key="deployment",
            return_value={"endpoint_name": endpoint_name, "actions_taken": actions_taken},
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )


class EndpointSettledTrigger(_EndpointWaiterTrigger):
    """Wait until an endpoint leaves Creating/Updating: ``InService`` is success, a broken state is failure."""

    waiter_name = "EndpointSettled"
    failure_message = "Endpoint did not settle InService:"


class EndpointDeletedTrigger(_EndpointWaiterTrigger):
    """Wait until DescribeEndpoint reports the endpoint gone."""

    waiter_name = "EndpointDeletionComplete"
    failure_message = "Endpoint was not deleted:"
