"""`make demo-promotion`: a bad version rolled back by its 5XX alarm, then a good one promoted by canary.

Releases iris (``release_iris``), then runs ``promote_variant`` twice while a client keeps invoking the
endpoint: first to a config whose model raises on every request (its canary's errors trip the 5XX alarm,
SageMaker rolls all traffic back to blue, the run fails naming the alarm), then to a new config of the
released model (promoted). Every failed request is counted by who served it: the bad canary, never blue.
Both promotion reports are saved under ``.airflow/``. The emulator runs 20x faster (a 60 s bake is 3 s).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from airflow_env import REPO
from sagemaker_ops.load_test.background import BackgroundCalls

PROMOTION_TIME_SCALE = 20
ENDPOINT = "iris"  # release_iris's endpoint
BAD_INFERENCE = '''
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    raise RuntimeError("bad version: this model raises on every request")

def output_fn(prediction, accept):
    return prediction
'''


class Client(BackgroundCalls):
    """Invokes the endpoint until stopped, counting answers and failures (and who caused each failure)."""

    def __init__(self, runtime, payload: bytes):
        super().__init__(pause_seconds=0.02)
        self.runtime, self.payload = runtime, payload
        self.answers = 0
        self.failures: dict[str, int] = {}

    def call(self) -> None:
        self.runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=self.payload, ContentType="text/csv",
                                     Accept="application/json")["Body"].read()
        self.answers += 1

    def failed(self, error: Exception) -> None:
        who = "the bad canary (green)" if "bad version" in str(error) else f"other: {error}"
        self.failures[who] = self.failures.get(who, 0) + 1


def candidate_configs(aws: dict) -> tuple[str, str, str]:
    """(blue, bad, good): the released config, one whose model raises, one more of the released model."""
    sagemaker, s3 = aws["sagemaker"], aws["s3"]
    blue = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    variant = sagemaker.describe_endpoint_config(EndpointConfigName=blue)["ProductionVariants"][0]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = BAD_INFERENCE.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    bucket = "sagemaker-ops-artifacts"
    s3.put_object(Bucket=bucket, Key="demo/bad-version/model.tar.gz", Body=buffer.getvalue())
    container = {**model["PrimaryContainer"], "ModelDataUrl": f"s3://{bucket}/demo/bad-version/model.tar.gz"}
    container.pop("ModelDataSource", None)
    names = {"bad": "iris-bad-version", "good": "iris-canary-candidate"}
    for kind, name in names.items():
        try:
            sagemaker.describe_endpoint_config(EndpointConfigName=name)
            continue  # a re-run of the demo on a kept emulator
        except sagemaker.exceptions.ClientError:
            pass
        model_name = variant["ModelName"]
        if kind == "bad":
            model_name = "iris-bad-version"
            sagemaker.create_model(ModelName=model_name, ExecutionRoleArn=model["ExecutionRoleArn"],
                                   PrimaryContainer=container)
        sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {key: variant[key] for key in ("VariantName", "InstanceType", "InitialInstanceCount")}
            | {"ModelName": model_name, "InitialVariantWeight": 1.0}])
    return blue, names["bad"], names["good"]


def save_latest_report(aws: dict, path: Path) -> None:
    s3 = aws["s3"]
    listed = s3.list_objects_v2(Bucket="sagemaker-ops-artifacts", Prefix=f"promotion-reports/{ENDPOINT}/")
    pages = sorted((item for item in listed.get("Contents", []) if item["Key"].endswith(".html")),
                   key=lambda item: item["Key"])
    if not pages:
        print("no promotion report found")
        return
    key = pages[-1]["Key"]
    path.write_bytes(s3.get_object(Bucket="sagemaker-ops-artifacts", Key=key)["Body"].read())
    print(f"report         s3://sagemaker-ops-artifacts/{key}\n               saved as {path.relative_to(REPO)}")


def demo_promotion(emulator_url: str, env: dict[str, str], dag_log: Path, clients, run_dag_test) -> int:
    """Release iris, promote a bad version (rolled back, the run fails) then a good one (promoted)."""
    print("running `airflow dags test release_iris`", flush=True)
    if run_dag_test("release_iris", env, dag_log) != 0:
        return 1
    aws = clients(emulator_url)
    blue, bad, good = candidate_configs(aws)
    payload = (REPO / "include/data/iris_sample.csv").read_bytes()
    conf = {"endpoint_name": ENDPOINT, "mode": "blue_green", "strategy": "canary", "canary_size": 1,
            "wait_interval_seconds": 60, "termination_wait_seconds": 20, "error_rate_threshold": 0.05,
            "report_period_seconds": 1}
    for label, config, wait, expect_failure in (("rollback", bad, 600, True), ("promoted", good, 60, False)):
        print(f"\n=== promote {config} (canary of 1 instance, alarm: 5XX rate >= 5%) ===", flush=True)
        log = dag_log.with_name(f"promote-{label}.log")
        with Client(aws["sagemaker-runtime"], payload) as client:
            returncode = run_dag_test("promote_variant", env, log,
                                      {**conf, "endpoint_config_name": config, "wait_interval_seconds": wait},
                                      show_failure=not expect_failure)
        if bool(returncode) != expect_failure:
            print(f"unexpected: promote_variant exited {returncode}; see {log}")
            return 1
        if expect_failure:
            reasons = [line.strip() for line in log.read_text().splitlines()
                       if ("was rolled back" in line or ("Alarm " in line and " is " in line and "Threshold" in line))
                       and "[info" not in line]
            print("the run failed as it should:\n  " + "\n  ".join(dict.fromkeys(reasons[:4])))
        described = aws["sagemaker"].describe_endpoint(EndpointName=ENDPOINT)
        print(f"endpoint       {described['EndpointStatus']} on {described['EndpointConfigName']}")
        print(f"client         {client.summary()}")
        save_latest_report(aws, REPO / ".airflow" / f"promotion-report-{label}.html")
    return 0
