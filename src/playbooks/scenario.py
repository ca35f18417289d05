"""Incident scenarios: the world before, the trigger, injected faults, how the world reacts, and expectations.

The format is documented in docs/scenarios.md and checked by schemas/scenario.json.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from . import etl_world, project
from .local.account import LocalAccount, Settings
from .local.aws import logs as aws_logs
from .local.aws import servicequotas as aws_servicequotas
from .local.aws import sfn as aws_sfn
from .local.recorder import PRINCIPAL, RECORDER, Call, Fault

PIPELINE_ROLE = "lambda-execution-role"
STATES_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@dataclass
class Scenario:
    playbook: str
    name: str
    path: Path
    data: dict[str, Any]

    @property
    def description(self) -> str:
        return str(self.data.get("description", ""))

    @property
    def decision(self) -> str:
        """The decision as one string; a scenario answering several approvals differently reads "approve,reject"."""
        return ",".join("approve" if isinstance(entry, dict) else str(entry) for entry in self.decisions)

    @property
    def decisions(self) -> list[Any]:
        """One decision per approval request, in order (the last one answers any further requests)."""
        value = self.data.get("decision", "approve")
        return list(value) if isinstance(value, list) else [value]

    @property
    def approved_actions(self) -> list[str] | None:
        """The actions a partial approval selects (`decision: {approve: [ids]}`); None approves the whole plan."""
        partial = next((entry for entry in self.decisions if isinstance(entry, dict)), None)
        return list(partial["approve"]) if partial else None

    @property
    def expect(self) -> dict[str, Any]:
        return dict(self.data.get("expect", {}))

    @property
    def parameters(self) -> dict[str, str]:
        """Template parameters the scenario's account is deployed with."""
        return {str(k): str(v) for k, v in self.data.get("parameters", {}).items()}

    def settings(self) -> Settings:
        account = self.data.get("world", {}).get("account", {})
        return Settings(
            concurrency_limit=int(account.get("concurrencyLimit", 1000)),
            iam_propagation_s=float(account.get("iamPropagationSeconds", 60)),
            iam_simulator_delay_s=float(account.get("iamSimulatorDelaySeconds", 0)),
        )


def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads((project.SCHEMAS / "scenario.json").read_text()))


def load(playbook_id: str, name_or_path: str) -> Scenario:
    path = Path(name_or_path)
    if not path.suffix:
        path = project.playbook(playbook_id).scenario_dir / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in project.playbook(playbook_id).scenario_dir.glob("*.yaml")))
        raise project.ProjectError(f"no scenario {name_or_path!r} for {playbook_id}; known: {known}")
    try:
        data = project.load_yaml(path)
    except yaml.YAMLError as error:
        raise project.ProjectError(f"{path.name} is not valid YAML: {error}") from None
    problems = [f"{'.'.join(map(str, e.absolute_path)) or 'scenario'}: {e.message}" for e in _validator().iter_errors(data)]
    if problems:
        raise project.ProjectError(f"{path}: " + "; ".join(problems))
    return Scenario(playbook_id, path.stem, path, data)


def scenarios(playbook_id: str) -> list[Scenario]:
    return [load(playbook_id, str(path)) for path in sorted(project.playbook(playbook_id).scenario_dir.glob("*.yaml"))]


