"""Operators for SageMaker inference operations (one module per AWS service)."""
