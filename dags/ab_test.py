"""A/B test: two released models as two variants of one endpoint; check the split, shift it, check again.

Manual DAG (Trigger, with the Params form). Wiring only: the plan is checked by
``sagemaker_ops.ab_test`` and every step is a ``sagemaker_ops`` operator.
"""

from __future__ import annotations

from datetime import timedelta

# Pre-imported by the DAG processor before it forks the parser (see dags/release.py).
import airflow.providers.amazon.aws.operators.base_aws  # noqa: F401
from airflow.sdk import DAG, Param, task
from sagemaker_ops.ab_test import ROLES, ab_candidates, default_pair
from sagemaker_ops.operators.s3 import PackageModelOperator
from sagemaker_ops.operators.sagemaker_endpoint import DeployEndpointOperator, UpdateVariantWeightsOperator
from sagemaker_ops.operators.sagemaker_resources import EnsureEndpointConfigOperator, EnsureModelOperator
from sagemaker_ops.operators.sagemaker_runtime import TrafficSplitCheckOperator
from sagemaker_ops.pipeline import load_pipelines, pipelines_dir

PIPELINES_DIR = pipelines_dir(__file__)  # include/pipelines/, or SAGEMAKER_OPS_PIPELINES_DIR
CANDIDATES = ab_candidates(load_pipelines(PIPELINES_DIR))
DEFAULT_CHAMPION, DEFAULT_CHALLENGER = default_pair(CANDIDATES)
SIGNIFICANCE = 0.001

DOC = f"""
### A/B test of two released models

The book chapter's A/B test, made repeatable. Two pipelines of `include/pipelines/` (Params
`champion`, `challenger`; any single-model, real-time one: {", ".join(f"`{name}`" for name in CANDIDATES)})
become the variants `Champion` and `Challenger` of the endpoint `endpoint_name` (one
instance each, the champion's instance type). The models are the very ones their releases create
(same archive, same spec, same name: reused, not duplicated).

1. `plan_ab_test` checks the Params before any AWS call;
2. package both models, ensure both SageMaker models and a two-variant endpoint config at the
   initial weights, deploy the endpoint;
3. `set_initial_weights` puts the weights back to the initial ones (a re-run starts from 1:1 too);
4. `check_initial_split` sends `invocations` real requests (the champion's smoke-test payload),
   counts `InvokedProductionVariant` and tests the split against the endpoint's weights;
5. `shift_traffic` moves to the shifted weights with UpdateEndpointWeightsAndCapacities (in place,
   no redeployment), and `check_shifted_split` tests the split again.

**The statistical check.** Each request goes to variant *i* with probability `w_i / Σw`, so its
count is Binomial(N, p_i). For each variant a two-sided exact binomial test
(`scipy.stats.binomtest`) compares its count with p_i; the split is inconsistent when any p-value
is below `significance / number of variants` (Bonferroni), so a correctly weighted endpoint fails
the check with probability at most `significance` (default {SIGNIFICANCE}). A variant with weight 0
must receive nothing. The task log prints the test, the threshold and a table of weights, expected
and observed shares, counts and p-values; the task returns them.
"""