# ------------------------------------------------------------------------------------------------ world
def build_world(account: LocalAccount, world: dict[str, Any], now: datetime) -> None:
    """Create the pipeline resources the scenario describes, as they were before the incident.

    Each key of `world` has a builder in WORLD_BUILDERS (in that order); a new kind of resource is a new builder.
    """
    token = PRINCIPAL.set("world")
    try:
        account.client("iam").create_role(RoleName=PIPELINE_ROLE, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
        for key, builder in WORLD_BUILDERS.items():
            if key in world:
                builder(account, world[key], now)
    finally:
        PRINCIPAL.reset(token)


def put_functions(account: LocalAccount, functions: list[dict[str, Any]], now: datetime) -> None:
    role_arn = f"arn:aws:iam::{account.account_id}:role/{PIPELINE_ROLE}"
    lam = account.client("lambda")
    for function in functions:
        lam.create_function(
            FunctionName=function["name"],
            Runtime="python3.12",
            Role=role_arn,
            Handler="app.handler",
            Code={"S3Bucket": "local-artifacts", "S3Key": "functions.zip"},
            MemorySize=int(function.get("memory", 512)),
            Timeout=int(function.get("timeout", 60)),
        )
        if "reservedConcurrency" in function:
            lam.put_function_concurrency(FunctionName=function["name"], ReservedConcurrentExecutions=int(function["reservedConcurrency"]))


def put_metrics(account: LocalAccount, metrics: list[dict[str, Any]], now: datetime) -> None:
    cloudwatch = account.client("cloudwatch")
    for metric in metrics:
        dimensions = [{"Name": k, "Value": v} for k, v in metric.get("dimensions", {}).items()]
        data = [
            {
                "MetricName": metric["metric"],
                "Dimensions": dimensions,
                "Timestamp": now - timedelta(minutes=int(ago)),
                "Value": float(value),
            }
            for ago, value in metric["values"].items()
        ]
        for start in range(0, len(data), 500):
            cloudwatch.put_metric_data(Namespace=metric["namespace"], MetricData=data[start : start + 500])


def put_logs(account: LocalAccount, logs: list[dict[str, Any]], now: datetime) -> None:
    client = account.client("logs")
    for group in logs:
        name = group["group"]
        # the pipeline functions' groups exist before the stack does (prerequisites.py); others are created here
        with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
            client.create_log_group(logGroupName=name)
        client.create_log_stream(logGroupName=name, logStreamName="local")
        events = []
        for ago, count in group.get("counts", {}).items():
            base = now - timedelta(minutes=int(ago))
            events += [
                {"timestamp": int((base + timedelta(seconds=i % 60)).timestamp() * 1000), "message": group.get("message", "REPORT")}
                for i in range(int(count))
            ]
        events += [
            {"timestamp": int((now - timedelta(minutes=int(e.get("minutesAgo", 1)))).timestamp() * 1000), "message": e["message"]}
            for e in group.get("events", [])
        ]
        events.sort(key=lambda event: event["timestamp"])
        for start in range(0, len(events), 5000):
            client.put_log_events(logGroupName=name, logStreamName="local", logEvents=events[start : start + 5000])


def put_locks(account: LocalAccount, locks: list[dict[str, Any]], now: datetime) -> None:
    """Playbook locks left by other runs (held, or expired after a crash)."""
    table = account.resources["LocksTable"]
    for lock in locks:
        expires = now + timedelta(minutes=int(lock["expiresInMinutes"]))
        item = {
            "pk": {"S": lock["key"]},
            "execution": {"S": lock.get("execution", "arn:aws:states:us-east-1:123456789012:execution:other:run")},
            "expiresAt": {"S": expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
            "ttl": {"N": str(int(expires.timestamp()))},
        }
        account.client("dynamodb").put_item(TableName=table, Item=item)


def put_brake(account: LocalAccount, state: str, now: datetime) -> None:
    """The stack's brake as an operator left it (`playbooks brake on` writes "engaged")."""
    name = account.resources["BrakeParameter"]
    account.client("ssm").put_parameter(Name=name, Value=state, Type="String", Overwrite=True)


def put_earlier_changes(account: LocalAccount, changes: list[dict[str, Any]], now: datetime) -> None:
    """Change records of earlier runs, as the report function writes them for a run that applied something."""
    dynamodb = account.client("dynamodb")
    for number, change in enumerate(changes):
        playbook = change["key"].split("#", 1)[0]
        execution = change.get("execution", f"arn:aws:states:{account.region}:{account.account_id}:execution:{playbook}:earlier-{number}")
        at = (now - timedelta(minutes=int(change["minutesAgo"]))).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4] + "Z"
        item = {
            "execution": {"S": execution},
            "resource": {"S": change["key"]},
            "at": {"S": at},
            "playbook": {"S": playbook},
            "outcome": {"S": change.get("outcome", "remediated")},
            "actions": {"S": json.dumps(change.get("actions", []))},
        }
        dynamodb.put_item(TableName=account.resources["ChangesTable"], Item=item)


# ---------------------------------------------------------------- cost-spike: cost, tables, buckets, log groups
def put_costs(account: LocalAccount, costs: dict[str, list[float]], now: datetime) -> None:
    """Daily cost per service for the days before today (the last value is yesterday's), for Cost Explorer."""
    for service, amounts in costs.items():
        for days_ago, amount in enumerate(reversed(amounts), start=1):
            day = (now - timedelta(days=days_ago)).date().isoformat()
            account.costs.setdefault(day, {})[service] = float(amount)


def put_tables(account: LocalAccount, tables: list[dict[str, Any]], now: datetime) -> None:
    """DynamoDB tables with a string partition key (`key`, default pk): provisioned when read/write units are given."""
    dynamodb = account.client("dynamodb")
    for table in tables:
        key = table.get("key", "pk")
        capacity: dict[str, Any] = (
            {"BillingMode": "PAY_PER_REQUEST"}
            if table.get("onDemand") or "read" not in table
            else {
                "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {"ReadCapacityUnits": int(table["read"]), "WriteCapacityUnits": int(table["write"])},
            }
        )
        indexes = [
            {
                "IndexName": index["name"],
                "KeySchema": [{"AttributeName": index["key"], "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
            | (
                {"ProvisionedThroughput": {"ReadCapacityUnits": int(index["read"]), "WriteCapacityUnits": int(index["write"])}}
                if capacity["BillingMode"] == "PROVISIONED"
                else {}
            )
            for index in table.get("indexes", [])
        ]
        attributes = {key} | {index["key"] for index in table.get("indexes", [])}
        dynamodb.create_table(
            TableName=table["name"],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            **capacity,
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
        )


def put_buckets(account: LocalAccount, buckets: list[dict[str, Any]], now: datetime) -> None:
    """Buckets with their objects, lifecycle rules, and their size and object count (S3 storage metrics)."""
    s3 = account.client("s3")
    cloudwatch = account.client("cloudwatch")
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket["name"])
        for key in bucket.get("objects", []):
            s3.put_object(Bucket=bucket["name"], Key=key, Body=b"id,amount\n1,42\n")
        if bucket.get("eventBridge"):
            s3.put_bucket_notification_configuration(Bucket=bucket["name"], NotificationConfiguration={"EventBridgeConfiguration": {}})
        rules = list(bucket.get("lifecycleRules", []))
        if bucket.get("intelligentTiering"):
            rules.append(
                {
                    "ID": "existing",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
                }
            )
        if rules:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket["name"], LifecycleConfiguration={"Rules": rules})
        if "sizeGb" not in bucket:
            continue
        name = [{"Name": "BucketName", "Value": bucket["name"]}]
        cloudwatch.put_metric_data(
            Namespace="AWS/S3",
            MetricData=[
                {
                    "MetricName": "BucketSizeBytes",
                    "Dimensions": [*name, {"Name": "StorageType", "Value": "StandardStorage"}],
                    "Timestamp": now - timedelta(hours=12),
                    "Value": bucket.get("sizeGb", 0) * 1024**3,
                },
                {
                    "MetricName": "NumberOfObjects",
                    "Dimensions": [*name, {"Name": "StorageType", "Value": "AllStorageTypes"}],
                    "Timestamp": now - timedelta(hours=12),
                    "Value": float(bucket.get("objectCount", len(bucket.get("objects", [])))),
                },
            ],
        )


def put_log_groups(account: LocalAccount, groups: list[dict[str, Any]], now: datetime) -> None:
    """Retention, stored bytes and age of log groups (created here unless `logs` already made them)."""
    logs = account.client("logs")
    for group in groups:
        if not logs.describe_log_groups(logGroupNamePrefix=group["name"])["logGroups"]:
            logs.create_log_group(logGroupName=group["name"])
        if "retentionDays" in group:
            logs.put_retention_policy(logGroupName=group["name"], retentionInDays=int(group["retentionDays"]))
        aws_logs.set_log_group_history(group["name"], int(group.get("storedGb", 0) * 1024**3), int(group.get("ageDays", 90)))


# ------------------------------------------------------------------------------------------------ playbook: access-denied
def put_roles(account: LocalAccount, roles: list[dict[str, Any]], now: datetime) -> None:
    """Roles (the pipeline's role exists already) with their inline and attached policies."""
    iam = account.client("iam")
    for role in roles:
        name = role["name"]
        if name != PIPELINE_ROLE:
            iam.create_role(RoleName=name, Path=role.get("path", "/"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
        for policy_name, document in role.get("inlinePolicies", {}).items():
            iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
        for policy_name, document in role.get("managedPolicies", {}).items():
            arn = iam.create_policy(PolicyName=policy_name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)


def put_bucket_policies(account: LocalAccount, buckets: list[dict[str, Any]], now: datetime) -> None:
    s3 = account.client("s3")
    existing = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    for bucket in buckets:
        if bucket["bucket"] not in existing:
            s3.create_bucket(Bucket=bucket["bucket"])
        s3.put_bucket_policy(Bucket=bucket["bucket"], Policy=json.dumps(bucket["policy"]))


def put_kms_keys(account: LocalAccount, keys: list[dict[str, Any]], now: datetime) -> None:
    from .local.aws.kms import create_key_with_id

    for key in keys:
        arn = create_key_with_id(account, key["id"], json.dumps(key["policy"]), key.get("description", ""))
        if "alias" in key:
            account.client("kms").create_alias(AliasName=f"alias/{key['alias']}", TargetKeyId=arn)


def put_cloudtrail_events(account: LocalAccount, events: list[dict[str, Any]], now: datetime) -> None:
    """Management events in CloudTrail's event history, as cloudtrail:LookupEvents returns them."""
    for number, event in enumerate(events):
        at = now - timedelta(minutes=int(event.get("minutesAgo", 1)))
        role, session = event["role"], event.get("session", "session")
        record = {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "arn": f"arn:aws:sts::{account.account_id}:assumed-role/{role}/{session}",
                "accountId": account.account_id,
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account.account_id}:role/{role}", "userName": role}
                },
            },
            "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": event["eventSource"],
            "eventName": event["eventName"],
            "awsRegion": account.region,
            "errorCode": event.get("errorCode"),
            "errorMessage": event.get("errorMessage"),
            "resources": [{"ARN": arn, "accountId": account.account_id} for arn in event.get("resources", [])],
        }
        account.cloudtrail_events.append(
            {
                "EventId": f"{number:08d}-0000-0000-0000-000000000000",
                "EventName": event["eventName"],
                "ReadOnly": "true",
                "EventTime": at,
                "EventSource": event["eventSource"],
                "Username": session,
                "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": arn} for arn in event.get("resources", [])],
                "CloudTrailEvent": json.dumps({k: v for k, v in record.items() if v is not None}),
            }
        )


