"""The Markdown each DAG shows in the UI (``doc_md``), rendered from its pipeline files.

Pure Python over :mod:`sagemaker_ops.pipeline`: DAG files call these at parse time.
"""

from __future__ import annotations

from sagemaker_ops.pipeline import display_path
from sagemaker_ops.pipeline.models import PipelineConfig, SmokeTestConfig


def release_doc(pipeline: PipelineConfig) -> str:
    variants = "\n".join(
        f"| {v.name} | {v.instance_type} | {v.instance_count} | {v.weight:g} |" if v.serverless is None else
        f"| {v.name} | serverless, {v.serverless.memory_size_mb} MB | up to {v.serverless.max_concurrency} "
        f"concurrent | {v.weight:g} |"
        for v in pipeline.endpoint.variants
    )
    smoke_tests = "\n".join(f"* `{test.task_id}`: {_smoke_test_summary(test)}" for test in pipeline.smoke_tests)
    summaries = _promotion_summary(pipeline) + _scaling_summary(pipeline) + _monitoring_summary(pipeline)
    return f"""
### Release `{pipeline.name}`

{pipeline.description}

Defined by `{display_path(pipeline.path)}`. {_model_summary(pipeline)}
Ensure the model `{pipeline.name}-<hash>` and the endpoint config `{pipeline.name}-config-<hash>`
(names derive from their spec, so a new artifact gives a new config and an update), deploy
endpoint `{pipeline.endpoint.name}`, smoke-test it, and publish the Asset
`sagemaker://endpoint/{pipeline.endpoint.name}`.{_endpoint_features(pipeline)}{summaries}

| variant | instance type | count | weight |
|---|---|---|---|
{variants}

Smoke tests:

{smoke_tests}

Re-running converges: unchanged inputs upload nothing, reuse the model and config, and leave the
endpoint alone.
"""


def _model_summary(pipeline: PipelineConfig) -> str:
    model, artifacts = pipeline.model, pipeline.artifacts
    image = model.image_uri or f"{model.framework} {model.framework_version}"
    if model.kind == "multi-model":
        names = ", ".join(f"`{archive.target_model}`" for archive in model.multi_model)
        return (f"Multi-model endpoint ({image}): package {names} under one content-addressed prefix "
                f"`{artifacts.uri('<digest>/')}`, each invoked by its TargetModel.")
    if model.kind == "multi-container":
        containers = " → " if model.inference_mode == "Serial" else ", "
        listed = containers.join(
            f"`{c.hostname or c.key(i)}` ({c.image_uri or c.framework}, {display_path(c.source_dir)})"
            for i, c in enumerate(model.containers))
        return (f"Multi-container endpoint, inference mode **{model.inference_mode}**: {listed}; each "
                f"container's archive is packaged to `{artifacts.uri('<container>/')}`.")
    return (f"Package `{display_path(model.source_dir)}` ({image}) to "
            f"`{artifacts.uri('<sha256>/model.tar.gz')}`.")


def _endpoint_features(pipeline: PipelineConfig) -> str:
    capture, asynchronous = pipeline.endpoint.data_capture, pipeline.endpoint.async_inference
    lines = []
    if capture is not None:
        lines.append(f"Data capture: {capture.sampling_percentage}% of requests ({' and '.join(capture.capture)}) "
                     f"to `{capture.destination_s3_uri}`.")
    if asynchronous is not None:
        lines.append(f"Asynchronous inference: answers to `{asynchronous.output_path}`, errors to "
                     f"`{asynchronous.failure_path}`.")
    return "".join(f"\n\n{line}" for line in lines)


def _promotion_summary(pipeline: PipelineConfig) -> str:
    promotion = pipeline.promotion
    if promotion is None:
        return ""
    size = f" ({promotion.size.kind.replace('_', ' ')} {promotion.size.value})" if promotion.size else ""
    alarms = ", ".join(f"`{alarm.name}`" for alarm in promotion.alarms)
    return (f"\n\nPromotion: a new version of the live endpoint goes out **{promotion.strategy}**{size}, baking "
            f"{promotion.wait_interval_seconds} s per step and {promotion.termination_wait_seconds} s at the end; "
            f"`ensure_promotion_alarms` keeps the alarms {alarms}, and any of them in ALARM rolls all traffic "
            "back (the task fails). A first release creates the endpoint plainly.")


