"""Create (idempotently) the AWS resources of docs/DESIGN.md in LocalStack.

Run with the LocalStack venv's Python (it has boto3), with the environment of infra/scripts/env.sh:
    .cache/venv-localstack/bin/python infra/scripts/bootstrap_localstack.py

- queues notion-es-work (+ -dlq, redrive maxReceiveCount $MAX_RECEIVE_COUNT, visibility $WORK_VISIBILITY_TIMEOUT)
  and notion-es-finalize (+ -dlq, visibility $FINALIZE_VISIBILITY_TIMEOUT)
- secret $SECRET_ID = {"notion_token", "webhook_verification_token", "api_key"} (reset to these values when different)
- EventBridge rules notion-es-full-sync (rate(1 day)) and notion-es-incremental-sync (rate(5 minutes)), no target:
  locally the planner is invoked directly.
Prints `NAME=URL` lines for the queues.
"""

import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
REGION = os.environ.get("AWS_REGION", "us-east-1")
CFG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        config=CFG,
    )


def ensure_queue(sqs, name, attributes):
    """Create the queue, or bring an existing one's attributes to `attributes`. Returns (url, arn)."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        state = "updated"
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        state = "created"
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    print(f"    queue {name}: {state}", file=sys.stderr)
    return url, arn


def ensure_secret(sm, secret_id, value):
    body = json.dumps(value, sort_keys=True)
    try:
        current = sm.get_secret_value(SecretId=secret_id).get("SecretString")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        sm.create_secret(Name=secret_id, SecretString=body, Description="notion-es local secrets")
        print(f"    secret {secret_id}: created", file=sys.stderr)
        return
    try:
        same = json.loads(current or "null") == value
    except ValueError:
        same = False
    if same:
        print(f"    secret {secret_id}: unchanged", file=sys.stderr)
    else:
        sm.put_secret_value(SecretId=secret_id, SecretString=body)
        print(f"    secret {secret_id}: reset to the local values", file=sys.stderr)


def ensure_rule(events, name, schedule, description):
    events.put_rule(Name=name, ScheduleExpression=schedule, State="ENABLED", Description=description)
    print(f"    rule {name}: {schedule}", file=sys.stderr)


def main():
    env = os.environ.get
    max_receive = int(env("MAX_RECEIVE_COUNT", "3"))
    work_vis = str(int(env("WORK_VISIBILITY_TIMEOUT", "30")))
    fin_vis = str(int(env("FINALIZE_VISIBILITY_TIMEOUT", "30")))
    work = env("WORK_QUEUE_NAME", "notion-es-work")
    fin = env("FINALIZE_QUEUE_NAME", "notion-es-finalize")

    sqs = client("sqs")
    retention = str(4 * 24 * 3600)
    dlq_attrs = {"MessageRetentionPeriod": str(14 * 24 * 3600)}
    work_dlq_url, work_dlq_arn = ensure_queue(sqs, f"{work}-dlq", dlq_attrs)
    work_url, _ = ensure_queue(sqs, work, {
        "VisibilityTimeout": work_vis,
        "MessageRetentionPeriod": retention,
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": work_dlq_arn, "maxReceiveCount": str(max_receive)}),
    })
    fin_dlq_url, fin_dlq_arn = ensure_queue(sqs, f"{fin}-dlq", dlq_attrs)
    fin_url, _ = ensure_queue(sqs, fin, {
        "VisibilityTimeout": fin_vis,
        "MessageRetentionPeriod": retention,
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": fin_dlq_arn, "maxReceiveCount": str(max_receive)}),
    })

    ensure_secret(client("secretsmanager"), env("SECRET_ID", "notion-es/secrets"), {
        "notion_token": env("NOTION_TOKEN", "ntn_local_test_token"),
        "webhook_verification_token": env("WEBHOOK_VERIFICATION_TOKEN", "secret_local_webhook_token"),
        "api_key": env("API_KEY", "local_api_key"),
    })

    events = client("events")
    ensure_rule(events, "notion-es-full-sync", "rate(1 day)", "notion-es full sync (locally: invoke the planner directly)")
    ensure_rule(events, "notion-es-incremental-sync", "rate(5 minutes)",
                "notion-es incremental sync (locally: invoke the planner directly)")

    # env.sh gives the functions account-path URLs (http://127.0.0.1:4566/000000000000/notion-es-work) without asking
    # LocalStack; with SQS_ENDPOINT_STRATEGY=path LocalStack itself answers /queue/us-east-1/000000000000/<name>.
    # It accepts both forms: check that the environment's URLs reach the same queues, then print them.
    ok = True
    for var, url in (("WORK_QUEUE_URL", work_url), ("WORK_DLQ_URL", work_dlq_url),
                     ("FINALIZE_QUEUE_URL", fin_url), ("FINALIZE_DLQ_URL", fin_dlq_url)):
        given = env(var) or url
        try:
            a = sqs.get_queue_attributes(QueueUrl=given, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            b = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            if a != b:
                raise ValueError(f"reaches {a}, expected {b}")
        except Exception as e:  # noqa: BLE001
            print(f"bootstrap: {var}={given} does not reach the queue {url}: {e}", file=sys.stderr)
            ok = False
        print(f"{var}={given}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - one clear line for the caller
        print(f"bootstrap: failed against {ENDPOINT}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