FAILING_WORKFLOW = {
    "Comment": "Stands in for the pipeline's workflow: this run failed on the denied call.",
    "StartAt": "Write the output",
    "States": {"Write the output": {"Type": "Fail", "Error": "AccessDenied", "Cause": "not authorized to perform the write"}},
}


def put_failed_executions(account: LocalAccount, executions: list[dict[str, Any]], now: datetime) -> None:
    """Pipeline executions that failed (the state machine is created if missing, with a workflow that fails, or with
    the scenario's `definition`, whose calls are then authorized under the pipeline's role as AWS would)."""
    sfn = account.client("stepfunctions")
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    role_arn = f"arn:aws:iam::{account.account_id}:role/{PIPELINE_ROLE}"
    for execution in executions:
        name = execution.get("stateMachine", "etl-workflow")
        if name not in machines:
            definition = json.dumps(FAILING_WORKFLOW)
            if "definition" in execution:
                definition = (project.ROOT / execution["definition"]).read_text().replace("${AccountId}", account.account_id)
                definition = definition.replace("${Region}", account.region)
                account.pipeline_principals[name] = role_arn
            machines[name] = sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn)["stateMachineArn"]
        arn = sfn.start_execution(
            stateMachineArn=machines[name], name=execution["name"], input=json.dumps(etl_world.execution_input(execution))
        )["executionArn"]
        deadline = time.monotonic() + 10
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the pipeline execution {arn} did not finish")
            time.sleep(0.01)


