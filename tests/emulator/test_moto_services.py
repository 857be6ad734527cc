"""The other AWS services on the same address: moto, in-process, reached through the emulator."""

from __future__ import annotations


def test_s3_round_trip_keeps_object_length(emulator):
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="moto-services")
    s3.put_object(Bucket="moto-services", Key="a/b c.txt", Body=b"12345", Metadata={"sha256": "abc"})
    head = s3.head_object(Bucket="moto-services", Key="a/b c.txt")
    assert head["ContentLength"] == 5  # HEAD must report the object's size, not its empty body
    assert head["Metadata"] == {"sha256": "abc"}
    assert s3.get_object(Bucket="moto-services", Key="a/b c.txt")["Body"].read() == b"12345"


def test_iam_sts_cloudwatch_logs_and_autoscaling_answer(emulator):
    assert emulator.client("sts").get_caller_identity()["Account"] == "123456789012"
    iam = emulator.client("iam")
    role = iam.create_role(RoleName="moto-services-role", AssumeRolePolicyDocument="{}")["Role"]
    assert role["Arn"] == "arn:aws:iam::123456789012:role/moto-services-role"

    cloudwatch = emulator.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="moto-services-alarm", Namespace="AWS/SageMaker",
                                MetricName="Invocation5XXErrors", Statistic="Average", Period=60,
                                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=["moto-services-alarm"])["MetricAlarms"]] == [
        "moto-services-alarm"]

    logs = emulator.client("logs")
    logs.create_log_group(logGroupName="/moto/services")
    assert logs.describe_log_groups(logGroupNamePrefix="/moto/services")["logGroups"][0]["logGroupName"] == "/moto/services"

    autoscaling = emulator.client("application-autoscaling")
    # Other services' targets are moto's alone (SageMaker variants are checked against the endpoint first).
    autoscaling.register_scalable_target(ServiceNamespace="dynamodb", ResourceId="table/moto-services",
                                         ScalableDimension="dynamodb:table:ReadCapacityUnits",
                                         MinCapacity=1, MaxCapacity=4)
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="dynamodb")["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(1, 4)]
