"""Undo: reverse what one remediating run applied, as the `undo` state machine's steps.

What the run applied comes from its change record (written by the report function from the run's approved plan and
what it applied), never from the report's text. Each applied action becomes one or more *facets*: one attribute of
one resource, with the value before the run and the value the run left. Several actions on one attribute (event-loop
disables, then re-enables its rule) collapse into one facet: the first action's before, the last action's after.

- `read_handler`: validate the input, read the change record, compute the lock (the playbook's own lock key).
- `inspect_handler` (phase "plan"): read each facet now; propose the inverse of each facet still at the run's value,
  say which drifted (and what the resource holds now) and which cannot be undone. Phase "verify": read each
  approved facet again and say whether it is back at its before-state.
- `apply_handler`: apply the approved inverses only, each idempotent.
- `report_handler`: e-mail the report and mark the change record as undone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from shared import clock, mail, run_metrics
from shared.aws import client, table
from shared.errors import InvalidInput
from shared.schemas import errors

logger = Logger()

CONFIG_DEFAULTS = {"approvalTimeoutSeconds": 3600, "lockTtlSeconds": 7200, "settlePollSeconds": 20, "settleTimeoutSeconds": 900}
STOP_ERROR = "Undone"
# Why an action has no inverse, by API.
IRREVERSIBLE = {
    "servicequotas:RequestServiceQuotaIncrease": "A Service Quotas increase request cannot be withdrawn through the API "
    "(an approved increase stays); ask AWS Support if it must be cancelled.",
    "states:StopExecution": "A stopped execution cannot be resumed where it stopped; start a new one with its input if "
    "the work is still needed.",
}


class ResourceBusy(Exception):
    """A resource is still being updated (Lambda LastUpdateStatus InProgress, DynamoDB table not ACTIVE): AWS would
    refuse the inverse now (ResourceConflictException, ResourceInUseException). The state machine retries later."""


# ------------------------------------------------------------------------------------------------ facets
def _facets_of(action: dict[str, Any]) -> list[dict[str, Any]]:
    """The attributes one applied action changed: {kind, target, before, after, action} and what identifies it."""
    api, target = action["api"], action["target"]
    before, after = action.get("before") or {}, action.get("after") or {}

    def facet(kind: str, old: Any, new: Any, **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "target": target, "before": old, "after": new, "action": action["id"]} | extra

    if api == "lambda:PutFunctionConcurrency":
        return [facet("reserved-concurrency", before.get("reservedConcurrentExecutions"), after["reservedConcurrentExecutions"])]
    if api == "lambda:UpdateFunctionConfiguration":
        return [facet("memory", before["memorySize"], after["memorySize"])]
    if api == "dynamodb:UpdateTable":
        return [facet("billing-mode", before, {"billingMode": after["billingMode"]})]
    if api == "s3:PutBucketLifecycleConfiguration":
        # The rule set is written whole: its before is every rule the bucket had, its after every rule the run wrote.
        return [facet("lifecycle-rules", before["lifecycleRules"], after["rules"])]
    if api == "logs:PutRetentionPolicy":
        return [facet("log-retention", before.get("retentionInDays"), after["retentionInDays"])]
    if api == "iam:PutRolePolicy":
        return [
            facet(
                "role-policy-statement",
                False,
                True,
                policyName=after["policyName"],
                statement=action["statement"],
                document=before.get("document"),
            )
        ]
    if api == "kms:PutKeyPolicy":
        return [facet("key-policy-statement", False, True, statement=action["statement"], document=before.get("document"))]
    if api in ("events:DisableRule", "events:EnableRule"):
        return [facet("rule-state", before["state"], after["state"])]
    if api == "events:PutRule":
        return [facet("rule-pattern", before["eventPattern"], after["eventPattern"])]
    if api == "cloudwatch:PutMetricAlarm":
        return [facet("alarm", False, True)]
    if api == "states:StartExecution":
        arn = after.get("executionArn") or _execution_arn(target, str(after.get("execution") or after.get("name") or ""))
        return [facet("started-execution", "not started", "RUNNING", target=arn)]
    return []


def _execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def facets(actions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(facets to consider, actions with no inverse) for the applied actions, in the order they were applied."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    irreversible = []
    for action in actions:
        if action["api"] in IRREVERSIBLE:
            irreversible.append({"action": action["id"], "description": action["description"], "reason": IRREVERSIBLE[action["api"]]})
            continue
        found = _facets_of(action)
        if not found:
            irreversible.append(
                {"action": action["id"], "description": action["description"], "reason": f"undo knows no inverse of {action['api']}"}
            )
        for item in found:
            key = (item["kind"], item["target"], json.dumps(item.get("statement"), sort_keys=True))
            if key in merged:
                merged[key] |= {"after": item["after"], "actions": [*merged[key]["actions"], item["action"]]}
            else:
                merged[key] = item | {"actions": [item["action"]]}
    return list(merged.values()), irreversible


# ------------------------------------------------------------------------------------------------ reading a facet now
def _statements(document: Any) -> list[Any]:
    listed = (document or {}).get("Statement", [])
    return listed if isinstance(listed, list) else [listed]


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _role_policy(iam: Any, role: str, policy_name: str) -> dict[str, Any] | None:
    try:
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchEntity":
            return None
        raise
    if isinstance(document, str):  # the SDK decodes it; the raw API returns it URL-encoded
        from urllib.parse import unquote

        document = json.loads(unquote(document))
    return dict(document)


def read(facet: dict[str, Any], aws: Callable[[str], Any]) -> Any:
    """The facet's value now, comparable with its before and after."""
    kind, target = facet["kind"], facet["target"]
    if kind == "reserved-concurrency":
        return aws("lambda").get_function_concurrency(FunctionName=target).get("ReservedConcurrentExecutions")
    if kind == "memory":
        return aws("lambda").get_function_configuration(FunctionName=target)["MemorySize"]
    if kind == "billing-mode":
        described = aws("dynamodb").describe_table(TableName=target)["Table"]
        mode = (described.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        if mode == "PAY_PER_REQUEST":
            return {"billingMode": mode}
        throughput = described.get("ProvisionedThroughput") or {}
        indexes = {
            index["IndexName"]: {
                "readCapacityUnits": (index.get("ProvisionedThroughput") or {}).get("ReadCapacityUnits"),
                "writeCapacityUnits": (index.get("ProvisionedThroughput") or {}).get("WriteCapacityUnits"),
            }
            for index in described.get("GlobalSecondaryIndexes") or []
        }
        return {
            "billingMode": mode,
            "readCapacityUnits": throughput.get("ReadCapacityUnits"),
            "writeCapacityUnits": throughput.get("WriteCapacityUnits"),
        } | ({"indexes": indexes} if indexes else {})
    if kind == "lifecycle-rules":
        try:
            return aws("s3").get_bucket_lifecycle_configuration(Bucket=target).get("Rules", [])
        except ClientError as error:
            if error.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
                return []
            raise
    if kind == "log-retention":
        # every page: DescribeLogGroups may answer an empty page with a nextToken
        pages = aws("logs").get_paginator("describe_log_groups").paginate(logGroupNamePrefix=target)
        group = next((g for page in pages for g in page["logGroups"] if g["logGroupName"] == target), None)
        return group.get("retentionInDays") if group else None
    if kind == "role-policy-statement":
        document = _role_policy(aws("iam"), target, facet["policyName"])
        return any(_same(s, facet["statement"]) for s in _statements(document))
    if kind == "key-policy-statement":
        document = json.loads(aws("kms").get_key_policy(KeyId=target, PolicyName="default")["Policy"])
        return any(_same(s, facet["statement"]) for s in _statements(document))
    if kind == "rule-state":
        return aws("events").describe_rule(Name=target)["State"]
    if kind == "rule-pattern":
        return json.loads(aws("events").describe_rule(Name=target)["EventPattern"])
    if kind == "alarm":
        return bool(aws("cloudwatch").describe_alarms(AlarmNames=[target])["MetricAlarms"])
    if kind == "started-execution":
        try:
            return aws("stepfunctions").describe_execution(executionArn=target)["status"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return "not started"
            raise
    raise ValueError(f"unknown facet kind {kind!r}")


def updating(facet: dict[str, Any], aws: Callable[[str], Any]) -> bool:
    """Whether AWS is still making an earlier change to the facet's resource (the SDK waiters' retry states)."""
    if facet["kind"] == "memory":
        return aws("lambda").get_function_configuration(FunctionName=facet["target"]).get("LastUpdateStatus") == "InProgress"
    if facet["kind"] == "billing-mode":
        return aws("dynamodb").describe_table(TableName=facet["target"])["Table"]["TableStatus"] != "ACTIVE"
    return False


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "reserved-concurrency": lambda f: (
        f"Restore reserved concurrency of {f['target']} from {f['after']} to "
        + ("no reservation (delete it)" if f["before"] is None else str(f["before"]))
    ),
    "memory": lambda f: f"Restore {f['target']}'s memory from {f['after']} MB to {f['before']} MB",
    "billing-mode": lambda f: (
        f"Switch {f['target']} back to provisioned capacity ({f['before'].get('readCapacityUnits')} RCU / "
        f"{f['before'].get('writeCapacityUnits')} WCU); AWS limits how often a table may switch capacity mode"
    ),
    "lifecycle-rules": lambda f: (
        f"Restore the lifecycle rules of {f['target']} to the {len(f['before'])} rule(s) it had before the run ("
        + ", ".join(str(rule.get("ID")) for rule in f["before"])
        + "), removing the rules the run added"
        if f["before"]
        else f"Delete the lifecycle configuration of {f['target']} (it had no lifecycle rules before the run)"
    ),
    "log-retention": lambda f: (
        f"Restore retention of {f['target']} from {f['after']} days to "
        + ("never expire (delete the retention policy)" if f["before"] is None else f"{f['before']} days")
    ),
    "role-policy-statement": lambda f: (
        f"Remove the statement the playbook added ({f['statement'].get('Action')} on "
        f"{f['statement'].get('Resource')}) from the inline policy {f['policyName']} of role {f['target']}"
    ),
    "key-policy-statement": lambda f: (
        f"Remove the statement the playbook added ({f['statement'].get('Action')}) from the key policy of {f['target']}"
    ),
    "rule-state": lambda f: f"{'Enable' if f['before'] == 'ENABLED' else 'Disable'} the rule {f['target']} again (it was {f['before']})",
    "rule-pattern": lambda f: f"Restore the event pattern of {f['target']} to {_show(f['before'])}",
    "alarm": lambda f: f"Delete the alarm {f['target']} the playbook created",
    "started-execution": lambda f: f"Stop the execution {f['target']} the playbook started",
}
INVERSE_API = {
    "reserved-concurrency": lambda f: "lambda:DeleteFunctionConcurrency" if f["before"] is None else "lambda:PutFunctionConcurrency",
    "memory": lambda f: "lambda:UpdateFunctionConfiguration",
    "billing-mode": lambda f: "dynamodb:UpdateTable",
    "lifecycle-rules": lambda f: "s3:PutBucketLifecycleConfiguration" if f["before"] else "s3:DeleteBucketLifecycle",
    "log-retention": lambda f: "logs:DeleteRetentionPolicy" if f["before"] is None else "logs:PutRetentionPolicy",
    "role-policy-statement": lambda f: "iam:PutRolePolicy",
    "key-policy-statement": lambda f: "kms:PutKeyPolicy",
    "rule-state": lambda f: "events:EnableRule" if f["before"] == "ENABLED" else "events:DisableRule",
    "rule-pattern": lambda f: "events:PutRule",
    "alarm": lambda f: "cloudwatch:DeleteAlarms",
    "started-execution": lambda f: "states:StopExecution",
}
# Facets that are inverted last: a rule's pattern before its state, so it is never enabled with the wrong pattern.
ORDER = ["alarm", "started-execution", "rule-pattern", "rule-state"]


def inverse_plan(record: dict[str, Any], aws: Callable[[str], Any]) -> dict[str, Any]:
    """The inverse plan for the run's change record: an action per facet still at the run's value."""
    found, irreversible = facets(record["actions"])
    actions, drifted, already = [], [], []
    for number, facet in enumerate(found):
        now = read(facet, aws)
        if _same(now, facet["before"]):
            already.append(f"{facet['target']}: already at its before-state ({_show(now)}); nothing to undo.")
            continue
        if facet["kind"] == "started-execution" and now != "RUNNING":
            irreversible.append(
                {
                    "action": facet["action"],
                    "description": f"The execution {facet['target']} the run started",
                    "reason": f"has finished ({now}); a run cannot be un-run.",
                }
            )
            continue
        if not _same(now, facet["after"]):
            drifted.append(
                f"{facet['target']} ({facet['kind']}) is not undone: it changed since the run set {_show(facet['after'])}; it now holds {_show(now)}."
            )
            continue
        actions.append(
            {
                "id": f"undo_{number}_{facet['kind'].replace('-', '_')}",
                "api": INVERSE_API[facet["kind"]](facet),
                "target": facet["target"],
                "description": DESCRIBE[facet["kind"]](facet) + ".",
                "before": {"value": now},
                "after": {"value": facet["before"]},
                "facet": facet,
                "rollback": None,
            }
        )
    actions.sort(key=lambda a: ORDER.index(a["facet"]["kind"]) if a["facet"]["kind"] in ORDER else -1)
    evidence = [
        f"Run {record['execution']} ({record['playbook']}, {record.get('outcome')}) applied: "
        + "; ".join(a["description"] for a in record["actions"]),
        *already,
        *drifted,
    ]
    cannot = [f"Cannot be undone: {item['description']} {item['reason']}" for item in irreversible]
    summary = (
        f"Undo {len(actions)} change(s) of {record['playbook']} run {record['execution'].rsplit(':', 1)[-1]}"
        if actions
        else f"Nothing of {record['playbook']} run {record['execution'].rsplit(':', 1)[-1]} can be undone"
    )
    return {
        "case": "undo" if actions else "nothing-to-undo",
        "summary": summary + (f"; {len(drifted)} drifted since and left as they are." if drifted else "."),
        "actions": actions,
        "evidence": evidence,
        "recommendations": cannot,
        "drifted": drifted,
    }


# ------------------------------------------------------------------------------------------------ applying an inverse
def _without_statement(document: dict[str, Any] | None, statement: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """The policy without the playbook's statement. When nothing else changed since, that is the document as it was
    before the run, in its own key order (the playbook's write may have reordered it)."""
    document = json.loads(json.dumps(document or {"Version": "2012-10-17", "Statement": []}))
    document["Statement"] = [s for s in _statements(document) if not _same(s, statement)]
    return before if before is not None and _same(document, before) else document


def apply_inverse(facet: dict[str, Any], aws: Callable[[str], Any]) -> dict[str, Any]:
    """Put the facet back at its before-state (idempotent: running it twice changes nothing the second time)."""
    kind, target, before = facet["kind"], facet["target"], facet["before"]
    if kind == "reserved-concurrency":
        if before is None:
            aws("lambda").delete_function_concurrency(FunctionName=target)
        else:
            aws("lambda").put_function_concurrency(FunctionName=target, ReservedConcurrentExecutions=before)
    elif kind == "memory":
        aws("lambda").update_function_configuration(FunctionName=target, MemorySize=before)
    elif kind == "billing-mode":
        # Back to provisioned, every global secondary index needs its own throughput again.
        indexes = [
            {
                "Update": {
                    "IndexName": name,
                    "ProvisionedThroughput": {
                        "ReadCapacityUnits": units["readCapacityUnits"],
                        "WriteCapacityUnits": units["writeCapacityUnits"],
                    },
                }
            }
            for name, units in (before.get("indexes") or {}).items()
        ]
        aws("dynamodb").update_table(
            TableName=target,
            BillingMode="PROVISIONED",
            ProvisionedThroughput={"ReadCapacityUnits": before["readCapacityUnits"], "WriteCapacityUnits": before["writeCapacityUnits"]},
            **({"GlobalSecondaryIndexUpdates": indexes} if indexes else {}),
        )
    elif kind == "lifecycle-rules":
        if before:
            aws("s3").put_bucket_lifecycle_configuration(Bucket=target, LifecycleConfiguration={"Rules": before})
        else:
            aws("s3").delete_bucket_lifecycle(Bucket=target)
    elif kind == "log-retention":
        if before is None:
            aws("logs").delete_retention_policy(logGroupName=target)
        else:
            aws("logs").put_retention_policy(logGroupName=target, retentionInDays=before)
    elif kind == "role-policy-statement":
        iam = aws("iam")
        remaining = _without_statement(_role_policy(iam, target, facet["policyName"]), facet["statement"], facet.get("document"))
        if remaining["Statement"]:
            iam.put_role_policy(RoleName=target, PolicyName=facet["policyName"], PolicyDocument=json.dumps(remaining))
        else:  # the playbook created the policy for this statement: the before-state is no policy at all
            iam.delete_role_policy(RoleName=target, PolicyName=facet["policyName"])
    elif kind == "key-policy-statement":
        kms = aws("kms")
        current = json.loads(kms.get_key_policy(KeyId=target, PolicyName="default")["Policy"])
        restored = _without_statement(current, facet["statement"], facet.get("document"))
        kms.put_key_policy(KeyId=target, PolicyName="default", Policy=json.dumps(restored))
    elif kind == "rule-state":
        events = aws("events")
        (events.enable_rule if before == "ENABLED" else events.disable_rule)(Name=target)
    elif kind == "rule-pattern":
        events = aws("events")
        rule = events.describe_rule(Name=target)
        # PutRule replaces the whole rule: keep what the run did not change (state, description, bus).
        kept = {key: rule[key] for key in ("State", "Description", "EventBusName", "RoleArn") if key in rule}
        events.put_rule(Name=target, EventPattern=json.dumps(before), **kept)
    elif kind == "alarm":
        aws("cloudwatch").delete_alarms(AlarmNames=[target])
    elif kind == "started-execution":
        aws("stepfunctions").stop_execution(executionArn=target, error=STOP_ERROR, cause="Stopped by the undo of the run that started it.")
    else:
        raise ValueError(f"unknown facet kind {kind!r}")
    return {"at": clock.iso(clock.now())}


# billing-mode switches AWS refuses (too many switches in 24 hours) end the undo escalated, with AWS's words.
LIMIT_ERRORS = {"LimitExceededException", "ValidationException"}


def apply_approved(plan: dict[str, Any], approved: list[str], aws: Callable[[str], Any]) -> dict[str, Any]:
    """Apply the approved inverses; none while a resource is still being updated (the state machine retries), so a
    retry never applies one inverse twice."""
    busy = [a["target"] for a in plan["actions"] if a["id"] in approved and updating(a["facet"], aws)]
    if busy:
        raise ResourceBusy(f"still being updated by AWS: {', '.join(busy)}")
    applied: dict[str, Any] = {}
    refused: dict[str, str] = {}
    for action in plan["actions"]:
        if action["id"] not in approved:
            continue
        try:
            applied[action["id"]] = apply_inverse(action["facet"], aws)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if action["facet"]["kind"] == "billing-mode" and code in LIMIT_ERRORS:
                refused[action["id"]] = f"{code}: {error.response['Error'].get('Message', '')}"
                continue
            raise
    return {"applied": applied, "refused": refused}


def is_restored(facet: dict[str, Any], now: Any) -> bool:
    """Back at the before-state; for an execution the run started, stopped is as far back as AWS allows."""
    if facet["kind"] == "started-execution":
        return now != "RUNNING"
    return _same(now, facet["before"])


def verify(
    plan: dict[str, Any], approved: list[str], applied: dict[str, Any], config: dict[str, Any], aws: Callable[[str], Any]
) -> dict[str, Any]:
    """Whether every approved facet is back; an inverse AWS is still making counts only once it finished, and while
    one is being made (until settleTimeoutSeconds after the inverses were applied) `settling` asks to check again."""
    checks = []
    for action in plan["actions"]:
        if action["id"] not in approved:
            continue
        now = read(action["facet"], aws)
        busy = updating(action["facet"], aws)
        restored = is_restored(action["facet"], now) and not busy
        checks.append({"action": action["id"], "target": action["target"], "restored": restored, "updating": busy, "now": now})
    started = [clock.parse(item["at"]) for item in applied.values() if isinstance(item, dict) and item.get("at")]
    deadline = min(started) + timedelta(seconds=config["settleTimeoutSeconds"]) if started else clock.now()
    restored = bool(checks) and all(c["restored"] for c in checks)
    settling = not restored and any(c["updating"] for c in checks) and clock.now() < deadline
    return {"restored": restored, "settling": settling, "checks": checks}


# ------------------------------------------------------------------------------------------------ handlers
def read_record(changes: Any, raw: Any, execution: str, started_at: str, config_defaults: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput(f"input must be a JSON object, got {type(raw).__name__}")
    problems = errors("undo.input.json", raw)
    if problems:
        raise InvalidInput("; ".join(problems))
    undone = raw["executionArn"]
    item = changes.get_item(Key={"execution": undone}, ConsistentRead=True).get("Item")
    if item is None:
        raise InvalidInput(f"no change record for {undone}: that run applied nothing, or is not a run of this stack's playbooks")
    config = config_defaults | raw.get("config", {})
    now = clock.parse(started_at)
    expires = now + timedelta(seconds=config["lockTtlSeconds"])
    record = {
        "execution": item["execution"],
        "playbook": item["playbook"],
        "outcome": item.get("outcome"),
        "at": item["at"],
        "approvedBy": list(item.get("approvedBy") or []),
        "decisionRecord": item.get("decisionRecord") or None,
        "actions": json.loads(item["actions"]),
    }
    return {
        "playbook": "undo",
        "execution": execution,
        "target": {"execution": undone, "playbook": item["playbook"]},
        "dryRun": bool(raw.get("dryRun", False)),
        "trigger": {"kind": "console"},
        "config": config,
        "record": record,
        # The remediating playbook's own lock on the same resource: undo and a new run of the playbook exclude each other.
        "lock": {"key": item["resource"], "now": clock.iso(now), "expiresAt": clock.iso(expires), "ttl": str(int(expires.timestamp()))},
    }


def _config_defaults() -> dict[str, Any]:
    config = dict(CONFIG_DEFAULTS)
    if os.environ.get("APPROVAL_TIMEOUT_SECONDS"):
        config["approvalTimeoutSeconds"] = int(os.environ["APPROVAL_TIMEOUT_SECONDS"])
    return config


@logger.inject_lambda_context
def read_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        result = read_record(
            table(os.environ["CHANGES_TABLE"]), event.get("input"), event["execution"], event["startedAt"], _config_defaults()
        )
    except InvalidInput as problem:
        logger.warning("undo input rejected", extra={"problem": str(problem)})
        raise
    logger.info("change record read", extra={"undoing": result["target"]["execution"], "actions": len(result["record"]["actions"])})
    return result


@logger.inject_lambda_context
def inspect_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("phase") == "verify":
        return verify(
            event["plan"],
            list(event.get("approved") or []),
            event.get("applied") or {},
            CONFIG_DEFAULTS | (event.get("config") or {}),
            client,
        )
    return inverse_plan(event["record"], client)


@logger.inject_lambda_context
def apply_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = apply_approved(event["plan"], list(event.get("approved") or []), client)
    logger.info("inverses applied", extra={"applied": sorted(result["applied"]), "refused": sorted(result["refused"])})
    return result


HEADLINES = {
    "undone": "Undone: every approved change is back at its before-state",
    "no-action": "Nothing to undo",
    "rejected": "Undo rejected; nothing changed",
    "expired": "Undo approval expired; nothing changed",
    "dry-run": "Dry run of the undo; nothing changed",
    "already-running": "A playbook run or another undo holds this resource; try again when it ends",
    "paused": "Paused: the brake is engaged; nothing was changed",
    "escalated": "Escalated: not everything could be put back; a person has to look",
    "failed": "Undo failed",
}


def build_report(execution: str, state: dict[str, Any]) -> dict[str, Any]:
    outcome = state.get("outcome", "failed")
    plan = state.get("plan") or {}
    applying = state.get("applying") or {}
    applied = applying.get("applied") or {}
    actions = plan.get("actions", [])
    error = state.get("error") or {}
    return {
        "playbook": "undo",
        "execution": execution,
        "outcome": outcome,
        "headline": HEADLINES.get(outcome, outcome),
        "target": state.get("target"),
        "summary": plan.get("summary"),
        "evidence": plan.get("evidence", []),
        "proposed": [a["description"] for a in actions],
        "applied": [a["description"] for a in actions if a["id"] in applied],
        "refused": [
            f"{a['description']} AWS refused: {applying['refused'][a['id']]}" for a in actions if a["id"] in (applying.get("refused") or {})
        ],
        "verification": state.get("verification"),
        "cannotUndo": plan.get("recommendations", []),
        "approvedBy": sorted((state.get("approval") or {}).get("approvers", [])),
        "note": (state.get("safety") or {}).get("note") or None,
        "error": f"{error.get('Error', 'Error')}: {error.get('Cause', '')}" if outcome == "failed" and error else None,
    }


def report_text(report: dict[str, Any]) -> tuple[str, str]:
    undone = (report.get("target") or {}).get("execution", "")
    subject = mail.subject(f"[{report['outcome']}] undo {undone.rsplit(':', 1)[-1]}")
    lines = [f"{report['headline']}.", ""] + ([report["summary"], ""] if report.get("summary") else [])
    lines += [report["note"], ""] if report.get("note") else []
    for title, items in (
        ("What the run did and what holds now", report["evidence"]),
        ("Proposed", report["proposed"]),
        ("Applied", report["applied"]),
        ("Refused by AWS", report["refused"]),
        ("Not undone", report["cannotUndo"]),
    ):
        if items:
            lines += [f"{title}:", *[f"  - {item}" for item in items], ""]
    if report.get("verification"):
        lines += [f"Verification: {json.dumps(report['verification'], sort_keys=True, default=str)}", ""]
    if report.get("approvedBy"):
        lines += [f"Approved by: {', '.join(report['approvedBy'])}", ""]
    if report.get("error"):
        lines += [f"Error: {report['error']}", ""]
    lines += [f"Undoing: {undone}", f"Execution: {report['execution']}"]
    return subject, "\n".join(lines)


@logger.inject_lambda_context
def report_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = build_report(event["execution"], event["state"])
    if report["applied"]:
        table(os.environ["CHANGES_TABLE"]).update_item(
            Key={"execution": report["target"]["execution"]},
            UpdateExpression="SET undoneBy = list_append(if_not_exists(undoneBy, :none), :me)",
            ExpressionAttributeValues={":none": [], ":me": [{"execution": report["execution"], "outcome": report["outcome"]}]},
        )
    subject, body = report_text(report)
    client("sns").publish(TopicArn=os.environ["NOTIFICATION_TOPIC_ARN"], Subject=subject, Message=body)
    run_metrics.publish("undo", report["outcome"], event["state"], clock.now())
    logger.info("undo report sent", extra={"outcome": report["outcome"], "undoing": (report.get("target") or {}).get("execution")})
    return report
