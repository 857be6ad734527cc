"""Every operator declares its settings once, in its signature, and Airflow sees them as it sees any operator's.

``store_arguments`` stores the settings; these tests check what a DAG author relies on: defaults,
``default_args``, the missing-argument error, templating, ``.partial().expand()`` and the dict
result published key by key.
"""

from __future__ import annotations

import inspect

import pytest

from airflow.sdk import DAG
from sagemaker_ops.operators import model_monitor_check, model_monitor_release, model_monitor_report, promotion, s3
from sagemaker_ops.operators import autoscaling, inference_recommender, load_test, promotion_report
from sagemaker_ops.operators import sagemaker_endpoint, sagemaker_resources, sagemaker_runtime, scaling_report
from sagemaker_ops.operators.base import SageMakerOpsOperator
from sagemaker_ops.operators.sagemaker_endpoint import DeployEndpointOperator
from sagemaker_ops.operators.sagemaker_runtime import AsyncSmokeTestEndpointOperator, SmokeTestEndpointOperator

MODULES = (model_monitor_check, model_monitor_release, model_monitor_report, promotion, promotion_report, s3,
           sagemaker_endpoint, sagemaker_resources, sagemaker_runtime, autoscaling, inference_recommender, load_test,
           scaling_report)
OPERATORS = sorted({value for module in MODULES for value in vars(module).values()
                    if inspect.isclass(value) and issubclass(value, SageMakerOpsOperator)
                    and not value.__name__.startswith("_") and value.__module__ == module.__name__},
                   key=lambda cls: cls.__name__)


def test_settings_are_stored_with_their_defaults_from_every_class_of_the_operator():
    smoke = AsyncSmokeTestEndpointOperator(task_id="smoke", endpoint_name="iris", payload="1,2",
                                           input_s3_uri="s3://bucket/in")
    assert (smoke.endpoint_name, smoke.content_type, smoke.accept) == ("iris", "text/csv", "application/json")
    assert (smoke.payload, smoke.expected_json, smoke.target_model) == ("1,2", None, None)
    assert (smoke.input_s3_uri, smoke.waiter_delay, smoke.waiter_max_attempts) == ("s3://bucket/in", 5, 60)


def test_default_args_fill_settings_and_a_missing_one_is_named():
    with DAG("settings", schedule=None, default_args={"waiter_delay": 9, "replace_failed": False}):
        deploy = DeployEndpointOperator(task_id="deploy", endpoint_name="iris", endpoint_config_name="cfg")
        with pytest.raises(TypeError, match="missing keyword argument 'endpoint_config_name'"):
            DeployEndpointOperator(task_id="incomplete", endpoint_name="iris")
    assert (deploy.waiter_delay, deploy.replace_failed, deploy.waiter_max_attempts) == (9, False, 120)


def test_templated_settings_render():
    smoke = SmokeTestEndpointOperator(task_id="smoke", endpoint_name="{{ params.endpoint }}", payload="1",
                                      expected_json={"label": "{{ params.label }}"})
    smoke.render_template_fields({"params": {"endpoint": "iris", "label": "setosa"}})
    assert (smoke.endpoint_name, smoke.expected_json) == ("iris", {"label": "setosa"})


def test_settings_can_be_mapped_and_unknown_ones_are_refused():
    with DAG("mapped", schedule=None):
        mapped = SmokeTestEndpointOperator.partial(task_id="smoke", endpoint_name="iris").expand(payload=["1", "2"])
        with pytest.raises(TypeError, match="unexpected keyword argument 'payloads'"):
            SmokeTestEndpointOperator.partial(task_id="typo", endpoint_name="iris").expand(payloads=["1"])
    assert type(mapped).__name__ == "MappedOperator"


def own_settings(operator_class: type) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters the classes of this package add (the provider's are not ours to store)."""
    return {name: parameter for cls in operator_class.__mro__
            if cls.__module__.startswith("sagemaker_ops.") and "__init__" in vars(cls)
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if parameter.kind is parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("operator_class", OPERATORS, ids=lambda cls: cls.__name__)
def test_every_operator_publishes_its_result_key_by_key_and_stores_each_setting(operator_class):
    settings = own_settings(operator_class)
    required = {name: f"value-{name}" for name, parameter in settings.items() if parameter.default is parameter.empty}
    operator = operator_class(task_id="task", **required)
    assert operator.multiple_outputs is True
    assert {name: getattr(operator, name) for name in settings} == {
        name: required.get(name, parameter.default) for name, parameter in settings.items()}