# ------------------------------------------------------------------ event-loop: buckets, the workflow, its rule
WORKFLOW_DEFINITION = {"StartAt": "Process", "States": {"Process": {"Type": "Pass", "End": True}}}
WORKFLOW_ROLE = "etl-workflow-role"


def s3_object_event(account: LocalAccount, bucket: str, key: str, when: datetime) -> dict[str, Any]:
    """The 'Object Created' event S3 sends to EventBridge, as the workflow receives it for input."""
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{bucket}/{key}/{when.isoformat()}")),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account.account_id,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": account.region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 1024}, "reason": "PutObject"},
    }


def put_workflows(account: LocalAccount, machines: list[dict[str, Any]], now: datetime) -> None:
    """Pipeline state machines and their RUNNING executions, started by the objects given (keys cycle).

    Thousands of RUNNING executions are created dormant (no executor thread each): scenario set-up, not the playbook.
    """
    iam = account.client("iam")
    iam.create_role(RoleName=WORKFLOW_ROLE, AssumeRolePolicyDocument=json.dumps(STATES_TRUST))
    sfn = account.client("stepfunctions")
    for machine in machines:
        arn = sfn.create_state_machine(
            name=machine["name"],
            definition=json.dumps(WORKFLOW_DEFINITION),
            roleArn=f"arn:aws:iam::{account.account_id}:role/{WORKFLOW_ROLE}",
        )["stateMachineArn"]
        batch: list[tuple[str, str, datetime]] = []
        for group in machine.get("running", []):
            count, keys, spread = int(group["count"]), list(group["keys"]), int(group.get("withinMinutes", 10))
            # The world as it stood when the trigger fired: even its newest execution has had time to show up in
            # ListExecutions (the eventually consistent listing is what a reaction's executions meet), so a run's
            # outcome does not depend on how long its retries happened to wait.
            for i in range(count):
                started = now - timedelta(seconds=aws_sfn.LIST_CONSISTENCY_S + spread * 60 * (count - i) / count)
                key = keys[i % len(keys)].replace("{n}", f"{i:06d}")  # "{n}" makes every key distinct
                event = s3_object_event(account, group["bucket"], key, started)
                batch.append((f"{group.get('prefix', 'run')}-{len(batch):06d}", json.dumps(event), started))
        aws_sfn.add_dormant_executions(arn, batch)


