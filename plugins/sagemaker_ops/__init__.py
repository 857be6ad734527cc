"""Airflow-facing library for operating Amazon SageMaker inference.

Folders follow the Amazon provider's layout: ``hooks/``, ``operators/``, ``triggers/`` and
``waiters/`` hold one module per AWS service. Pure helpers live in modules of their own and import
nothing from Airflow or boto3: ``packaging`` (deterministic model.tar.gz), ``pipeline_config``
(release pipeline files), ``specs`` (compare, hash and name resource specs), ``endpoint_plan``
(the deploy operator's decisions), ``variant_weights`` (the weight operator's decisions),
``traffic_split`` (the statistical check of a traffic split) and ``ab_test`` (the A/B DAG's plan). ``assets`` defines the Airflow Assets the DAGs publish.

Keep this package import-cheap: DAG files import it at parse time.
"""
