"""SageMaker control plane (wire + state) and runtime router."""
