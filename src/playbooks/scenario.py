"""Incident scenarios: the world before, the trigger, injected faults, how the world reacts, and expectations.

The format is documented in docs/scenarios.md and checked by schemas/scenario.json.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from . import project
from .local import moto_gaps
from .local.account import LocalAccount, Settings
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
        return ",".join(self.decisions)

    @property
    def decisions(self) -> list[str]:
        """One decision per approval request, in order (the last one answers any further requests)."""
        value = self.data.get("decision", "approve")
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    @property
    def expect(self) -> dict[str, Any]:
        return dict(self.data.get("expect", {}))

    def settings(self) -> Settings:
        account = self.data.get("world", {}).get("account", {})
        return Settings(concurrency_limit=int(account.get("concurrencyLimit", 1000)))


def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads((project.SCHEMAS / "scenario.json").read_text()))


def load(playbook_id: str, name_or_path: str) -> Scenario:
    path = Path(name_or_path)
    if not path.suffix:
        path = project.playbook(playbook_id).scenario_dir / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in project.playbook(playbook_id).scenario_dir.glob("*.yaml")))
        raise project.ProjectError(f"no scenario {name_or_path!r} for {playbook_id}; known: {known}")
    data = project.load_yaml(path)
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


# ------------------------------------------------------------------ event-loop: buckets, the workflow, its rule
WORKFLOW_DEFINITION = {"StartAt": "Process", "States": {"Process": {"Type": "Pass", "End": True}}}
WORKFLOW_ROLE = "etl-workflow-role"


def put_buckets(account: LocalAccount, buckets: list[dict[str, Any]], now: datetime) -> None:
    """Buckets, with `eventBridge: true` where the bucket sends its events to EventBridge."""
    s3 = account.client("s3")
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket["name"])
        if bucket.get("eventBridge"):
            s3.put_bucket_notification_configuration(Bucket=bucket["name"], NotificationConfiguration={"EventBridgeConfiguration": {}})


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


def put_state_machines(account: LocalAccount, machines: list[dict[str, Any]], now: datetime) -> None:
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
            for i in range(count):
                started = now - timedelta(seconds=spread * 60 * (count - i) / count)
                key = keys[i % len(keys)].replace("{n}", f"{i:06d}")  # "{n}" makes every key distinct
                event = s3_object_event(account, group["bucket"], key, started)
                batch.append((f"{group.get('prefix', 'run')}-{len(batch):06d}", json.dumps(event), started))
        moto_gaps.add_dormant_executions(arn, batch)


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


WORLD_BUILDERS: dict[str, Callable[[LocalAccount, Any, datetime], None]] = {
    "functions": put_functions,
    "metrics": put_metrics,
    "logs": put_logs,
    # event-loop
    "buckets": put_buckets,
    "stateMachines": put_state_machines,
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
            )
        )


def install_reactions(account: LocalAccount, reactions: list[dict[str, Any]]) -> None:
    """After a call the scenario names succeeds, change the world (e.g. throttles continue or stop)."""

    def listener(call: Call) -> None:
        for reaction in reactions:
            if reaction["after"] != call.api or reaction.get("_done"):
                continue
            reaction["_done"] = True
            token = PRINCIPAL.set("world")
            try:
                put_metrics(account, reaction.get("metrics", []), datetime.now(UTC))
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
    payload = dict(trigger["input"])
    if dry_run:
        payload["dryRun"] = True
    return "input", payload
