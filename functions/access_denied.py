"""IAM access denied playbook: from an error message to the least permission that fixes it (runbook "IAM Permission
Errors (Access Denied)").

One-call reads (CloudTrail, the policy simulator, the bucket and key policies) and the changes themselves
(PutRolePolicy, PutKeyPolicy) are direct AWS SDK tasks in the state machine. This module holds the logic: finding the
latest denied line in the pipeline's logs, reading the message, the guards, reading the role's policies, the plan,
the merge that keeps a change idempotent, and the verification.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

import denied_message
from shared import clock
from shared.aws import client, kept_items
from shared.errors import PlaybookError

logger = Logger()

FIX_POLICY_NAME = "etl-playbooks-access-fix"
LOG_FILTER_PATTERN = '?AccessDenied ?"is not authorized to perform"'
DENIED_LINE = re.compile(r"AccessDenied|is not authorized to perform", re.IGNORECASE)
MAX_LOG_PAGES = 20
# Never granted, whatever a message says: identity and account administration, and KMS key administration.
FORBIDDEN_SERVICES = {"iam", "sts", "organizations", "account", "sso", "identitystore"}
# IAM: a role's inline policies together may hold at most this many characters, white space not counted ("IAM and
# AWS STS quotas"); KMS: a key policy is at most this many bytes ("Key policy format"). A change past either fails.
ROLE_INLINE_POLICY_QUOTA = 10240
KEY_POLICY_MAX_BYTES = 32768
# KMS actions that use a key (the only ones the playbook grants); everything else of KMS administers keys.
KMS_USE_ACTIONS = {
    "decrypt",
    "encrypt",
    "generatedatakey",
    "generatedatakeywithoutplaintext",
    "generatedatakeypair",
    "generatedatakeypairwithoutplaintext",
    "reencryptfrom",
    "reencryptto",
    "describekey",
}
# What the playbook's roles call on the pipeline's key policy: KMS lets their IAM grants count only where the key
# policy enables IAM policies for these actions.
KEY_POLICY_ACTIONS = ("kms:GetKeyPolicy", "kms:PutKeyPolicy")
# Denials no identity statement can lift: a person has to look at the policy that denies.
NOT_IDENTITY_REASONS = {
    "identity-deny": "an explicit deny in an identity-based policy (the playbook never edits or overrides a deny)",
    "permissions-boundary": "the role's permissions boundary",
    "session-policy": "the session policy of the assumed role",
    "service-control-policy": "a service control policy of the organization",
    "resource-control-policy": "a resource control policy of the organization",
    "vpc-endpoint-policy": "a VPC endpoint policy",
}
RECOMMENDATIONS = [
    "Validate policies before deployment with IAM Access Analyzer (policy validation and unused-access findings).",
    "Grant the pipeline's permissions in its SAM template with policy templates scoped to its resources, then remove "
    f"the playbook's '{FIX_POLICY_NAME}' inline policy so the template stays the source of truth.",
    "Add integration tests that exercise the pipeline's IAM permissions in CI/CD.",
]


# ---------------------------------------------------------------------------------------------- configuration
def _names(variable: str) -> list[str]:
    return [name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()]


def settings() -> dict[str, Any]:
    return {
        "pipelineRoles": _names("PIPELINE_ROLE_NAMES"),
        "protectedRoles": _names("PROTECTED_ROLE_NAMES"),
        "stackName": os.environ.get("STACK_NAME", ""),
    }


# ---------------------------------------------------------------------------------------------- find the message
def find_latest_denied_line(logs: Any, log_groups: list[str], start: datetime, end: datetime) -> dict[str, Any]:
    """The most recent access-denied log line of the pipeline's functions in [start, end], or message None."""
    latest: dict[str, Any] | None = None
    for group in log_groups:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "startTime": int(start.timestamp() * 1000),
            "endTime": int(end.timestamp() * 1000),
            "filterPattern": LOG_FILTER_PATTERN,
        }
        try:
            for _ in range(MAX_LOG_PAGES):
                page = logs.filter_log_events(**kwargs)
                for event in page.get("events", []):
                    if DENIED_LINE.search(event["message"]) and (latest is None or event["timestamp"] >= latest["timestamp"]):
                        latest = {"message": event["message"], "logGroup": group, "timestamp": event["timestamp"]}
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except logs.exceptions.ResourceNotFoundException:
            continue
    if latest is None:
        return {"message": None, "source": "logs", "searched": log_groups}
    return {
        "message": latest["message"],
        "source": "logs",
        "logGroup": latest["logGroup"],
        "at": clock.iso(datetime.fromtimestamp(latest["timestamp"] / 1000, tz=start.tzinfo)),
        "searched": log_groups,
    }


