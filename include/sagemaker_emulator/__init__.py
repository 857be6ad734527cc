"""A local Amazon SageMaker emulator: one process speaking the AWS wire protocols.

moto serves S3, IAM, STS, CloudWatch, CloudWatch Logs and Application Auto Scaling in-process; the
SageMaker control plane and runtime are our own and run real model worker processes.
"""
