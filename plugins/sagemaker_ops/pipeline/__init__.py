"""Release pipeline files (``include/pipelines/*.yaml``): load, validate, expose as dataclasses.

Pure Python (pyyaml only), imported by DAG files at parse time. Every problem is reported as
``<file>: <field path> <what is wrong>, got <value>``, e.g.
``include/pipelines/iris.yaml: endpoint.variants[0].instance_count must be an integer >= 1, got 'two'``,
and all problems of all files are reported at once. Relative paths in a file are relative to
that file's folder. See ``include/pipelines/iris.yaml`` for a commented example.

Beyond one model on instances (``iris.yaml``) a file can declare every hosting option of SageMaker
real-time inference, each validated here against AWS's rules before any AWS call:

* ``model.multi_model.models: [{name, source}]``: a multi-model endpoint (one ``MultiModel``
  container whose ModelDataUrl is an S3 prefix holding ``<name>.tar.gz`` per model);
* ``model.containers: [{hostname, source, image_uri | framework + framework_version, environment}]``
  with ``model.inference_mode: Direct | Serial``: a multi-container endpoint (2-15 containers);
* ``endpoint.variants[].serverless: {memory_size_mb, max_concurrency}`` instead of instances;
* ``endpoint.data_capture`` and ``endpoint.async_inference``;
* ``smoke_tests: [...]`` (or one ``smoke_test``), each naming ``target_model``,
  ``target_container_hostname`` or ``target_variant``, or ``async: true``;
* ``monitoring: {baseline, schedule, check, report_s3_uri}``: Model Monitor data quality over the
  endpoint's captured requests (needs ``endpoint.data_capture`` with ``input``); see
  ``include/pipelines/iris-tree.yaml``.
* ``benchmark: {candidates, traffic_shape, sla, requirements, safety_factor, ...}``: the release
  benchmarks each candidate configuration, chooses by the chapter's algorithm and deploys the choice
  (``benchmark_section``; see ``include/pipelines/iris.yaml``).

Modules: ``models`` (the dataclasses), ``fields`` (generic field readers and their error wording),
one parser per section (``document`` for the top level and ``artifacts``, ``model_section``,
``endpoint_section``, ``hosting_options``, ``smoke_test_section``, ``monitoring_section``) and
``loader`` (files and folders). The requests the config becomes are built by the operators that
send them (:mod:`sagemaker_ops.operators.sagemaker_resources`).
"""

from sagemaker_ops.pipeline.fields import PipelineConfigError
from sagemaker_ops.pipeline.loader import display_path, load_pipeline, load_pipelines, pipelines_dir

__all__ = ["PipelineConfigError", "display_path", "load_pipeline", "load_pipelines", "pipelines_dir"]