def _scaling_summary(pipeline: PipelineConfig) -> str:
    if pipeline.scaling is None:
        return ""
    parts = []
    for spec in pipeline.scaling.variants:
        policies = [f"target tracking {p.predefined or p.customized.metric} at {p.target_value:g}"
                    for p in spec.target_tracking]
        policies += [f"step scaling on {p.alarm.metric.metric}" for p in spec.step_scaling]
        policies += [f"scheduled action `{a.name}` ({a.schedule})" for a in spec.scheduled_actions]
        parts.append(f"{spec.variant} {spec.min_capacity}-{spec.max_capacity} ({'; '.join(policies) or 'no policy'})")
    return (f"\n\nScaling: `apply_scaling` keeps {', '.join(parts)} after each deploy, writing only what "
            "differs; `release_scaling_for_update` deregisters the targets an instance-type change needs, and "
            "updates keep the scaled counts (RetainAllVariantProperties).")


def _monitoring_summary(pipeline: PipelineConfig) -> str:
    monitoring = pipeline.monitoring
    if monitoring is None:
        return ""
    baseline, schedule = monitoring.baseline, monitoring.schedule
    excluded = f" without {', '.join(baseline.exclude_columns)}" if baseline.exclude_columns else ""
    return (f"\n\nData-quality monitoring: `create_baseline` profiles `{display_path(baseline.dataset)}`"
            f"{excluded} ({baseline.mode}) to `{baseline.output_s3_uri}/<digest>/`, and "
            f"`ensure_monitoring_schedule` keeps the schedule `{schedule.name}` ({schedule.cron}, "
            f"{schedule.instance_type}) checking the endpoint against it; the `model_monitoring` DAG "
            f"checks the last {monitoring.check.window_minutes} minutes whenever this release publishes.")


def _smoke_test_summary(test: SmokeTestConfig) -> str:
    how = "InvokeEndpointAsync through S3" if test.asynchronous else "InvokeEndpoint"
    for label, value in (("TargetModel", test.target_model), ("TargetContainerHostname",
                         test.target_container_hostname), ("TargetVariant", test.target_variant)):
        if value:
            how += f", {label} `{value}`"
    expected = test.expected_body if test.expected_body is not None else test.expected_json
    return f"{how} with `{display_path(test.payload_file)}`, expecting `{expected}`"


def monitoring_doc(pipelines: list[PipelineConfig]) -> str:
    rows = "\n".join(
        f"| `{p.endpoint.name}` | `{p.monitoring.schedule.name}` ({p.monitoring.schedule.cron}) | "
        f"{p.monitoring.check.window_minutes} min, {p.monitoring.check.mode} | **{p.monitoring.check.policy}** | "
        f"`{p.monitoring.report_s3_uri}/{p.endpoint.name}/` |" for p in pipelines) or "| (none) | | | | |"
    return f"""
### Model monitoring (data quality)

For the data team. Runs hourly, and as soon as a release publishes one of the endpoint Assets
below (the release creates the baseline and the monitoring schedule before it publishes). For
each monitored endpoint, one task group:

1. `latest_executions`: the SageMaker monitoring schedule's baseline and its latest executions
   with their violations (skips the group if the schedule does not exist yet);
2. `check`: the last window of captured requests against the same baseline, now, with the
   Model Monitor analyzer (`statistics.json` and `constraint_violations.json` to S3, `feature_*`
   metrics to CloudWatch `/aws/sagemaker/Endpoints/data-metric`);
3. `drift_report`: a self-contained HTML page in S3 with one plot per feature, baseline versus
   window, the distance and threshold of each, the violations and the schedule's executions;
4. `enforce_policy`: `fail` fails the run listing the violations, `warn` logs them, `ignore`
   counts them. Captured records the analyzer could not parse are always reported.

| endpoint | schedule | window, mode | policy | reports |
|---|---|---|---|---|
{rows}

Params `window_start` / `window_end` (ISO-8601, UTC) re-check any past window; by default the
window ends at the run's time.
"""
