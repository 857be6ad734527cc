"""Application Auto Scaling for SageMaker endpoints: pure policy math, schedules, activities."""
