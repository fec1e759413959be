"""Checks of template.yaml beyond cfn-lint / sam validate (run by infra/scripts/check-template.sh).

  static      the template agrees with docs/DESIGN.md and with its own rules (env vars, names,
              visibility timeout, worker concurrency, least-privilege policies)
  localstack  the template without its functions deploys to LocalStack through CloudFormation, and
              the queues, redrive policies, secret and rules it creates are the ones the functions
              are configured with; then a stack update switches a schedule off and changes
              maxReceiveCount; the stack (and its secret) is removed at the end.

Runs with the tools venv's Python (cfn-lint for parsing the short-form intrinsics, boto3 from SAM).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
DESIGN = ROOT / "docs" / "DESIGN.md"
FUNCTIONS = {"PlannerFunction": "planner", "WorkerFunction": "worker", "ReaperFunction": "reaper", "ApiFunction": "api"}

failures: list[str] = []


def check(cond: bool, what: str) -> None:
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def load_template() -> dict:
    # cfn-lint's loader turns !Ref / !Sub / ... into their long forms, so the result is plain JSON.
    return json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))


def design_env_vars() -> list[str]:
    text = DESIGN.read_text()
    section = text.split("## Environment of the functions", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([A-Z_]+)`", line.split("|")[1])
    return names


def sub_stack(value, stack: str):
    """Resolves {"Fn::Sub": "${AWS::StackName}-x"} for a given stack name."""
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"].replace("${AWS::StackName}", stack)
    return value


def refs(node) -> set[str]:
    """Logical ids a node refers to (Ref, Fn::GetAtt, ${X} in Fn::Sub)."""
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                s = v if isinstance(v, str) else v[0]
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", s)}
                if not isinstance(v, str):
                    out |= refs(v[1])
            else:
                out |= refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= refs(v)
    return out


# ------------------------------------------------------------------------------------------------
def static() -> None:
    t = load_template()
    res = t["Resources"]
    params = t["Parameters"]
    glob = t["Globals"]["Function"]

    env = glob["Environment"]["Variables"]
    check(sorted(env) == sorted(design_env_vars()),
          f"function env vars are exactly DESIGN.md's: {sorted(env)} vs {sorted(design_env_vars())}")
    check(env["WORK_QUEUE_URL"] == {"Ref": "WorkQueue"}, "WORK_QUEUE_URL is the work queue")
    check(env["FINALIZE_QUEUE_URL"] == {"Ref": "FinalizeQueue"}, "FINALIZE_QUEUE_URL is the finalize queue")
    check(env["MAX_RECEIVE_COUNT"] == {"Ref": "MaxReceiveCount"}, "MAX_RECEIVE_COUNT is the MaxReceiveCount parameter")
    for q in ("WorkQueue", "FinalizeQueue"):
        check(res[q]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"},
              f"{q} redrive uses the MaxReceiveCount parameter")
    check(str(params["MaxReceiveCount"]["Default"]) == "3", "MaxReceiveCount defaults to 3")
    concurrency = {"Fn::FindInMap": ["RateToWorkerConcurrency", {"Ref": "NotionRate"}, "Concurrency"]}
    check(env["WORKER_CONCURRENCY"] == concurrency, "WORKER_CONCURRENCY derived from NotionRate")

    # Names: a stack called notion-es gets DESIGN.md's names.
    design = DESIGN.read_text()
    for logical, prop in [("WorkQueue", "QueueName"), ("WorkDeadLetterQueue", "QueueName"),
                          ("FinalizeQueue", "QueueName"), ("FinalizeDeadLetterQueue", "QueueName"),
                          ("Secret", "Name"), ("FullSyncRule", "Name"), ("IncrementalSyncRule", "Name")]:
        name = sub_stack(res[logical]["Properties"][prop], "notion-es")
        check(f"`{name}`" in design, f"{logical} of stack notion-es is named `{name}` as in DESIGN.md")
    check(params["FullSyncSchedule"]["Default"] == "rate(1 day)" and "`rate(1 day)`" in design, "full sync rate(1 day)")
    check(params["IncrementalSyncSchedule"]["Default"] == "rate(5 minutes)" and "`rate(5 minutes)`" in design,
          "incremental sync rate(5 minutes)")
    check(params["NotionVersion"]["Default"] == "2025-09-03", "NotionVersion defaults to 2025-09-03")
    for v in params["NotionVersion"]["AllowedValues"]:
        check(f"`{v}`" in design, f"Notion version {v} is one DESIGN.md names")

    # Functions.
    for logical, binary in FUNCTIONS.items():
        f = res[logical]
        p = f["Properties"]
        check(f["Metadata"] == {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": binary}},
              f"{logical} builds binary {binary} with rust-cargolambda")
        check((ROOT / "functions" / binary / "Cargo.toml").exists(), f"functions/{binary} exists")
        check(p.get("LoggingConfig", {}).get("LogFormat") == "JSON", f"{logical} logs JSON")
        role = p["Role"]["Fn::GetAtt"][0]
        check(res[role]["Type"] == "AWS::IAM::Role" and len(res[role]["Properties"]["Policies"]) == 1,
              f"{logical} has its own role with one policy")
        check(sum(1 for fl, fp in res.items() if fl in FUNCTIONS and fp["Properties"]["Role"] == p["Role"]) == 1,
              f"{logical}'s role is not shared")
    check(glob["Runtime"] == "provided.al2023" and glob["Architectures"] == ["arm64"]
          and glob["Handler"] == "bootstrap" and glob["CodeUri"] == ".", "provided.al2023 / arm64 / bootstrap / CodeUri .")

    worker_timeout = res["WorkerFunction"]["Properties"]["Timeout"]
    reaper_timeout = res["ReaperFunction"]["Properties"]["Timeout"]
    check(res["WorkQueue"]["Properties"]["VisibilityTimeout"] >= 6 * worker_timeout,
          "work queue visibility timeout >= 6 x worker timeout")
    check(res["FinalizeQueue"]["Properties"]["VisibilityTimeout"] >= 6 * reaper_timeout,
          "finalize queue visibility timeout >= 6 x reaper timeout")

    ev = res["WorkerFunction"]["Properties"]["Events"]["WorkQueue"]
    check(ev["Type"] == "SQS" and ev["Properties"]["Queue"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]},
          "worker is triggered by the work queue")
    check(ev["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], "worker reports batch item failures")
    check(ev["Properties"]["BatchSize"] == 10, "worker batch size 10")
    check(ev["Properties"]["ScalingConfig"]["MaximumConcurrency"] == concurrency, "worker MaximumConcurrency from NotionRate")
    mapping = t["Mappings"]["RateToWorkerConcurrency"]
    for rate in params["NotionRate"]["AllowedValues"]:
        want = max(2, min(int(rate), 10))
        check(int(mapping[str(rate)]["Concurrency"]) == want, f"rate {rate} -> concurrency {want}")
    rev = res["ReaperFunction"]["Properties"]["Events"]["FinalizeQueue"]
    check(rev["Properties"]["Queue"] == {"Fn::GetAtt": ["FinalizeQueue", "Arn"]}, "reaper is triggered by the finalize queue")
    check(rev["Properties"]["ScalingConfig"]["MaximumConcurrency"] >= 2, "reaper MaximumConcurrency >= 2")

    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]): e["Properties"].get("Auth", {}).get("Authorizer")
              for e in res["ApiFunction"]["Properties"]["Events"].values()}
    check(routes == {("POST", "/syncs"): None, ("GET", "/syncs"): None, ("GET", "/syncs/{id}"): None,
                     ("POST", "/webhooks/notion"): "NONE", ("GET", "/webhooks/notion/pending"): None,
                     ("POST", "/webhooks/notion/confirm"): None}, f"api routes {routes}")
    auth = res["HttpApi"]["Properties"]["Auth"]
    check(auth == {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}, "HTTP API defaults to IAM auth")

    for rule, kind in [("FullSyncRule", "full"), ("IncrementalSyncRule", "incremental")]:
        tgt = res[rule]["Properties"]["Targets"]
        check(len(tgt) == 1 and tgt[0]["Arn"] == {"Fn::GetAtt": ["PlannerFunction", "Arn"]}
              and json.loads(tgt[0]["Input"]) == {"kind": kind}, f"{rule} invokes the planner with kind {kind}")
        check("Condition" in res[rule], f"{rule} can be switched off")

    # No "*" anywhere in a resource of an IAM statement.
    for logical, r in res.items():
        if r["Type"] != "AWS::IAM::Role":
            continue
        for pol in r["Properties"]["Policies"]:
            for st in pol["PolicyDocument"]["Statement"]:
                rs = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                check(all("*" not in json.dumps(x) for x in rs), f"{logical}/{st.get('Sid')} has no '*' resource")
                acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                check(all("*" not in a for a in acts), f"{logical}/{st.get('Sid')} has no wildcard action")


# ------------------------------------------------------------------------------------------------
STRIP_TYPES = {"AWS::Serverless::Function", "AWS::Serverless::HttpApi", "AWS::Lambda::Permission"}


def derive(t: dict) -> dict:
    """The template without its functions: functions, the HTTP API, invoke permissions and anything
    that refers to them go; the rules stay, without their (function) targets."""
    t = json.loads(json.dumps(t))
    t.pop("Transform", None)
    t.pop("Globals", None)
    res = t["Resources"]
    removed = {k for k, v in res.items() if v["Type"] in STRIP_TYPES}
    for k in removed:
        del res[k]
    for v in res.values():
        if v["Type"] == "AWS::Events::Rule":
            v["Properties"].pop("Targets", None)
    while True:
        more = {k for k, v in res.items() if refs(v) & removed}
        if not more:
            break
        removed |= more
        for k in more:
            del res[k]
    t["Outputs"] = {k: v for k, v in t.get("Outputs", {}).items() if not refs(v) & removed}
    return t


def localstack() -> None:
    import boto3
    from botocore.config import Config

    url = os.environ.get("LOCALSTACK_URL") or f"http://127.0.0.1:{os.environ.get('LOCALSTACK_PORT', '4566')}"
    stack = os.environ.get("TEMPLATE_CHECK_STACK", "notion-es-tplcheck")
    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
              config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=60))
    cfn, sqs, sm, ev = (boto3.client(s, **kw) for s in ("cloudformation", "sqs", "secretsmanager", "events"))

    t = load_template()
    derived = derive(t)
    out_dir = ROOT / ".local" / "template-check"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "derived.json").write_text(json.dumps(derived, indent=2))
    kept = sorted(derived["Resources"])
    print(f"derived template: {len(kept)} resources ({', '.join(kept)})", flush=True)
    check(not any(v["Type"].startswith("AWS::Serverless") for v in derived["Resources"].values()), "no SAM resources left")
    for must in ("WorkQueue", "WorkDeadLetterQueue", "FinalizeQueue", "FinalizeDeadLetterQueue", "Secret",
                 "FullSyncRule", "IncrementalSyncRule"):
        check(must in derived["Resources"], f"derived template keeps {must}")

    secret_name = f"{stack}/secrets"

    def cleanup() -> None:
        try:
            cfn.describe_stacks(StackName=stack)
            cfn.delete_stack(StackName=stack)
            wait(cfn, stack, {"DELETE_COMPLETE"}, gone_ok=True)
        except cfn.exceptions.ClientError:
            pass
        # A rolled-back or deleted stack can leave its secret behind; the next create then fails.
        try:
            sm.delete_secret(SecretId=secret_name, ForceDeleteWithoutRecovery=True)
        except sm.exceptions.ResourceNotFoundException:
            pass
        for rule in (f"{stack}-full-sync", f"{stack}-incremental-sync"):  # strays of earlier LocalStack updates
            try:
                ev.delete_rule(Name=rule, Force=True)
            except ev.exceptions.ResourceNotFoundException:
                pass

    def deploy_and_verify(params: dict, max_receive: int, full: str | None, incremental: str | None) -> None:
        cleanup()
        t0 = time.time()
        cfn.create_stack(StackName=stack, TemplateBody=json.dumps(derived),
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
                         Capabilities=["CAPABILITY_IAM"])
        status = wait(cfn, stack, {"CREATE_COMPLETE"})
        check(status == "CREATE_COMPLETE", f"stack created with {params} ({status}, {time.time() - t0:.1f} s)")
        try:
            if status != "CREATE_COMPLETE":
                for e in cfn.describe_stack_events(StackName=stack)["StackEvents"][:15]:
                    print("   ", e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", ""))
                return
            verify(t, stack, cfn, sqs, sm, ev, max_receive, full, incremental)
        finally:
            cleanup()

    # Defaults; then (a new stack: LocalStack's updates do not remove resources whose condition
    # turned false) a schedule switched off, another one changed, maxReceiveCount changed.
    search = "http://127.0.0.1:9200"
    deploy_and_verify({"SearchUrl": search}, 3, "rate(1 day)", "rate(5 minutes)")
    deploy_and_verify({"SearchUrl": search, "FullSyncSchedule": "cron(0 3 * * ? *)", "IncrementalSyncSchedule": "off",
                       "MaxReceiveCount": "5"}, 5, "cron(0 3 * * ? *)", None)
    try:
        sm.describe_secret(SecretId=secret_name)
        check(False, "secret removed after the check")
    except sm.exceptions.ResourceNotFoundException:
        check(True, "stack and secret removed after the check")


def wait(cfn, stack: str, done: set[str], gone_ok: bool = False, timeout: float = 180) -> str:
    deadline = time.time() + timeout
    status = "?"
    while time.time() < deadline:
        try:
            status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        except cfn.exceptions.ClientError:
            if gone_ok:
                return "DELETE_COMPLETE"
            raise
        if status in done or status.endswith("_FAILED") or status.endswith("ROLLBACK_COMPLETE"):
            return status
        time.sleep(0.5)
    return status


def verify(t, stack, cfn, sqs, sm, ev, max_receive: int, full: str | None, incremental: str | None) -> None:
    phys = {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
    res = t["Resources"]
    env = t["Globals"]["Function"]["Environment"]["Variables"]

    def attrs(url):
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    # What the functions are configured with (the Globals env, resolved against this stack).
    env_work = phys[env["WORK_QUEUE_URL"]["Ref"]]
    env_finalize = phys[env["FINALIZE_QUEUE_URL"]["Ref"]]
    env_secret = phys[env["SECRET_ID"]["Fn::If"][1]["Ref"]]

    for logical, name, dlq_name, output in [("WorkQueue", "work", "work-dlq", "WorkQueueUrl"),
                                            ("FinalizeQueue", "finalize", "finalize-dlq", "FinalizeQueueUrl")]:
        url = sqs.get_queue_url(QueueName=f"{stack}-{name}")["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=f"{stack}-{dlq_name}")["QueueUrl"]
        check(url == phys[logical], f"queue {stack}-{name} is the stack's {logical}")
        check(outputs.get(output) == url, f"output {output} = {url}")
        a, da = attrs(url), attrs(dlq_url)
        redrive = json.loads(a["RedrivePolicy"])
        check(redrive["deadLetterTargetArn"] == da["QueueArn"], f"{stack}-{name} redrives to {stack}-{dlq_name}")
        check(int(redrive["maxReceiveCount"]) == max_receive, f"{stack}-{name} maxReceiveCount {max_receive} "
              f"(= MAX_RECEIVE_COUNT the functions get)")
        fn = "WorkerFunction" if logical == "WorkQueue" else "ReaperFunction"
        vt = int(a["VisibilityTimeout"])
        check(vt >= 6 * res[fn]["Properties"]["Timeout"], f"{stack}-{name} visibility timeout {vt} >= 6 x {fn} timeout")
    check(env_work.endswith(f"/{stack}-work"), "WORK_QUEUE_URL resolves to the work queue")
    check(env_finalize.endswith(f"/{stack}-finalize"), "FINALIZE_QUEUE_URL resolves to the finalize queue")

    desc = sm.describe_secret(SecretId=env_secret)
    check(desc["Name"] == f"{stack}/secrets", f"SECRET_ID resolves to secret {desc['Name']}")
    check(outputs.get("SecretArn") == desc["ARN"], "output SecretArn is the secret's ARN")
    value = json.loads(sm.get_secret_value(SecretId=env_secret)["SecretString"])
    check(set(value) == {"notion_token", "search_username", "search_password", "api_key"}, f"secret keys {sorted(value)}")
    check(len(value.get("api_key", "")) == 48 and value["api_key"].isalnum(), "api_key generated (48 alphanumerics)")
    design = DESIGN.read_text()
    check(all(f'"{k}"' in design for k in value), "every secret key is one DESIGN.md documents")

    for rule, schedule in [("full-sync", full), ("incremental-sync", incremental)]:
        try:
            r = ev.describe_rule(Name=f"{stack}-{rule}")
            check(schedule is not None and r["ScheduleExpression"] == schedule and r["State"] == "ENABLED",
                  f"rule {stack}-{rule}: {r['ScheduleExpression']} {r['State']} (want {schedule or 'none'})")
        except ev.exceptions.ResourceNotFoundException:
            check(schedule is None, f"rule {stack}-{rule} absent (want {schedule or 'none'})")


if __name__ == "__main__":
    what = sys.argv[1:] or ["static"]
    for w in what:
        {"static": static, "localstack": localstack}[w]()
    print(f"{len(failures)} failed" if failures else "all template checks passed")
    sys.exit(1 if failures else 0)
