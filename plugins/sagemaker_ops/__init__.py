"""Airflow-facing library for operating Amazon SageMaker inference.

Folders follow the Amazon provider's layout: ``hooks/`` (the service work: describe-or-None,
processing jobs, S3 files, waits), ``operators/`` (decisions, one module per job; ``base`` holds
what they share: settings stored from the signature, the dict result, waiter settings),
``triggers/`` and ``waiters/``. Pure helpers live in modules of their own and import nothing
from Airflow or boto3: ``packaging`` (deterministic model.tar.gz), the ``pipeline`` package
(release pipeline files: typed models, a parser per section), ``specs`` (compare, hash and name
resource specs, tags), ``endpoint_plan`` (the deploy operator's decisions), ``variant_weights``
(the weight operator's decisions), ``traffic_split`` (the statistical check of a traffic split),
``ab_test`` (the A/B DAG's plan), ``model_monitor_jobs`` (Model Monitor's analyzer requests,
datasets and windows) and ``dag_docs`` (the DAGs' Markdown). ``release_tasks`` and
``monitoring_tasks`` build the DAGs' tasks from a pipeline file, passing its settings through
by name (``task_arguments``); ``assets`` defines the Airflow Assets the DAGs publish. AWS rules
shared with the emulator (instance catalog, Model Monitor schedules) are ``sagemaker_rules``.

Keep this package import-cheap: DAG files import it at parse time.
"""
