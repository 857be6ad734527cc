"""Triggers for SageMaker inference operations (one module per AWS service)."""