# ---------------------------------------------------------------------------------------------- guards
def action_refusal(action: str) -> str | None:
    """Why `action` may never be granted by the playbook (None if it may)."""
    service, _, name = action.partition(":")
    if "*" in action or "?" in action:
        return f"{action} is a wildcard action"
    if service.lower() in FORBIDDEN_SERVICES:
        return f"{action} administers identities or the account"
    if service.lower() == "kms" and name.lower() not in KMS_USE_ACTIONS:
        return f"{action} administers KMS keys"
    return None


def resource_refusal(resource: str) -> str | None:
    """Why `resource` may never be a statement's Resource: '*' and wildcards other than an S3 bucket's '/*'."""
    if resource == "*" or not resource.startswith("arn:"):
        return f"{resource!r} is not one resource"
    body = resource.removesuffix("/*") if resource.startswith("arn:aws") and ":s3:::" in resource else resource
    if "*" in body or "?" in body:
        return f"{resource} contains a wildcard"
    return None


def role_refusal(principal: dict[str, Any], account_id: str, config: dict[str, Any]) -> str | None:
    role = principal.get("roleName")
    if principal["kind"] != "role" or not role:
        return f"the denied principal {principal['arn']} is not a role; the playbook only adds permissions to roles"
    if principal["accountId"] != account_id:
        return f"the denied principal belongs to account {principal['accountId']}, not this one ({account_id})"
    if role in config["protectedRoles"]:
        return f"the role {role} is on the protected list; the playbook never changes it"
    if role.startswith("AWSServiceRole") or (config["stackName"] and role.startswith(config["stackName"] + "-")):
        return f"the role {role} is a service-linked role or one of the playbooks' own roles; the playbook never changes it"
    if role not in config["pipelineRoles"]:
        return f"the role {role} is not one of the pipeline's roles ({', '.join(config['pipelineRoles'])})"
    return None


def read_message(message: str | None, account_id: str, config: dict[str, Any], since: str) -> dict[str, Any]:
    """The parsed message plus whether the playbook may examine the role at all (`actionable`) and why not."""
    if message is None:
        return {"ok": False, "actionable": False, "problem": "no access-denied line was found in the pipeline's logs"}
    try:
        parsed = denied_message.parse(message)
    except denied_message.Unparseable as problem:
        return {"ok": False, "actionable": False, "problem": f"the message cannot be read: {problem}", "message": message[:1000]}
    refusal = role_refusal(parsed["principal"], account_id, config) or action_refusal(parsed["action"])
    result = parsed | {"ok": True, "actionable": refusal is None, "message": message[:1000], "since": since}
    if refusal:
        result["refusal"] = refusal
    else:
        result["roleName"] = parsed["principal"]["roleName"]
    return result


