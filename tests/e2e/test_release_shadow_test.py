"""A release with ``promotion.shadow_test``: the first release skips it; a new model that answers
differently fails it, and the endpoint keeps serving the old version (nothing deployed)."""

from __future__ import annotations

import pytest
import yaml

from tests.e2e.release_runs import REPO, run_release, task_log

pytestmark = pytest.mark.e2e

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]  # one flower of each species
# Two models that package in no time (no training): the classic petal rule, right on the three flowers
# (the release's CSV smoke test passes), and one that calls every flower setosa.
HANDLER = """
import json

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body
    if content_type == "text/csv":
        return [[float(cell) for cell in line.split(",")] for line in text.strip().splitlines()]
    return json.loads(text)

def predict_fn(rows, model):
    return [{predict} for row in rows]

def output_fn(prediction, accept):
    return json.dumps(prediction)
"""
PETAL_RULE = '"setosa" if row[2] < 2.5 else "versicolor" if row[3] < 1.75 else "virginica"'


def promotion_with_shadow_test() -> dict:
    promotion = yaml.safe_load((REPO / "include/pipelines/iris.yaml").read_text())["promotion"]
    return {**promotion, "shadow_test": {
        "requests": 12, "payloads": [[row] for row in ROWS],
        "thresholds": {"min_agreement": 0.95, "max_error_rate": 0.01}}}


def model_folder(folder, predict: str):
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "inference.py").write_text(HANDLER.replace("{predict}", predict))
    return folder


@pytest.mark.timeout(600)  # two `airflow dags test` runs
def test_a_model_that_disagrees_fails_the_shadow_test_and_is_not_deployed(emulator, airflow_db, tmp_path):
    name = "shadowed"
    returncode, output = run_release(tmp_path / "first", name, model_folder(tmp_path / "petal-rule", PETAL_RULE),
                                     promotion=promotion_with_shadow_test())
    assert returncode == 0, output[-3000:]
    assert "does not exist yet: nothing to shadow" in task_log(output, "shadow_test")
    sagemaker = emulator.client("sagemaker")
    served = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]

    always_setosa = model_folder(tmp_path / "always-setosa", '"setosa"')
    returncode, output = run_release(tmp_path / "second", name, always_setosa, promotion=promotion_with_shadow_test())
    assert returncode != 0
    shadow_log = task_log(output, "shadow_test")
    assert "Shadow test of" in shadow_log and "failed" in shadow_log
    assert "agreement: measured 33.33% over 12 pairs, at least 95.00% required" in shadow_log
    assert "[DAG TEST] starting task_id=deploy_endpoint" not in output
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", served)
    assert "ShadowProductionVariants" not in sagemaker.describe_endpoint_config(EndpointConfigName=served)
