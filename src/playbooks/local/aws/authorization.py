"""Authorization as AWS does it, for every call a principal of the stack makes in the local account.

Each state machine's and each function's role is evaluated as deployed from `template.yaml` (the roles moto's
CloudFormation created: inline policies, SAM policy templates as translated, managed policies), for the call's IAM
action, the resource ARN(s) it touches and the condition keys the request carries; then the resource policies AWS
consults: the KMS key policy (IAM policies count only where the key policy enables them) and the S3 bucket policy.
A call AWS would deny is answered with AWS's error (code, HTTP status, message). Calls by anyone else (the world a
scenario builds, the deployer, the simulator's approver) are not restricted: they stand for an administrator.

Why our own evaluator: moto's (moto/iam/access_control.py) reads ARNs as regular expressions, treats a statement with
NotResource as matching everything, turns a statement whose condition is false into a deny, knows only StringEquals
and no ForAnyValue/ForAllValues, and has no key-policy delegation. policyuniverse and parliament parse and lint
policies but do not decide requests. So this follows IAM's documented evaluation logic for one account; `RULES`
lists each rule with its sources (rendered into docs/local-account.md). It is the account's one evaluator: the local
iam:SimulatePrincipalPolicy (iam.py) decides with `applies`, so the simulator and the authorizer cannot disagree.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..recorder import Call, FakeHttpResponse, error_response
from .runtime import Source, cite

if TYPE_CHECKING:
    from ..account import LocalAccount

Answer = tuple[FakeHttpResponse, dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    rule: str
    sources: tuple[Source, ...]


RULES = [
    Rule(
        "A request is allowed only if some policy allows it and none denies it; an explicit deny in any policy wins.",
        (
            Source(
                "IAM user guide, How AWS enforcement code logic evaluates requests to allow or deny access",
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html",
            ),
        ),
    ),
    Rule(
        "Within one account, an identity-based policy or a resource-based policy naming the role allows a request "
        "(S3 bucket policies); a resource policy naming only the account delegates to IAM and allows nothing by itself.",
        (
            Source(
                "IAM user guide, Policy evaluation for requests within a single account",
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html",
            ),
        ),
    ),
    Rule(
        "KMS: the key policy decides. IAM policies allow a KMS action on a key only where the key policy has an Allow "
        "for that action naming the account (the 'Enable IAM policies' statement); otherwise only the key policy "
        "allows. An IAM deny still denies. The error then says 'because no resource-based policy allows'.",
        (
            Source(
                "AWS KMS developer guide, Key policies in AWS KMS",
                "https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html",
            ),
        ),
    ),
    Rule(
        "A role's inline policy or a key policy changed after the world was built governs authorization only once the "
        "change has propagated (60 s on the account's clock; the previous policy until then), though it reads back at "
        "once. A pipeline workflow a scenario deploys is authorized under its role like the stack's principals.",
        (
            Source(
                "AWS CloudTrail user guide, Managing data consistency in CloudTrail (a change to CloudTrail 'or other AWS services' takes time to become visible)",
                "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-data-consistency.html",
            ),
            Source(
                "AWS KMS developer guide, AWS KMS eventual consistency",
                "https://docs.aws.amazon.com/kms/latest/developerguide/accessing-kms.html#programming-eventual-consistency",
            ),
        ),
    ),
    Rule(
        "KMS PutKeyPolicy refuses (MalformedPolicyDocumentException) a policy that would not allow the caller a "
        "later PutKeyPolicy, unless BypassPolicyLockoutSafetyCheck is true.",
        (
            Source(
                "AWS SDK for Kotlin API reference, KMS PutKeyPolicyRequest.policy (the lockout safety check)",
                "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/kms/aws.sdk.kotlin.services.kms.model/-put-key-policy-request/policy.html",
            ),
            Source(
                "AWS SDK for Ruby API reference, KMS PutKeyPolicyRequest (BypassPolicyLockoutSafetyCheck)",
                "https://docs.aws.amazon.com/sdkforruby/api/Aws/KMS/Types/PutKeyPolicyRequest.html",
            ),
        ),
    ),
    Rule(
        "S3 GetObject/HeadObject of a missing key answers 403 (HEAD: code 403 'Forbidden', no body) to a caller "
        "without s3:ListBucket on the bucket, 404 to one with it.",
        (
            Source(
                "AWS SDK for Kotlin API reference, S3 headObject (the API reference's Permissions: 404 with s3:ListBucket, 403 without)",
                "https://docs.aws.amazon.com/goto/SdkForKotlin/s3-2006-03-01/HeadObject",
            ),
        ),
    ),
    Rule(
        "Denials carry AWS's message: 'User: <assumed-role session ARN> is not authorized to perform: <action> on "
        "resource: <ARN> because no identity-based policy allows the <action> action' (or 'with an explicit deny in "
        "an identity-based/resource-based policy'); S3 quotes the ARN; actions without resource-level permissions name "
        "no resource. Codes: AccessDeniedException (JSON services, HTTP 400; Lambda 403), AccessDenied (IAM, S3, "
        "CloudWatch, HTTP 403), AuthorizationError (SNS, 403).",
        (
            Source(
                "IAM user guide, Troubleshoot access denied error messages with authorization ID",
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied-authorization-id.html",
            ),
        ),
    ),
    Rule(
        "Conditions: String*, Arn*, Bool, Numeric* and Null operators, ...IfExists, ForAnyValue/ForAllValues; keys "
        "are case-insensitive; a missing key fails a positive operator and satisfies a negated one. An operator the "
        "local account does not know counts as not met for an Allow and as met for a Deny (the stricter reading).",
        (
            Source(
                "IAM user guide, IAM JSON policy elements: Condition operators (keys that are not present)",
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html",
            ),
        ),
    ),
    Rule(
        "Resource ARNs: a CloudWatch Logs log group is authorized as 'log-group:<name>:*', DescribeLogGroups on "
        "'log-group:*'; actions without resource-level permissions are authorized against '*'.",
        (
            Source(
                "Amazon CloudWatch Logs API reference, LogGroup (arn, creationTime, storedBytes)",
                "https://docs.aws.amazon.com/goto/WebAPI/logs-2014-03-28/LogGroup",
            ),
        ),
    ),
]


# ------------------------------------------------------------------------------------------- the policy language
def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | dict) else list(value or [])


@functools.cache
def _regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcards: * any run of characters, ? any one."""
    return _regex(str(pattern), ignore_case).fullmatch(value) is not None