# ---------------------------------------------------------------------------------------------- policies
def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | dict) else list(value or [])


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def statement_covers(statement: dict[str, Any], action: str, resource: str) -> bool:
    """Whether the statement's Action/NotAction and Resource/NotResource take in `action` on `resource`."""
    if "Action" in statement:
        if not any(_glob(p, action, ignore_case=True) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(p, action, ignore_case=True) for p in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        return any(_glob(p, resource) for p in _as_list(statement["Resource"]))
    if "NotResource" in statement:
        return not any(_glob(p, resource) for p in _as_list(statement["NotResource"]))
    return True


def principal_values(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    return [str(v) for v in _as_list((principal or {}).get("AWS"))] if isinstance(principal, dict) else []


def names_principal(statement: dict[str, Any], role_arn: str, session_arn: str, account_id: str) -> bool:
    """Whether a resource policy statement's Principal takes in the role (directly, by its session, or everyone)."""
    wanted = {"*", role_arn, session_arn}
    return any(value in wanted or _glob(value, session_arn) for value in principal_values(statement))


def names_account(statement: dict[str, Any], account_id: str) -> bool:
    return any(value == account_id or value.endswith(f":iam::{account_id}:root") for value in principal_values(statement))


def statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        document = json.loads(document) if document else {}
    return [s for s in _as_list((document or {}).get("Statement")) if isinstance(s, dict)]


def resource_policy_denies(
    document: Any, action: str, resource: str, role_arn: str, session_arn: str, account_id: str
) -> list[dict[str, Any]]:
    """Deny statements of a bucket or key policy that take in the role's call (conditions are quoted, not judged)."""
    return [
        s
        for s in statements(document)
        if s.get("Effect") == "Deny"
        and statement_covers(s, action, resource)
        and (names_principal(s, role_arn, session_arn, account_id) or names_account(s, account_id))
    ]


def key_policy_grant(document: Any, action: str, key_arn: str, role_arn: str, session_arn: str, account_id: str) -> str | None:
    """'direct' if the key policy allows the role the action, 'account' if it delegates to IAM policies, else None."""
    allows = [s for s in statements(document) if s.get("Effect") == "Allow" and statement_covers(s, action, key_arn)]
    if any(names_principal(s, role_arn, session_arn, account_id) and "Condition" not in s for s in allows):
        return "direct"
    if any(names_account(s, account_id) for s in allows):
        return "account"
    return None


def enables_iam_policies(document: Any, action: str, key_arn: str, account_id: str) -> bool:
    """Whether the key policy lets IAM policies allow `action` on the key: an Allow naming the account for it."""
    return any(
        s.get("Effect") == "Allow" and names_account(s, account_id) and statement_covers(s, action, key_arn) for s in statements(document)
    )


def enable_iam_statement(account_id: str) -> dict[str, Any]:
    """The key-policy statement that lets the playbook's IAM grants read and extend the key policy."""
    return {
        "Sid": "EnableIamPoliciesForKeyPolicyChanges",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": list(KEY_POLICY_ACTIONS),
        "Resource": "*",
    }


def policy_characters(document: Any) -> int:
    """A policy's size as IAM's quota counts it: compact JSON, no white space between tokens."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


def policy_text(document: Any) -> str:
    """The exact text the playbook writes (PutRolePolicy, PutKeyPolicy) and records for rollback."""
    return json.dumps(document, sort_keys=True)


def identity_statement(action: str, resource: str) -> dict[str, Any]:
    """The least statement that allows `action` on `resource`; an S3 object becomes that bucket's objects."""
    if ":s3:::" in resource and "/" in resource:
        resource = resource.split("/", 1)[0] + "/*"
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def key_statement(action: str, key_arn: str, role_arn: str) -> dict[str, Any]:
    role = role_arn.rsplit("/", 1)[-1]
    sid = "EtlPlaybooksAccessFix" + re.sub(r"[^A-Za-z0-9]", "", role.title()) + action.split(":", 1)[1]
    return {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": action, "Resource": key_arn}


def _check_statement(statement: dict[str, Any]) -> None:
    """Guards applied to every statement the playbook would write, at plan and again at apply time."""
    problem = action_refusal(str(statement.get("Action", "*"))) or resource_refusal(str(statement.get("Resource", "*")))
    if problem or statement.get("Effect") != "Allow" or not isinstance(statement.get("Action"), str):
        raise PlaybookError(f"refusing to write {json.dumps(statement, sort_keys=True)}: {problem or 'not one allowed action'}")


# ---------------------------------------------------------------------------------------------- diagnose the role
def read_role(iam: Any, role_name: str, fix_policy_name: str) -> dict[str, Any]:
    """The role's ARN and every identity policy it has: inline ones by name, attached ones with their default version."""
    role = iam.get_role(RoleName=role_name)["Role"]
    inline = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for name in page["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            inline.append({"name": name, "document": document})
    attached = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for item in page["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=item["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=item["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
            attached.append({"name": item["PolicyName"], "arn": item["PolicyArn"], "document": document})
    fix = next((p["document"] for p in inline if p["name"] == fix_policy_name), None)
    return {
        "name": role_name,
        "arn": role["Arn"],
        "permissionsBoundary": (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
        "inline": inline,
        "attached": attached,
        "fixPolicy": fix,
    }


def denied_in_cloudtrail(cloudtrail: dict[str, Any], parsed: dict[str, Any]) -> list[dict[str, Any]]:
    """The denied calls of this role and action in the CloudTrail lookup, newest first, as short summaries."""
    role = parsed["principal"]["roleName"]
    found = []
    for event in kept_items(cloudtrail, "Events"):
        try:
            record = json.loads(event.get("CloudTrailEvent") or "{}")
        except ValueError:
            continue
        identity = record.get("userIdentity") or {}
        issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {}).get("userName")
        by_role = issuer == role or f"assumed-role/{role}/" in str(identity.get("arn", ""))
        if not by_role or not str(record.get("errorCode", "")).startswith("AccessDenied"):
            continue
        resources = [r.get("ARN") for r in record.get("resources") or [] if r.get("ARN")]
        found.append(
            {
                "time": record.get("eventTime"),
                "eventSource": record.get("eventSource"),
                "eventName": record.get("eventName"),
                "errorCode": record.get("errorCode"),
                "resources": resources,
            }
        )
    return sorted(found, key=lambda item: str(item["time"]), reverse=True)


def diagnose_identity(iam: Any, parsed: dict[str, Any], cloudtrail: dict[str, Any] | None, fix_policy_name: str) -> dict[str, Any]:
    """The role's policies and the denied call as the rest of the playbook uses it (the resource resolved)."""
    role = read_role(iam, parsed["roleName"], fix_policy_name)
    available = bool(cloudtrail and cloudtrail.get("available"))
    calls = denied_in_cloudtrail(cloudtrail or {}, parsed)[:5] if available else []
    trail = {"available": available, "denied": calls}
    resource = parsed.get("resource")
    resource_from = parsed.get("resourceFrom") if resource else None
    if not resource:
        resource = next((arn for call in calls for arn in call["resources"]), None)
        resource_from = "cloudtrail" if resource else None
    denied: dict[str, Any] = {"action": parsed["action"], "resourceKnown": resource is not None}
    if resource:
        denied |= {"resource": resource, "resourceFrom": resource_from}
        if parsed["service"] == "s3" and ":s3:::" in resource:
            denied["bucket"] = resource.split(":::", 1)[1].split("/", 1)[0]
        if parsed["service"] == "kms" and ":kms:" in resource and ":key/" in resource:
            denied["keyArn"] = resource
    return {"role": role, "denied": denied, "cloudtrail": trail}


# ---------------------------------------------------------------------------------------------- plan
def _plan(case: str, disposition: str, summary: str, evidence: list[str], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "case": case,
        "disposition": disposition,
        "summary": summary,
        "actions": actions or [],
        "evidence": evidence,
        "recommendations": RECOMMENDATIONS if disposition != "no-action" else [],
        "restart": None,
    }


RESTARTABLE = {"FAILED", "TIMED_OUT", "ABORTED"}


def with_restart(result: dict[str, Any], target: dict[str, Any], findings: dict[str, Any], pipeline_state_machine: str) -> dict[str, Any]:
    """Offer to restart the failed pipeline execution the input names, once the fix is in (a separate approval)."""
    if "failedExecutionArn" not in target or result["disposition"] != "remediate":
        return result
    execution = findings.get("failedExecution")
    if not execution:
        error = (findings.get("failedExecutionError") or {}).get("Cause", "")[:300]
        result["evidence"].append(f"The failed execution {target['failedExecutionArn']} could not be read, so it is not restarted: {error}")
        return result
    if not execution["stateMachineArn"].endswith(f":stateMachine:{pipeline_state_machine}") or execution["status"] not in RESTARTABLE:
        result["evidence"].append(
            f"Execution {execution['name']} ({execution['status']}) is not a finished, failed run of {pipeline_state_machine}; not restarted."
        )
        return result
    name = execution["name"][:74] + "-retry"
    # The input (up to 256 KiB) is read by the function that starts the restart, never carried in the playbook's state.
    restart = {"stateMachineArn": execution["stateMachineArn"], "name": name, "inputOf": target["failedExecutionArn"]}
    result["actions"].append(
        {
            "id": "restart_failed_execution",
            "api": "states:StartExecution",
            "target": execution["stateMachineArn"],
            "description": f"After the fix is verified, restart the {execution['status'].lower()} pipeline execution {execution['name']} "
            f"with its original input as {name}.",
            "before": {"execution": target["failedExecutionArn"], "status": execution["status"]},
            "after": {"execution": name, "inputOf": target["failedExecutionArn"]},
            "rollback": None,
        }
    )
    result["restart"] = restart
    return result


def _simulation(findings: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    results = (findings.get("simulation") or {}).get("results") or []
    if not results:
        return None, []
    return str(results[0].get("EvalDecision")), list(results[0].get("MatchedStatements") or [])


def add_identity_statement(role: dict[str, Any], statement: dict[str, Any], policy_name: str) -> dict[str, Any]:
    before = role.get("fixPolicy")
    document = json.loads(json.dumps(before)) if before else {"Version": "2012-10-17", "Statement": []}
    document["Statement"] = [*statements(document)] + ([] if statement in statements(document) else [statement])
    rollback_api = "iam:PutRolePolicy" if before else "iam:DeleteRolePolicy"
    rollback_parameters: dict[str, Any] = {"RoleName": role["name"], "PolicyName": policy_name}
    if before:
        rollback_parameters["PolicyDocument"] = json.dumps(before, sort_keys=True)
    return {
        "id": "add_identity_statement",
        "api": "iam:PutRolePolicy",
        "target": role["name"],
        "description": f"Allow {statement['Action']} on {statement['Resource']} in the inline policy {policy_name} of role {role['name']}.",
        "before": {"policyName": policy_name, "document": before},
        "after": {"policyName": policy_name, "document": document},
        "statement": statement,
        "rollback": {"api": rollback_api, "parameters": rollback_parameters},
    }


def _key_admin_plan(case: str, why: str, statement: dict[str, Any], key_arn: str, account_id: str, evidence: list[str]) -> dict[str, Any]:
    """Escalate a key-policy fix the playbook cannot make, with the exact statement for a key administrator."""
    quoted = json.dumps(statement, sort_keys=True)
    enabling = json.dumps(enable_iam_statement(account_id), sort_keys=True)
    return _plan(
        case,
        "escalate",
        f"{why} Nothing was changed. A key administrator should add this statement to the key policy of {key_arn}: {quoted}. "
        f"To let this playbook make such changes itself after approval, the key policy must also enable IAM policies "
        f"for reading and changing it: {enabling}",
        [*evidence, f"Statement for a key administrator to add to the key policy of {key_arn}: {quoted}"],
    )


def inline_quota_problem(role: dict[str, Any], action: dict[str, Any]) -> str | None:
    """Why the role's inline policies could not take the planned fix policy (None when they can)."""
    policy_name = action["after"]["policyName"]
    others = sum(policy_characters(p["document"]) for p in role["inline"] if p["name"] != policy_name)
    total = others + policy_characters(action["after"]["document"])
    if total <= ROLE_INLINE_POLICY_QUOTA:
        return None
    return (
        f"the inline policies of role {role['name']} would hold {total} characters (white space not counted), over IAM's "
        f"quota of {ROLE_INLINE_POLICY_QUOTA} for all of a role's inline policies together, so PutRolePolicy would fail "
        "with LimitExceeded"
    )


def key_policy_size_problem(action: dict[str, Any]) -> str | None:
    """Why the key policy could not take the planned statement (None when it can)."""
    size = len(policy_text(action["after"]["document"]).encode())
    if size <= KEY_POLICY_MAX_BYTES:
        return None
    return (
        f"the key policy of {action['target']} would be {size} bytes, over KMS's limit of {KEY_POLICY_MAX_BYTES} bytes, "
        "so PutKeyPolicy would fail with LimitExceededException"
    )


def add_key_statement(key_arn: str, key_policy: Any, statement: dict[str, Any]) -> dict[str, Any]:
    before = json.loads(key_policy) if isinstance(key_policy, str) else key_policy
    document = json.loads(json.dumps(before))
    document["Statement"] = [*statements(document)] + ([] if statement in statements(document) else [statement])
    principal = statement["Principal"]["AWS"].rsplit("/", 1)[-1]
    return {
        "id": "add_key_policy_statement",
        "api": "kms:PutKeyPolicy",
        "target": key_arn,
        "description": f"Allow role {principal} {statement['Action']} in the key policy of {key_arn}.",
        "before": {"policyName": "default", "document": before},
        "after": {"policyName": "default", "document": document},
        "statement": statement,
        "rollback": {
            "api": "kms:PutKeyPolicy",
            "parameters": {"KeyId": key_arn, "PolicyName": "default", "Policy": json.dumps(before, sort_keys=True)},
        },
    }


def plan(target: dict[str, Any], findings: dict[str, Any], config: dict[str, Any], policy_name: str = FIX_POLICY_NAME) -> dict[str, Any]:
    parsed = findings["parsed"]
    if not parsed.get("ok"):
        return _plan(
            "unparseable" if "message" in parsed else "no-denied-line",
            "no-action",
            f"Nothing to fix: {parsed['problem']}. Nothing was changed.",
            ([f"Message: {parsed['message']}"] if parsed.get("message") else [])
            + ["Messages the playbook reads: " + "; ".join(denied_message.VARIANTS) + "."],
        )
    principal = parsed["principal"]
    evidence = [
        f"Denied: {principal['arn']} calling {parsed['action']}"
        + (f" on {parsed['resource']}" if parsed.get("resource") else " (no resource named in the message)")
        + f"; reason: {parsed['reason']}.",
    ]
    if not parsed["actionable"]:
        return _plan("refused", "escalate", f"The playbook will not change anything: {parsed['refusal']}.", evidence)
    identity = findings["identity"]
    role, denied, trail = identity["role"], identity["denied"], identity["cloudtrail"]
    evidence.append(
        f"Role {role['arn']}: inline policies {[p['name'] for p in role['inline']] or 'none'}, "
        f"attached policies {[p['name'] for p in role['attached']] or 'none'}"
        + (f", permissions boundary {role['permissionsBoundary']}" if role.get("permissionsBoundary") else "")
        + "."
    )
    if trail["available"]:
        calls = [f"{c['time']} {c['eventName']} {c['errorCode']} {', '.join(c['resources'])}".strip() for c in trail["denied"]]
        evidence.append(
            "Denied calls of this role in CloudTrail: "
            + ("; ".join(calls) if calls else "none (S3 and DynamoDB item calls are data events, not in the event history).")
        )
    else:
        evidence.append("CloudTrail event history could not be read; diagnosed from the message and the policies alone.")
    if not denied["resourceKnown"]:
        return _plan(
            "resource-unknown",
            "escalate",
            f"{role['name']} was denied {parsed['action']}, but neither the message nor CloudTrail names the resource; "
            'the playbook never grants on Resource "*". Find the resource and run the playbook with the full message.',
            evidence,
        )
    resource = denied["resource"]
    if denied.get("resourceFrom") == "cloudtrail":
        evidence.append(f"The resource comes from CloudTrail: {resource}.")
    owner = resource.split(":")[4] if resource.count(":") >= 5 else ""
    if owner and owner != principal["accountId"]:
        return _plan(
            "refused",
            "escalate",
            f"The playbook will not change anything: {resource} belongs to account {owner}; cross-account access needs that "
            "account's resource policy too, which a person has to arrange.",
            evidence,
        )
    if parsed["reason"] in NOT_IDENTITY_REASONS:
        return _plan(
            "denied-outside-identity-policies",
            "escalate",
            f"{parsed['action']} on {resource} is denied by {NOT_IDENTITY_REASONS[parsed['reason']]}; "
            "adding an allow statement cannot fix that. A person has to review that policy.",
            evidence,
        )
    session_arn = principal["arn"]
    account_id = principal["accountId"]
    resource_policy = findings.get("resourcePolicy", {}).get("policy")
    if findings.get("resourcePolicyError"):
        evidence.append(f"The resource policy could not be read: {findings['resourcePolicyError'].get('Cause', '')[:300]}")
    if resource_policy:
        denies = resource_policy_denies(resource_policy, parsed["action"], resource, role["arn"], session_arn, account_id)
        conditional = [s for s in denies if "Condition" in s]
        if conditional and parsed["reason"] != "resource-deny":
            # e.g. the usual deny of requests without TLS: it applies only when its condition holds.
            evidence.append("Conditional deny statements that may apply: " + "; ".join(json.dumps(s, sort_keys=True) for s in conditional))
            denies = [s for s in denies if "Condition" not in s]
        if denies:
            where = f"bucket policy of {denied['bucket']}" if denied.get("bucket") else f"key policy of {denied.get('keyArn', resource)}"
            quoted = "; ".join(json.dumps(s, sort_keys=True) for s in denies)
            return _plan(
                "explicit-deny-in-resource-policy",
                "escalate",
                f"The {where} explicitly denies {parsed['action']} on {resource} to {role['name']}; the playbook never "
                f"changes a deny. Offending statement: {quoted}",
                [*evidence, f"Offending statement in the {where}: {quoted}"],
            )
    if parsed["reason"] == "resource-deny":
        return _plan(
            "explicit-deny-in-resource-policy",
            "escalate",
            f"The message reports an explicit deny in a resource-based policy for {parsed['action']} on {resource}, "
            "but the playbook could not find it in the policy it can read. A person has to review the resource's policies.",
            evidence,
        )
    decision, matched = _simulation(findings)
    if decision:
        evidence.append(f"IAM policy simulator for {parsed['action']} on {resource}: {decision}.")
    if decision == "explicitDeny":
        sources = ", ".join(str(m.get("SourcePolicyId")) for m in matched) or "an identity policy"
        return _plan(
            "explicit-deny-in-identity-policy",
            "escalate",
            f"{sources} of {role['name']} explicitly denies {parsed['action']} on {resource}; the playbook never changes a deny.",
            evidence,
        )
    if denied.get("keyArn"):
        key_arn = denied["keyArn"]
        statement = key_statement(parsed["action"], key_arn, role["arn"])
        _check_statement(statement)
        if findings.get("keyPolicyError"):
            # KMS refused the playbook's own read: the key policy neither names the playbook's role nor enables IAM
            # policies (then the playbook's IAM grants have no effect on the key), or the key is not the pipeline's
            # (the grants' alias condition). Either way the playbook can neither read nor change the key policy.
            cause = str(findings["keyPolicyError"].get("Cause", ""))[:300]
            return _key_admin_plan(
                "key-policy-unreadable",
                f"The playbook may not read the key policy of {key_arn} (KMS: {cause}).",
                statement,
                key_arn,
                account_id,
                evidence,
            )
        grant = key_policy_grant(resource_policy, parsed["action"], key_arn, role["arn"], session_arn, account_id)
        evidence.append(
            f"Key policy of {key_arn}: "
            + {"direct": "allows the role", "account": "delegates to IAM policies"}.get(
                str(grant), "neither allows the role nor delegates to IAM policies"
            )
            + "."
        )
        if grant is None:
            if not all(enables_iam_policies(resource_policy, action, key_arn, account_id) for action in KEY_POLICY_ACTIONS):
                return _key_admin_plan(
                    "key-policy-not-delegated",
                    f"The key policy of {key_arn} does not enable IAM policies for {' and '.join(KEY_POLICY_ACTIONS)}, "
                    "so the playbook's roles cannot change it.",
                    statement,
                    key_arn,
                    account_id,
                    evidence,
                )
            action = add_key_statement(key_arn, resource_policy, statement)
            too_large = key_policy_size_problem(action)
            if too_large:
                quoted = json.dumps(statement, sort_keys=True)
                return _plan(
                    "key-policy-too-large",
                    "escalate",
                    f"The playbook will not ask for a change that cannot be applied: {too_large}. Nothing was changed. A key "
                    f"administrator should make room in the key policy of {key_arn} (merge statements, or give the role a "
                    f"KMS grant instead) and add this statement: {quoted}",
                    [*evidence, f"Statement for a key administrator to add to the key policy of {key_arn}: {quoted}"],
                )
            return _plan(
                "missing-kms-grant",
                "remediate",
                f"The key policy of {key_arn} does not let {role['name']} use {parsed['action']}: add one statement for that role and action.",
                [*evidence, f"Statement to add to the key policy: {json.dumps(statement, sort_keys=True)}"],
                [action],
            )
        if grant == "direct" or decision == "allowed":
            return _plan(
                "already-allowed",
                "no-action",
                f"{role['name']} is allowed {parsed['action']} on {key_arn} now; nothing to change.",
                evidence,
            )
    if decision == "allowed":
        return _plan(
            "already-allowed",
            "no-action",
            f"The policy simulator allows {role['name']} {parsed['action']} on {resource} now (fixed since the error?); nothing to change.",
            evidence,
        )
    statement = identity_statement(parsed["action"], resource)
    _check_statement(statement)
    if statement in statements(role.get("fixPolicy")):
        return _plan(
            "statement-present-but-denied",
            "escalate",
            f"The playbook's policy {policy_name} already allows {statement['Action']} on {statement['Resource']}, yet the "
            "simulator denies it: something else (a boundary or an organization policy) limits the role. A person has to look.",
            evidence,
        )
    action = add_identity_statement(role, statement, policy_name)
    over_quota = inline_quota_problem(role, action)
    if over_quota:
        quoted = json.dumps(statement, sort_keys=True)
        return _plan(
            "inline-policy-quota",
            "escalate",
            f"The playbook will not ask for a change that cannot be applied: {over_quota}. Nothing was changed. A person "
            f"should grant this statement to {role['name']} in a customer managed policy (managed policies have their own "
            f"size quota) or make room in its inline policies: {quoted}",
            [*evidence, f"Statement for a person to grant to {role['name']}: {quoted}"],
        )
    return _plan(
        "missing-identity-permission",
        "remediate",
        f"No identity policy of {role['name']} allows {parsed['action']} on {resource}: add exactly that permission "
        f"to the playbook's own inline policy {policy_name} (no other policy is touched).",
        [*evidence, f"Statement to add: {json.dumps(statement, sort_keys=True)}"],
        [action],
    )


# ---------------------------------------------------------------------------------------------- apply (merge)
def merge(current: Any, action: dict[str, Any]) -> dict[str, Any]:
    """The document to write for an approved action, from the policy as it is now (idempotent, guarded).

    Returns changed False when the statement is already there (a second run writes nothing). Refuses when the policy
    changed since the plan was approved in a way the plan did not foresee (the recorded rollback would be wrong).
    """
    statement = action["statement"]
    _check_statement(statement)
    current_document = json.loads(current) if isinstance(current, str) else current
    if statement in statements(current_document):
        return {"changed": False, "document": policy_text(current_document)}
    if current_document != action["before"]["document"]:
        raise PlaybookError(
            f"the {action['before']['policyName']} policy changed since the plan was approved; nothing was written. Run the playbook again."
        )
    document = current_document or {"Version": "2012-10-17", "Statement": []}
    document = dict(document) | {"Statement": [*statements(document), statement]}
    return {"changed": True, "document": policy_text(document), "kind": action["id"]}


def current_policy(iam: Any, kms: Any, action: dict[str, Any]) -> Any:
    if action["id"] == "add_key_policy_statement":
        return json.loads(kms.get_key_policy(KeyId=action["target"], PolicyName="default")["Policy"])
    try:
        return iam.get_role_policy(RoleName=action["target"], PolicyName=action["before"]["policyName"])["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None


# ---------------------------------------------------------------------------------------------- verify
def check_grant(
    iam: Any, kms: Any, action: dict[str, Any], parsed: dict[str, Any], identity: dict[str, Any], attempt: int, config: dict[str, Any]
) -> dict[str, Any]:
    """One of a bounded series of checks after the change: IAM and KMS apply a change eventually, with no published
    bound, so a check that does not show it yet is repeated (`done` False) until the deadline, then reported as not
    yet in effect. An explicit deny will not go away by waiting: done at once."""
    result = verify(iam, kms, action, parsed, identity)
    attempt += 1
    waited = config["verifyWaitSeconds"] + (attempt - 1) * config["grantCheckPollSeconds"]
    timed_out = waited >= config["verifyWaitSeconds"] + config["grantCheckDeadlineSeconds"]
    done = result["allowed"] or result.get("decision") == "explicitDeny" or timed_out
    summary = None
    if done and result.get("decision") == "explicitDeny":
        summary = (
            f"After the change the {result['check']} reports an explicit deny of the call; a person has to look at the policy that denies."
        )
    elif done and not result["allowed"]:
        summary = (
            f"The grant is not yet in effect after {waited} s ({attempt} checks with the {result['check']}): AWS applies "
            "policy changes eventually and publishes no bound. The change stays applied; the failed run was not restarted. "
            "Check again later and restart the run once the check shows the grant."
        )
    return result | {"attempt": attempt, "waitedSeconds": waited, "done": done, "summary": summary}


def verify(iam: Any, kms: Any, action: dict[str, Any], parsed: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    role_arn = identity["role"]["arn"]
    resource = identity["denied"]["resource"]
    if action["id"] == "add_key_policy_statement":
        policy = kms.get_key_policy(KeyId=action["target"], PolicyName="default")["Policy"]
        principal = parsed["principal"]
        grant = key_policy_grant(policy, parsed["action"], action["target"], role_arn, principal["arn"], principal["accountId"])
        denies = resource_policy_denies(policy, parsed["action"], resource, role_arn, principal["arn"], principal["accountId"])
        return {"allowed": grant == "direct" and not denies, "check": "key policy", "grant": grant}
    # Every page: IAM "might return fewer than the MaxItems number of results even when there are more".
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=role_arn, ActionNames=[parsed["action"]], ResourceArns=[resource]
    )
    (decision,) = [result["EvalDecision"] for page in pages for result in page["EvaluationResults"]]
    return {"allowed": decision == "allowed", "check": "IAM policy simulator", "decision": decision}


# ---------------------------------------------------------------------------------------------- handlers
def _account_of(execution: str) -> str:
    return execution.split(":")[4]


@logger.inject_lambda_context
def find_line_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    end = clock.now()
    start = end - timedelta(minutes=int(event["config"]["lookbackMinutes"]))
    result = find_latest_denied_line(client("logs"), _names("PIPELINE_LOG_GROUPS"), start, end)
    logger.info("searched the pipeline's logs", extra={"found": result["message"] is not None, "logGroup": result.get("logGroup")})
    return result


@logger.inject_lambda_context
def parse_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    since = clock.iso(clock.parse(event["startedAt"]) - timedelta(minutes=int(event["config"]["lookbackMinutes"])))
    result = read_message(event.get("message"), _account_of(event["execution"]), settings(), since)
    logger.info(
        "read the message",
        extra={"ok": result["ok"], "actionable": result["actionable"], "action": result.get("action"), "role": result.get("roleName")},
    )
    return result


@logger.inject_lambda_context
def diagnose_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    findings = event["findings"]
    result = diagnose_identity(client("iam"), findings["parsed"], findings.get("cloudtrail"), FIX_POLICY_NAME)
    logger.info("read the role's policies", extra={"role": result["role"]["name"], "resourceKnown": result["denied"]["resourceKnown"]})
    return result


@logger.inject_lambda_context
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan(event["target"], event["findings"], event["config"], FIX_POLICY_NAME)
    result = with_restart(result, event["target"], event["findings"], os.environ.get("ETL_STATE_MACHINE_NAME", "etl-workflow"))
    logger.info("proposed plan", extra={"case": result["case"], "actions": [a["id"] for a in result["actions"]]})
    return result


@logger.inject_lambda_context
def merge_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action = event["action"]
    result = merge(current_policy(client("iam"), client("kms"), action), action)
    logger.info("merged the statement", extra={"action": action["id"], "target": action["target"], "changed": result["changed"]})
    return result


@logger.inject_lambda_context
def verify_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = check_grant(
        client("iam"), client("kms"), event["action"], event["parsed"], event["identity"], int(event["attempt"]), event["config"]
    )
    logger.info("verified", extra={"action": event["action"]["id"], "allowed": result["allowed"], "attempt": result["attempt"]})
    return result
