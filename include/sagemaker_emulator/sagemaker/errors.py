"""AWS-shaped errors. The code and message are part of the contract: waiters and the Amazon
provider match on them byte for byte."""

from __future__ import annotations


class AwsError(Exception):
    """An error the wire layer turns into an AWS error response."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: object):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields  # extra members of the error shape (e.g. ModelError.OriginalStatusCode)


class ValidationException(AwsError):
    def __init__(self, message: str):
        super().__init__("ValidationException", message)


class ResourceNotFound(AwsError):
    def __init__(self, message: str):
        super().__init__("ResourceNotFound", message)


class ResourceLimitExceeded(AwsError):
    def __init__(self, message: str):
        super().__init__("ResourceLimitExceeded", message)


class UnknownOperation(AwsError):
    def __init__(self, operation: str):
        message = f"The operation {operation} is not supported by this emulator."
        if "InferenceExperiment" in operation:  # shadow tests: what the emulator does offer instead
            message += " To shadow-test a model, give it as ShadowProductionVariants in CreateEndpointConfig."
        super().__init__("UnknownOperationException", message)


# Runtime (sagemaker-runtime, rest-json) errors: the code travels in the x-amzn-ErrorType header.

class RuntimeValidationError(AwsError):
    def __init__(self, message: str, status: int = 400):
        super().__init__("ValidationError", message, status=status)


class ModelError(AwsError):
    def __init__(self, message: str, original_status: int | None = None, original_message: str | None = None,
                 log_stream_arn: str | None = None):
        fields: dict[str, object] = {}
        if original_status is not None:
            fields["OriginalStatusCode"] = original_status
        if original_message is not None:
            fields["OriginalMessage"] = original_message
        if log_stream_arn:
            fields["LogStreamArn"] = log_stream_arn
        super().__init__("ModelError", message, status=424, **fields)


class InstanceLost(ModelError):
    """The instance's connection broke mid-request (it died): a ModelError to the caller, a retry to the async queue."""


class ServiceUnavailable(AwsError):
    def __init__(self, message: str):
        super().__init__("ServiceUnavailable", message, status=503)


class InternalFailure(AwsError):
    def __init__(self, message: str):
        super().__init__("InternalFailure", message, status=500)


class ThrottlingException(AwsError):
    """AWS's common throttling error (HTTP 400), e.g. a serverless variant at its MaxConcurrency."""

    def __init__(self, message: str = "The request was denied due to request throttling."):
        super().__init__("ThrottlingException", message)
