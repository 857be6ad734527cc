"""AWS facts that the Airflow side and the emulator both check against, kept once.

The instance catalog (vCPUs, memory, prices), Model Monitor's schedule rules and SageMaker's limits
live here so that a client-side check in ``sagemaker_ops`` and the emulator's service-side check can
never disagree. Pure Python and JSON: no Airflow, no AWS SDK, no emulator imports.
"""
