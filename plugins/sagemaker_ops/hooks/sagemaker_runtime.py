"""SageMaker runtime (InvokeEndpoint) hook."""

from __future__ import annotations

from dataclasses import dataclass

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook


@dataclass(frozen=True)
class Invocation:
    """One InvokeEndpoint answer: the body bytes, its content type and the variant that served it."""

    body: bytes
    content_type: str | None
    invoked_variant: str | None


class SageMakerRuntimeHook(AwsBaseHook):
    """
    Invoke SageMaker endpoints; thin wrapper around ``boto3.client("sagemaker-runtime")``.

    Additional arguments (such as ``aws_conn_id``) are passed down to
    :class:`~airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs["client_type"] = "sagemaker-runtime"
        super().__init__(*args, **kwargs)

    def invoke_endpoint(
        self,
        endpoint_name: str,
        body: bytes | str,
        *,
        content_type: str,
        accept: str,
        target_variant: str | None = None,
    ) -> Invocation:
        """Send one request to ``endpoint_name`` and return the decoded response metadata and body."""
        kwargs = {"EndpointName": endpoint_name, "Body": body, "ContentType": content_type, "Accept": accept}
        if target_variant:
            kwargs["TargetVariant"] = target_variant
        response = self.conn.invoke_endpoint(**kwargs)
        return Invocation(
            body=response["Body"].read(),
            content_type=response.get("ContentType"),
            invoked_variant=response.get("InvokedProductionVariant"),
        )