with DAG(
    dag_id="ab_test",
    description="A/B test two released models on one endpoint: check the traffic split, shift it, check again.",
    schedule=None,
    catchup=False,
    tags=["promotion", "sagemaker", "ab-test"],
    doc_md=DOC,
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "endpoint_name": Param("iris-ab", type="string", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
                               title="Endpoint name",
                               description="The A/B endpoint (created if missing; not a release's endpoint). "
                                           "1-63 letters, digits and hyphens; starts and ends with a letter or digit."),
        "champion": Param(DEFAULT_CHAMPION, type="string", enum=CANDIDATES, title="Champion pipeline",
                          description="Pipeline serving the variant Champion."),
        "challenger": Param(DEFAULT_CHALLENGER, type="string", enum=CANDIDATES, title="Challenger pipeline",
                            description="Pipeline serving the variant Challenger."),
        "champion_weight": Param(1, type="number", minimum=0, title="Champion weight",
                                 description="Initial weight of Champion."),
        "challenger_weight": Param(1, type="number", minimum=0, title="Challenger weight",
                                   description="Initial weight of Challenger."),
        "shifted_champion_weight": Param(1, type="number", minimum=0, title="Champion weight after the shift",
                                         description="Champion's weight after the shift (the chapter's 1:9)."),
        "shifted_challenger_weight": Param(9, type="number", minimum=0, title="Challenger weight after the shift",
                                           description="Challenger's weight after the shift."),
        "invocations": Param(200, type="integer", minimum=20, maximum=5000, title="Requests per check",
                             description="Real requests sent for each split check (20 to 5000)."),
        "significance": Param(SIGNIFICANCE, type="number", exclusiveMinimum=0, maximum=0.2, title="Significance",
                              description="Probability that a correctly weighted endpoint fails a check "
                                          "(above 0, at most 0.2)."),
    },
) as dag:

    @task(multiple_outputs=True)
    def plan_ab_test(params: dict | None = None) -> dict:
        """Check the Params against the pipeline files; one XCom value per operator argument."""
        from sagemaker_ops.ab_test import plan_ab_test as plan

        return plan(load_pipelines(PIPELINES_DIR), params or {})

    plan = plan_ab_test()
    models = {}
    for role in ROLES:
        package = PackageModelOperator(
            task_id=f"package_{role}",
            source_dir=plan[f"{role}_source_dir"],
            bucket=plan[f"{role}_bucket"],
            key_prefix=plan[f"{role}_prefix"],
        )
        models[role] = EnsureModelOperator(
            task_id=f"ensure_{role}_model",
            name_prefix=plan[f"{role}_pipeline"],
            model_data_url=package.output["s3_uri"],
            execution_role_arn=plan[f"{role}_role_arn"],
            image_uri=plan[f"{role}_image_uri"],
            framework=plan[f"{role}_framework"],
            framework_version=plan[f"{role}_framework_version"],
            environment=plan[f"{role}_environment"],
            tags=plan["tags"],
        )
    endpoint_config = EnsureEndpointConfigOperator(
        task_id="ensure_endpoint_config",
        name_prefix="{{ params.endpoint_name }}-config",
        production_variants=[
            {"VariantName": variant, "ModelName": models[role].output["model_name"],
             "InstanceType": plan["instance_type"], "InitialInstanceCount": 1,
             "InitialVariantWeight": plan[f"{role}_initial_weight"]}
            for role, variant in ROLES.items()
        ],
        tags=plan["tags"],
    )
    deploy = DeployEndpointOperator(
        task_id="deploy_endpoint",
        endpoint_name=plan["endpoint_name"],
        endpoint_config_name=endpoint_config.output["endpoint_config_name"],
        tags=plan["tags"],
        deferrable=True,
        waiter_delay=5,
        waiter_max_attempts=240,
    )
    weights = {"wait_for_completion": True, "deferrable": True, "waiter_delay": 5, "waiter_max_attempts": 240}
    split_check = {"payload_file": plan["payload_file"], "content_type": plan["content_type"],
                   "accept": plan["accept"], "invocations": plan["invocations"],
                   "significance": plan["significance"]}
    set_initial = UpdateVariantWeightsOperator(task_id="set_initial_weights", endpoint_name=deploy.output[
        "endpoint_name"], weights=plan["initial_weights"], **weights)
    check_initial = TrafficSplitCheckOperator(task_id="check_initial_split",
                                              endpoint_name=plan["endpoint_name"], **split_check)
    shift = UpdateVariantWeightsOperator(task_id="shift_traffic", endpoint_name=plan["endpoint_name"],
                                         weights=plan["shifted_weights"], **weights)
    check_shifted = TrafficSplitCheckOperator(task_id="check_shifted_split",
                                              endpoint_name=plan["endpoint_name"], **split_check)
    set_initial >> check_initial >> shift >> check_shifted
