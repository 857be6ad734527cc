"""The deferred wait of :class:`~sagemaker_ops.operators.inference_recommender.InferenceRecommenderOperator`."""

from __future__ import annotations

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from sagemaker_ops.hooks.sagemaker import SageMakerOpsHook


class InferenceRecommendationsJobTrigger(AwsBaseWaiterTrigger):
    """
    Wait in the triggerer until an Inference Recommender job is COMPLETED (FAILED or STOPPED fail).

    :param job_name: the job to watch.
    :param waiter_delay: seconds between two DescribeInferenceRecommendationsJob calls.
    :param waiter_max_attempts: how many calls before giving up.
    :param aws_conn_id: the Airflow connection used for AWS credentials.
    :param region_name: the AWS region of the job.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: botocore client configuration (a dict).
    """

    aws_hook_class = SageMakerOpsHook

    def __init__(self, *, job_name: str, waiter_delay: int = 60, waiter_max_attempts: int = 180,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None,
                 verify: bool | str | None = None, botocore_config: dict | None = None) -> None:
        super().__init__(
            serialized_fields={"job_name": job_name},
            waiter_name="InferenceRecommendationsJobDone",
            waiter_args={"JobName": job_name},
            failure_message=f"Inference recommendations job {job_name} did not complete",
            status_message=f"Status of inference recommendations job {job_name}",
            status_queries=["Status", "FailureReason"],
            return_key="job_name",
            return_value=job_name,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