def document(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if isinstance(text, bytes):
        text = text.decode()
    text = str(text or "")
    if not text:
        return {}
    return dict(json.loads(text if text.lstrip().startswith("{") else unquote(text)))


def statements(policy: Any) -> list[dict[str, Any]]:
    return [s for s in _listed(document(policy).get("Statement")) if isinstance(s, dict)]


def covers(statement: dict[str, Any], action: str, resource: str) -> bool:
    """Whether Action/NotAction take in `action` and Resource/NotResource take in `resource`."""
    if "Action" in statement:
        if not any(_glob(p, action, ignore_case=True) for p in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(p, action, ignore_case=True) for p in _listed(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        return any(_glob(p, resource) for p in _listed(statement["Resource"]))
    if "NotResource" in statement:
        return not any(_glob(p, resource) for p in _listed(statement["NotResource"]))
    return True  # a resource policy statement may leave Resource out


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringEqualsIgnoreCase": lambda expected, actual: actual.lower() == expected.lower(),
    "StringLike": lambda expected, actual: _glob(expected, actual),
    "ArnEquals": lambda expected, actual: _glob(expected, actual),
    "ArnLike": lambda expected, actual: _glob(expected, actual),
    "Bool": lambda expected, actual: actual.lower() == expected.lower(),
    "NumericEquals": lambda e, a: _number(a) is not None and _number(a) == _number(e),
    "NumericLessThan": lambda e, a: None not in (_number(a), _number(e)) and _number(a) < _number(e),  # type: ignore[operator]
    "NumericLessThanEquals": lambda e, a: None not in (_number(a), _number(e)) and _number(a) <= _number(e),  # type: ignore[operator]
    "NumericGreaterThan": lambda e, a: None not in (_number(a), _number(e)) and _number(a) > _number(e),  # type: ignore[operator]
    "NumericGreaterThanEquals": lambda e, a: None not in (_number(a), _number(e)) and _number(a) >= _number(e),  # type: ignore[operator]
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _operator_holds(operator: str, key: str, expected: list[str], context: dict[str, list[str]]) -> bool | None:
    """True/False, or None for an operator this evaluator does not know."""
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    actual = context.get(key.lower())
    if name == "Null":
        return (actual is None) == (str(expected[0]).lower() == "true")
    negated = name in _NEGATED
    matcher = _MATCHERS.get(_NEGATED.get(name, name))
    if matcher is None or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        return None
    if actual is None:
        if qualifier == "ForAllValues":
            return True
        return if_exists or (negated and qualifier == "")

    def matches(value: str) -> bool:
        return any(matcher(str(e), value) for e in expected)

    if qualifier == "ForAnyValue":
        found = any(matches(v) for v in actual)
        return not found if negated else found
    if qualifier == "ForAllValues":
        return all((not matches(v)) if negated else matches(v) for v in actual)
    found = matches(actual[0])
    return not found if negated else found


def conditions_hold(statement: dict[str, Any], context: dict[str, list[str]]) -> bool:
    """Every operator and key of the Condition block holds. An unknown operator: not met for Allow, met for Deny."""
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            holds = _operator_holds(operator, key, [str(v) for v in _listed(expected)], context)
            if holds is None:
                holds = statement.get("Effect") == "Deny"
            if not holds:
                return False
    return True


def applies(statement: dict[str, Any], action: str, resource: str, context: dict[str, list[str]]) -> bool:
    """The statement takes in the request: action, resource and every condition (the one test both the authorizer
    and iam:SimulatePrincipalPolicy use)."""
    return covers(statement, action, resource) and conditions_hold(statement, context)


def decide(policy_statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, list[str]]) -> str | None:
    """'Deny', 'Allow' or None (no statement applies)."""
    verdict = None
    for statement in policy_statements:
        if applies(statement, action, resource, context):
            if statement.get("Effect") == "Deny":
                return "Deny"
            verdict = "Allow"
    return verdict


# ------------------------------------------------------------------------------------------- resource policy principals
def names_principal(statement: dict[str, Any], role_arn: str, session_arn: str) -> bool:
    """The statement's Principal is everyone, the role or this session of it."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    values = [str(v) for v in _listed(principal.get("AWS"))] if isinstance(principal, dict) else []
    return any(v == "*" or v in (role_arn, session_arn) for v in values)


def names_account(statement: dict[str, Any], account_id: str) -> bool:
    principal = statement.get("Principal")
    values = [str(v) for v in _listed(principal.get("AWS"))] if isinstance(principal, dict) else []
    return any(v == account_id or v == f"arn:aws:iam::{account_id}:root" for v in values)


# ------------------------------------------------------------------------------------------- requests
@dataclass
class Request:
    action: str
    resources: list[str]
    context: dict[str, list[str]] = field(default_factory=dict)


def _function_arn(account: LocalAccount, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:lambda:{account.region}:{account.account_id}:function:{name}"


def _table_arn(account: LocalAccount, name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{account.region}:{account.account_id}:table/{name}"


def _index_arn(account: LocalAccount, params: dict[str, Any]) -> str:
    table = _table_arn(account, params["TableName"])
    return f"{table}/index/{params['IndexName']}" if params.get("IndexName") else table


def _log_group_arn(account: LocalAccount, name: str) -> str:
    return f"arn:aws:logs:{account.region}:{account.account_id}:log-group:{name}:*"


def _alarm_arn(account: LocalAccount, name: str) -> str:
    return f"arn:aws:cloudwatch:{account.region}:{account.account_id}:alarm:{name}"


def _rule_arn(account: LocalAccount, params: dict[str, Any]) -> str:
    bus = params.get("EventBusName") or "default"
    prefix = "" if bus == "default" else f"{bus}/"
    return f"arn:aws:events:{account.region}:{account.account_id}:rule/{prefix}{params['Name']}"


def _role_arn(account: LocalAccount, name: str) -> str:
    from moto.iam.models import iam_backends

    if name.startswith("arn:"):
        return name
    try:
        return str(iam_backends[account.account_id]["aws"].get_role(name).arn)
    except Exception:  # noqa: BLE001 - a role that does not exist is still authorized by its plain ARN
        return f"arn:aws:iam::{account.account_id}:role/{name}"


def _kms_key(account: LocalAccount, key_id: str) -> Any:
    from moto.kms.models import kms_backends

    backend = kms_backends[account.account_id][account.region]
    try:
        return backend.keys[backend.any_id_to_key_id(key_id)]
    except Exception:  # noqa: BLE001 - an unknown key is left to KMS's own NotFoundException
        return None


def _key_arn(account: LocalAccount, key_id: str) -> str:
    key = _kms_key(account, key_id)
    return str(key.arn) if key is not None else f"arn:aws:kms:{account.region}:{account.account_id}:key/{key_id}"


def _account_arn(account: LocalAccount, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{account.region}:{account.account_id}:{resource}"


def _s3(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")


ResourceOf = Callable[["LocalAccount", dict[str, Any]], list[str]]

# The resource each API call is authorized on, by IAM action; an action not listed has no resource-level permission
# and is authorized against "*". An omission shows up as a denial of a scoped grant, never as a silent allow.
RESOURCES: dict[str, ResourceOf] = {
    "lambda:InvokeFunction": lambda a, p: [_function_arn(a, p["FunctionName"])],
    "lambda:GetFunctionConcurrency": lambda a, p: [_function_arn(a, p["FunctionName"])],
    "lambda:PutFunctionConcurrency": lambda a, p: [_function_arn(a, p["FunctionName"])],
    "lambda:DeleteFunctionConcurrency": lambda a, p: [_function_arn(a, p["FunctionName"])],
    "lambda:GetFunctionConfiguration": lambda a, p: [_function_arn(a, p["FunctionName"])],
    "lambda:GetFunction": lambda a, p: [_function_arn(a, p["FunctionName"])],
    "lambda:UpdateFunctionConfiguration": lambda a, p: [_function_arn(a, p["FunctionName"])],
    "dynamodb:PutItem": lambda a, p: [_table_arn(a, p["TableName"])],
    "dynamodb:GetItem": lambda a, p: [_table_arn(a, p["TableName"])],
    "dynamodb:UpdateItem": lambda a, p: [_table_arn(a, p["TableName"])],
    "dynamodb:DeleteItem": lambda a, p: [_table_arn(a, p["TableName"])],
    # A Query or Scan of an index is authorized on the index's ARN, "<table ARN>/index/<name>" (DynamoDB's
    # "Using IAM policy conditions" / resource types table).
    "dynamodb:Query": lambda a, p: [_index_arn(a, p)],
    "dynamodb:Scan": lambda a, p: [_index_arn(a, p)],
    "dynamodb:DescribeTable": lambda a, p: [_table_arn(a, p["TableName"])],
    "dynamodb:UpdateTable": lambda a, p: [_table_arn(a, p["TableName"])],
    "sns:Publish": lambda a, p: [str(p.get("TopicArn") or p.get("TargetArn"))],
    "states:StartExecution": lambda a, p: [p["stateMachineArn"]],
    "states:ListExecutions": lambda a, p: [p["stateMachineArn"]],
    "states:DescribeStateMachine": lambda a, p: [p["stateMachineArn"]],
    "states:DescribeExecution": lambda a, p: [p["executionArn"]],
    "states:StopExecution": lambda a, p: [p["executionArn"]],
    "states:GetExecutionHistory": lambda a, p: [p["executionArn"]],
    "states:DescribeStateMachineForExecution": lambda a, p: [p["executionArn"]],
    "events:DescribeRule": lambda a, p: [_rule_arn(a, p)],
    "events:DisableRule": lambda a, p: [_rule_arn(a, p)],
    "events:EnableRule": lambda a, p: [_rule_arn(a, p)],
    "events:PutRule": lambda a, p: [_rule_arn(a, p)],
    "events:ListTargetsByRule": lambda a, p: [_rule_arn(a, {"Name": p["Rule"], "EventBusName": p.get("EventBusName")})],
    "cloudwatch:DescribeAlarms": lambda a, p: [_alarm_arn(a, n) for n in p.get("AlarmNames") or []] or ["*"],
    "cloudwatch:PutMetricAlarm": lambda a, p: [_alarm_arn(a, p["AlarmName"])],
    "cloudwatch:DeleteAlarms": lambda a, p: [_alarm_arn(a, n) for n in p.get("AlarmNames") or []],
    "logs:FilterLogEvents": lambda a, p: [_log_group_arn(a, p["logGroupName"])],
    "logs:StartQuery": lambda a, p: [_log_group_arn(a, n) for n in p.get("logGroupNames") or [p.get("logGroupName")]],
    "logs:PutRetentionPolicy": lambda a, p: [_log_group_arn(a, p["logGroupName"])],
    "logs:DeleteRetentionPolicy": lambda a, p: [_log_group_arn(a, p["logGroupName"])],
    "logs:DescribeLogGroups": lambda a, p: [_account_arn(a, "logs", "log-group:*")],
    "s3:GetObject": lambda a, p: [_s3(p["Bucket"], p["Key"])],
    "s3:PutObject": lambda a, p: [_s3(p["Bucket"], p["Key"])],
    "s3:ListBucket": lambda a, p: [_s3(p["Bucket"])],
    "s3:GetBucketPolicy": lambda a, p: [_s3(p["Bucket"])],
    "s3:GetBucketNotification": lambda a, p: [_s3(p["Bucket"])],
    "s3:PutBucketNotification": lambda a, p: [_s3(p["Bucket"])],
    "s3:GetIntelligentTieringConfiguration": lambda a, p: [_s3(p["Bucket"])],
    "s3:PutIntelligentTieringConfiguration": lambda a, p: [_s3(p["Bucket"])],
    "s3:GetLifecycleConfiguration": lambda a, p: [_s3(p["Bucket"])],
    "s3:PutLifecycleConfiguration": lambda a, p: [_s3(p["Bucket"])],
    "iam:GetRole": lambda a, p: [_role_arn(a, p["RoleName"])],
    "iam:ListRolePolicies": lambda a, p: [_role_arn(a, p["RoleName"])],
    "iam:GetRolePolicy": lambda a, p: [_role_arn(a, p["RoleName"])],
    "iam:PutRolePolicy": lambda a, p: [_role_arn(a, p["RoleName"])],
    "iam:DeleteRolePolicy": lambda a, p: [_role_arn(a, p["RoleName"])],
    "iam:ListAttachedRolePolicies": lambda a, p: [_role_arn(a, p["RoleName"])],
    "iam:SimulatePrincipalPolicy": lambda a, p: [p["PolicySourceArn"]],
    "iam:GetPolicy": lambda a, p: [p["PolicyArn"]],
    "iam:GetPolicyVersion": lambda a, p: [p["PolicyArn"]],
    "kms:GetKeyPolicy": lambda a, p: [_key_arn(a, p["KeyId"])],
    "kms:PutKeyPolicy": lambda a, p: [_key_arn(a, p["KeyId"])],
    "kms:DescribeKey": lambda a, p: [_key_arn(a, p["KeyId"])],
    # A parameter's ARN drops the name's leading slash: "parameter/<stack>/playbooks/brake" (Systems Manager's
    # "Restricting access to Parameter Store parameters using IAM policies").
    "ssm:GetParameter": lambda a, p: [_account_arn(a, "ssm", "parameter/" + str(p["Name"]).lstrip("/"))],
    "servicequotas:RequestServiceQuotaIncrease": lambda a, p: [_account_arn(a, "servicequotas", f"{p['ServiceCode']}/{p['QuotaCode']}")],
    "servicequotas:GetServiceQuota": lambda a, p: [_account_arn(a, "servicequotas", f"{p['ServiceCode']}/{p['QuotaCode']}")],
}


def request_of(account: LocalAccount, call: Call, role_arn: str) -> Request:
    action = call.iam_action
    resources = RESOURCES[action](account, call.params) if action in RESOURCES else ["*"]
    context: dict[str, list[str]] = {
        "aws:principalarn": [role_arn],
        "aws:principalaccount": [account.account_id],
        "aws:securetransport": ["true"],
        "aws:requestedregion": [account.region],
    }
    if action == "cloudwatch:PutMetricData" and "Namespace" in call.params:
        context["cloudwatch:namespace"] = [str(call.params["Namespace"])]
    if action.startswith("kms:") and "KeyId" in call.params:
        key = _kms_key(account, str(call.params["KeyId"]))
        context["kms:calleraccount"] = [account.account_id]
        if key is not None:
            context["kms:resourcealiases"] = sorted(key.aliases) if key.aliases else []
            if not context["kms:resourcealiases"]:
                del context["kms:resourcealiases"]
    if action == "s3:ListBucket" and call.params.get("Prefix") is not None:
        context["s3:prefix"] = [str(call.params["Prefix"])]
    return Request(action, resources, context)


# ------------------------------------------------------------------------------------------- errors
# (code, HTTP status) of a denial, by IAM prefix: each service's Common Errors.
DENIAL = {
    "lambda": ("AccessDeniedException", 403),
    "iam": ("AccessDenied", 403),
    "s3": ("AccessDenied", 403),
    "cloudwatch": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "sts": ("AccessDenied", 403),
}
DEFAULT_DENIAL = ("AccessDeniedException", 400)


def denial(call: Call, session_arn: str, action: str, resource: str, reason: str) -> Answer:
    code, status = DENIAL.get(action.split(":")[0], DEFAULT_DENIAL)
    if call.api == "s3:HeadObject":
        return error_response("403", "Forbidden", 403)  # a HEAD response has no body: botocore sees the status only
    where = "" if resource == "*" else f' on resource: "{resource}"' if action.startswith("s3:") else f" on resource: {resource}"
    message = f"User: {session_arn} is not authorized to perform: {action}{where} {reason}"
    return error_response(code, message, status)


def _because(kind: str, action: str) -> str:
    return {
        "identity-deny": "with an explicit deny in an identity-based policy",
        "resource-deny": "with an explicit deny in a resource-based policy",
        "no-resource-allow": f"because no resource-based policy allows the {action} action",
    }.get(kind, f"because no identity-based policy allows the {action} action")


# ------------------------------------------------------------------------------------------- principals
@dataclass
class Principal:
    logical_id: str
    role_arn: str
    session_arn: str
    policies: list[dict[str, Any]]  # identity-based statements


def role_statements(account: LocalAccount, role_arn: str, managed: bool = True) -> list[dict[str, Any]]:
    """The role's identity-based statements as deployed: inline policies and (`managed`) the default version of each
    managed one."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import iam_backends

    from . import iam

    role = iam_backends[account.account_id]["aws"].get_role(role_arn.rsplit("/", 1)[-1])
    # Inline policies as they govern authorization now: a change still propagating is not yet in effect.
    found = [s for text in iam.inline_policies_in_effect(role) for s in statements(text)]
    for arn, policy in role.managed_policies.items() if managed else []:
        default = next((v.document for v in getattr(policy, "versions", []) if v.is_default), None)
        if default is None:
            default = json.loads(aws_managed_policies_data).get(arn.rsplit("/", 1)[-1], {})
        found += statements(default)
    return found


class Authorizer:
    """The recorder's hook: None lets a call through; an answer is AWS's refusal."""

    def __init__(self, account: LocalAccount):
        self.account = account
        self._principals: dict[str, Principal | None] = {}

    def principal(self, logical_id: str) -> Principal | None:
        if logical_id not in self._principals:
            self._principals[logical_id] = self._load(logical_id)
        return self._principals[logical_id]

    def _load(self, logical_id: str) -> Principal | None:
        account = self.account
        function = next((f for f in account.functions.values() if f.principal == logical_id), None)
        state_machine = account.state_machine_of_principal(logical_id)
        if function is not None:
            role_arn, session = function.role_arn, function.name  # Lambda names the role session after the function
        elif state_machine is not None:
            role_arn, session = state_machine[0], state_machine[1].rsplit(":", 1)[-1]
        elif logical_id in account.pipeline_principals:
            role_arn, session = account.pipeline_principals[logical_id], logical_id
        else:
            return None  # not a principal of a stack
        role_name = role_arn.rsplit("/", 1)[-1]
        session_arn = f"arn:aws:sts::{account.account_id}:assumed-role/{role_name}/{session}"
        return Principal(logical_id, role_arn, session_arn, role_statements(account, role_arn))

    def __call__(self, call: Call) -> Answer | None:
        principal = self.principal(call.principal)
        if principal is None:
            return None
        if call.principal in self.account.pipeline_principals:
            # A pipeline role is what the playbooks change: its policies are read as they are in effect at each call.
            principal.policies = role_statements(self.account, principal.role_arn)
        request = request_of(self.account, call, principal.role_arn)
        call.authorized = [(request.action, resource) for resource in request.resources]
        for resource in request.resources:
            refusal = self.refusal(principal, request.action, resource, request.context)
            if refusal is not None:
                return denial(call, principal.session_arn, request.action, resource, _because(refusal, request.action))
        if call.api == "kms:PutKeyPolicy" and not call.params.get("BypassPolicyLockoutSafetyCheck"):
            return self._lockout(principal, call, request)
        if call.api in ("s3:GetObject", "s3:HeadObject") and not _object_exists(self.account, call.params):
            listing = Call(call.seq, "s3:ListObjectsV2", {"Bucket": call.params["Bucket"]}, call.principal, call.at)
            listing_request = request_of(self.account, listing, principal.role_arn)
            call.authorized.append((listing_request.action, listing_request.resources[0]))
            if self.refusal(principal, listing_request.action, listing_request.resources[0], listing_request.context):
                # the missing key is not revealed to a caller who may not list the bucket
                if call.api == "s3:HeadObject":
                    return error_response("403", "Forbidden", 403)
                return error_response("AccessDenied", "Access Denied", 403)
        return None

    def refusal(
        self, principal: Principal, action: str, resource: str, context: dict[str, list[str]], key_policy: Any = None
    ) -> str | None:
        """Why the request is denied ('identity-deny', 'resource-deny', 'no-identity-allow', 'no-resource-allow'), or None."""
        identity = decide(principal.policies, action, resource, context)
        if identity == "Deny":
            return "identity-deny"
        resource_policy = key_policy if key_policy is not None else self._resource_policy(action, resource)
        mine = [s for s in resource_policy if names_principal(s, principal.role_arn, principal.session_arn)]
        whole_account = [s for s in resource_policy if names_account(s, self.account.account_id)]
        direct = decide(mine, action, resource, context)
        delegated = decide(whole_account, action, resource, context)
        if "Deny" in (direct, delegated):
            return "resource-deny"
        if action.startswith("kms:") and ":key/" in resource:
            if direct == "Allow" or (delegated == "Allow" and identity == "Allow"):
                return None
            return "no-identity-allow" if delegated == "Allow" else "no-resource-allow"
        return None if "Allow" in (identity, direct) else "no-identity-allow"

    def _resource_policy(self, action: str, resource: str) -> list[dict[str, Any]]:
        if action.startswith("kms:") and ":key/" in resource:
            from . import kms

            key = _kms_key(self.account, resource)
            return statements(kms.policy_in_effect(key)) if key is not None else []
        if action.startswith("s3:") and resource.startswith("arn:aws:s3:::"):
            from moto.s3.models import s3_backends

            bucket = s3_backends[self.account.account_id]["aws"].buckets.get(resource.removeprefix("arn:aws:s3:::").split("/", 1)[0])
            return statements(bucket.policy) if bucket is not None and bucket.policy else []
        return []

    def _lockout(self, principal: Principal, call: Call, request: Request) -> Answer | None:
        try:
            proposed = statements(call.params.get("Policy"))
        except ValueError:
            return None  # KMS's own validation answers a malformed document
        if self.refusal(principal, "kms:PutKeyPolicy", request.resources[0], request.context, key_policy=proposed) is None:
            return None
        return error_response(
            "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future.", 400
        )


def _object_exists(account: LocalAccount, params: dict[str, Any]) -> bool:
    from moto.s3.models import s3_backends

    bucket = s3_backends[account.account_id]["aws"].buckets.get(str(params.get("Bucket")))
    return bucket is None or bucket.keys.get(str(params.get("Key"))) is not None  # a missing bucket is S3's own error


def render_doc() -> list[str]:
    """The section of docs/local-account.md on authorization."""
    lines = [
        "",
        "## Authorization (as strict as AWS)",
        "",
        "Every call by a principal of the stack (each state machine's and each function's role) is authorized by",
        "`src/playbooks/local/aws/authorization.py` against the role as deployed and the resource policies AWS consults;",
        "a call AWS would deny fails with AWS's error. Calls by the scenario's world building and the simulator are not",
        "restricted. moto's own evaluator and policyuniverse/parliament were considered and not used (see the module).",
        "",
        "| rule | sources |",
        "| --- | --- |",
    ]
    return lines + [f"| {rule.rule} | {cite(rule.sources)} |" for rule in RULES]
