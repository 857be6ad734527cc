"""Load tests of SageMaker endpoints with Locust, run in a process of their own.

``plan`` (pure: traffic shapes, the plan, percentiles and capacity), ``signing`` (SigV4 headers),
``locustfile`` (the Locust process: never imported by Airflow, it monkey-patches with gevent) and
``runner`` (starts that process and streams its progress). The operator is
:class:`sagemaker_ops.operators.load_test.LoadTestOperator`.
"""