def put_rules(account: LocalAccount, rules: list[dict[str, Any]], now: datetime) -> None:
    """EventBridge rules with their pattern and state, targeting a state machine by name."""
    events = account.client("events")
    for rule in rules:
        events.put_rule(
            Name=rule["name"],
            EventPattern=json.dumps(rule["pattern"]),
            State=rule.get("state", "ENABLED"),
            Description=rule.get("description", ""),
        )
        if "target" in rule:
            target = f"arn:aws:states:{account.region}:{account.account_id}:stateMachine:{rule['target']}"
            role = f"arn:aws:iam::{account.account_id}:role/{WORKFLOW_ROLE}"
            events.put_targets(Rule=rule["name"], Targets=[{"Id": "workflow", "Arn": target, "RoleArn": role}])


def delete_alarms(account: LocalAccount, names: list[str], now: datetime) -> None:
    """Alarms the template created that someone deleted before the incident."""
    account.client("cloudwatch").delete_alarms(AlarmNames=names)


def put_log_retention_policies(account: LocalAccount, policies: list[dict[str, Any]], now: datetime) -> None:
    for policy in policies:
        aws_logs.put_account_retention_policy(policy["name"], policy["retentionDays"], policy.get("prefix", ""))


def put_quota_requests(account: LocalAccount, requests: list[dict[str, Any]], now: datetime) -> None:
    for request in requests:
        aws_servicequotas.open_request(
            request.get("serviceCode", "lambda"),
            request["quotaCode"],
            request["desiredValue"],
            request.get("status", "PENDING"),
            request.get("caseId", ""),
        )


WORLD_BUILDERS: dict[str, Callable[[LocalAccount, Any, datetime], None]] = {
    "functions": put_functions,
    "metrics": put_metrics,
    "logs": put_logs,
    "locks": put_locks,
    "brake": put_brake,
    "earlierChanges": put_earlier_changes,
    # cost-spike and execution-stuck: the pipeline's data stores (before the workflow that uses them)
    "costs": put_costs,
    "buckets": put_buckets,
    "tables": put_tables,
    "logGroups": put_log_groups,
    "logRetentionPolicies": put_log_retention_policies,
    "quotaRequests": put_quota_requests,
}

