"""SageMaker runtime (InvokeEndpoint, InvokeEndpointAsync) hook."""

from __future__ import annotations

from dataclasses import dataclass

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook


@dataclass(frozen=True)
class Invocation:
    """One InvokeEndpoint answer: the body bytes, its content type and the variant that served it."""

    body: bytes
    content_type: str | None
    invoked_variant: str | None


@dataclass(frozen=True)
class AsyncInvocation:
    """One InvokeEndpointAsync answer: where the result (or the error) will be written in S3."""

    inference_id: str | None
    output_location: str
    failure_location: str | None


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
        target_model: str | None = None,
        target_container_hostname: str | None = None,
    ) -> Invocation:
        """
        Send one request to ``endpoint_name`` and return the decoded response metadata and body.

        ``target_model`` picks the model of a multi-model endpoint (``<name>.tar.gz``),
        ``target_container_hostname`` the container of a Direct multi-container endpoint,
        ``target_variant`` a production variant instead of the weighted random choice.
        """
        kwargs = {"EndpointName": endpoint_name, "Body": body, "ContentType": content_type, "Accept": accept}
        targets = {"TargetVariant": target_variant, "TargetModel": target_model,
                   "TargetContainerHostname": target_container_hostname}
        kwargs.update({key: value for key, value in targets.items() if value})
        response = self.conn.invoke_endpoint(**kwargs)
        return Invocation(
            body=response["Body"].read(),
            content_type=response.get("ContentType"),
            invoked_variant=response.get("InvokedProductionVariant"),
        )

    def invoke_endpoint_async(
        self,
        endpoint_name: str,
        input_location: str,
        *,
        content_type: str,
        accept: str,
        inference_id: str | None = None,
    ) -> AsyncInvocation:
        """Queue the request stored at ``input_location`` (an S3 URI); the answer is written to S3 later."""
        kwargs = {"EndpointName": endpoint_name, "InputLocation": input_location, "ContentType": content_type,
                  "Accept": accept}
        if inference_id:
            kwargs["InferenceId"] = inference_id
        response = self.conn.invoke_endpoint_async(**kwargs)
        return AsyncInvocation(
            inference_id=response.get("InferenceId"),
            output_location=response["OutputLocation"],
            failure_location=response.get("FailureLocation"),
        )
