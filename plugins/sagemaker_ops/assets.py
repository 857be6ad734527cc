"""The Airflow Assets this project publishes, defined once for producers and consumers."""

from __future__ import annotations

from airflow.sdk import Asset

ENDPOINT_ASSET_GROUP = "sagemaker-endpoints"


def endpoint_asset(endpoint_name: str) -> Asset:
    """The Asset for a SageMaker endpoint: updated whenever a release deploys (or confirms) it."""
    return Asset(
        uri=f"sagemaker://endpoint/{endpoint_name}",
        name=f"sagemaker-endpoint-{endpoint_name}",
        group=ENDPOINT_ASSET_GROUP,
    )
