"""The scaling_report DAG: manual, a titled Params form whose schema rejects bad input, the report's extra link."""

from __future__ import annotations

import pytest


def test_scaling_report_is_manual_with_a_titled_params_form_and_a_link(dags):
    dag = dags["scaling_report"]
    assert dag.schedule is None and dag.catchup is False
    assert set(dag.params) == {"endpoint_name", "variant_name", "window_hours", "window_end", "period_seconds"}
    for name in dag.params:
        assert dag.params.get_param(name).schema.get("title"), name
    assert [link.name for link in dag.get_task("scaling_report").operator_extra_links] == ["Scaling report"]


@pytest.mark.parametrize(("conf", "field"), [
    ({"endpoint_name": "bad name"}, "endpoint_name"),
    ({"window_hours": 0}, "window_hours"),
    ({"window_hours": 1000}, "window_hours"),
    ({"period_seconds": 7}, "period_seconds"),
])
def test_the_params_schema_rejects_invalid_input_before_anything_runs(dags, conf: dict, field: str):
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(dags["scaling_report"].params)
    with pytest.raises(ParamValidationError, match=field):
        params.update(conf)
        params.validate()