# ------ execution-stuck: scripted functions, the pipeline's workflow and its executions (in this order)
WORLD_BUILDERS |= {
    "behaviours": etl_world.put_behaviours,
    "stateMachines": etl_world.put_state_machines,
    "executions": etl_world.put_executions,
    "roles": put_roles,
    "bucketPolicies": put_bucket_policies,
    "kmsKeys": put_kms_keys,
    "cloudtrail": put_cloudtrail_events,
    "failedExecutions": put_failed_executions,
    # event-loop
    "workflows": put_workflows,
    "rules": put_rules,
    "deletedAlarms": delete_alarms,
}


def install_faults(faults: list[dict[str, Any]]) -> None:
    for fault in faults:
        RECORDER.faults.append(
            Fault(
                api=fault["api"],
                error=fault["error"],
                status=int(fault.get("status", 400)),
                times=int(fault.get("times", 1)),
                after=int(fault.get("after", 0)),
                principal=fault.get("principal"),
                state=fault.get("state"),
            )
        )


def start_reaction_executions(account: LocalAccount, executions: list[dict[str, Any]]) -> None:
    """Executions the world starts in reaction (e.g. an object in the processed bucket starts the workflow again), one
    millisecond apart in the order given; one that has already ended closes now, after the others started."""
    now = datetime.now(UTC)
    closing: list[tuple[str, str]] = []
    number = 0
    for execution in executions:
        arn = f"arn:aws:states:{account.region}:{account.account_id}:stateMachine:{execution['stateMachine']}"
        batch: list[tuple[str, str, datetime]] = []
        for i in range(int(execution.get("count", 1))):
            number += 1
            when = now - timedelta(seconds=int(execution.get("startedSecondsAgo", 0))) + timedelta(milliseconds=number)
            event = s3_object_event(account, execution["bucket"], execution["key"].replace("{n}", f"{i:06d}"), when)
            name = f"reaction-{uuid.uuid4().hex[:8]}-{number}"
            batch.append((name, json.dumps(event), when))
            if execution.get("status", "RUNNING") != "RUNNING":
                closing.append((f"{arn.replace(':stateMachine:', ':execution:')}:{name}", execution["status"]))
        aws_sfn.add_dormant_executions(arn, batch)
    for execution_arn, status in closing:
        number += 1
        aws_sfn.close_dormant_execution(execution_arn, status, now + timedelta(milliseconds=number))


def install_reactions(account: LocalAccount, reactions: list[dict[str, Any]]) -> None:
    """After a call the scenario names succeeds, change the world (e.g. throttles continue or stop)."""

    def listener(call: Call) -> None:
        for reaction in reactions:
            if reaction["after"] != call.api or reaction.get("_done") or reaction.get("by", call.principal) != call.principal:
                continue
            reaction["_done"] = True
            token = PRINCIPAL.set("world")
            try:
                put_metrics(account, reaction.get("metrics", []), datetime.now(UTC))
                if "brake" in reaction:
                    put_brake(account, reaction["brake"], datetime.now(UTC))
                for role in reaction.get("inlinePolicies", []):
                    account.client("iam").put_role_policy(
                        RoleName=role["role"], PolicyName=role["name"], PolicyDocument=json.dumps(role["document"])
                    )
                start_reaction_executions(account, reaction.get("executions", []))
            finally:
                PRINCIPAL.reset(token)

    if reactions:
        RECORDER.listeners.append(listener)


def trigger_payload(account: LocalAccount, scenario: Scenario, dry_run: bool) -> tuple[str, Any]:
    """('event', event) for EventBridge delivery or ('input', input) for a console start."""
    trigger = scenario.data["trigger"]
    if "alarm" in trigger:
        return "event", account.alarm_event(trigger["alarm"])
    if "event" in trigger:
        return "event", json.loads((project.ROOT / trigger["event"]).read_text())
    if "notification" in trigger:
        return "notification", trigger["notification"]
    payload = dict(trigger["input"])
    if dry_run:
        payload["dryRun"] = True
    return "input", payload
