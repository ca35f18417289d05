"""IAM: SimulatePrincipalPolicy over the roles moto holds, the size quota of a role's inline policies, and policy
changes that take a while to take effect."""

from __future__ import annotations

import json
from typing import Any

from ..recorder import PRINCIPAL, error_response, response
from .authorization import applies, covers, document, statements
from .runtime import Gap, Handler, Source, active

MAX_ROLE_INLINE_CHARACTERS = 10240
# Changes made by these callers (the scenario's world building, the deployer) are in effect from the start.
WORLD_CALLERS = ("operator", "deployer")

GAPS = [
    Gap(
        "iam:SimulatePrincipalPolicy",
        "evaluates the role's identity policies (inline, attached, permissions boundary) and an optional resource policy for each action and resource",
        "not implemented: we evaluate the policies moto holds for the role with the local account's one policy evaluator "
        "(authorization.py: explicit deny > allow > implicit deny; Action/NotAction, Resource/NotResource, * and ? "
        "wildcards; conditions against the request's ContextEntries, a missing key failing a positive operator and "
        "satisfying a negated one), reporting the condition keys the request did not give as MissingContextValues. "
        "It reads a role's inline policies as the account's settings say the simulator sees them: by default as stored, "
        "so a change shows at once (its effect on authorization may not yet)",
        sources=(
            Source(
                "AWS SDK for .NET API reference, IAM SimulatePrincipalPolicyRequest (the API reference's description)",
                "https://docs.aws.amazon.com/sdkfornet/v4/apidocs/items/IAM/TSimulatePrincipalPolicyRequest.html",
            ),
            Source(
                "IAM user guide, IAM JSON policy elements: Condition operators (keys that are not present)",
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html",
            ),
        ),
    ),
    Gap(
        "iam:PutRolePolicy: inline policy size",
        "the inline policies of a role share one quota: 'the total aggregate policy size (the sum size of all inline "
        "policies) per entity' may not exceed 10,240 characters for a role, white space not counted; over it PutRolePolicy "
        "fails with LimitExceeded, 'Maximum policy size of 10240 bytes exceeded for role <name>', HTTP 409 (IAM User "
        "Guide, IAM and AWS STS quotas: IAM and STS character quotas)",
        "takes inline policies of any size: we sum the role's inline policies with the new document, each counted as "
        "compact JSON (no white space between tokens; white space inside strings counts, the stricter reading), and "
        "refuse past 10,240 with AWS's error",
        sources=(
            Source(
                "IAM user guide, IAM and AWS STS quotas (IAM and STS character quotas)",
                "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
            ),
        ),
    ),
    Gap(
        "iam:PutRolePolicy, iam:DeleteRolePolicy: eventual consistency",
        "IAM is eventually consistent: 'changes that I make are not always immediately visible'; a change 'may take "
        "time' to reach every endpoint, and AWS advises to verify that it has propagated before production workflows "
        "depend on it (IAM User Guide, Troubleshoot IAM: Changes that I make are not always immediately visible)",
        "applies a change at once: a role's inline policy written or deleted after the world is built governs authorization "
        "only later on the account's clock (60 s, or the scenario's `iamPropagationSeconds`; until then the previous one "
        "does), while GetRolePolicy reads the new one at once. The simulator, itself an IAM endpoint, shows the change "
        "at once by default (the stricter reading for a verification: it shows a grant before it is in effect) or "
        "`iamSimulatorDelaySeconds` later (a verification that reads it once then sees the previous policy). Changes by "
        "the scenario's world building are in effect from the start",
        sources=(
            Source(
                "AWS CloudTrail user guide, Managing data consistency in CloudTrail (a change to CloudTrail 'or other AWS services' takes time to become visible)",
                "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-data-consistency.html",
            ),
        ),
    ),
]
# (role name, policy name) -> (account time the newest change takes effect, the document in effect until then or None)
PENDING: dict[tuple[str, str], tuple[float, Any]] = {}
# The same for what the policy simulator sees.
SIMULATOR_PENDING: dict[tuple[str, str], tuple[float, Any]] = {}


def _role_policies(role_arn: str) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, Any] | None]:
    """(source id, source type, document) of each identity policy of the role, and its permissions boundary."""
    from moto.iam.models import iam_backends

    account = active()
    backend = iam_backends[account.account_id]["aws"]
    role = backend.get_role(role_arn.rsplit("/", 1)[-1])

    def default_document(policy: Any) -> dict[str, Any]:
        return document(next(v.document for v in policy.versions if v.is_default))

    sources = [(name, "role", document(text)) for name, text in _inline_as_of(role, SIMULATOR_PENDING).items()]
    for arn, policy in role.managed_policies.items():
        sources.append((policy.name, "aws-managed" if ":iam::aws:" in arn else "user-managed", default_document(policy)))
    boundary = None
    if role.permissions_boundary_arn:
        boundary = default_document(backend.get_policy(role.permissions_boundary_arn))
    return sources, boundary


def _evaluate(
    sources: list[tuple[str, str, dict[str, Any]]], action: str, resource: str, context: dict[str, list[str]]
) -> tuple[str, list[dict[str, Any]], set[str]]:
    denied: list[dict[str, Any]] = []
    allowed: list[dict[str, Any]] = []
    missing: set[str] = set()
    for source_id, source_type, policy in sources:
        for statement in statements(policy):
            if not covers(statement, action, resource):
                continue
            keys = {key for operator in (statement.get("Condition") or {}).values() for key in operator}
            missing.update(key for key in keys if key.lower() not in context)
            if not applies(statement, action, resource, context):
                continue
            matched = {"SourcePolicyId": source_id, "SourcePolicyType": source_type}
            (denied if statement.get("Effect") == "Deny" else allowed).append(matched)
    if denied:
        return "explicitDeny", denied, missing
    return ("allowed", allowed, missing) if allowed else ("implicitDeny", [], missing)


def _context(params: dict[str, Any]) -> dict[str, list[str]]:
    """ContextEntries as the evaluator reads a request's context: lower-cased keys, values as strings."""
    return {
        str(entry["ContextKeyName"]).lower(): [str(value) for value in entry.get("ContextKeyValues", [])]
        for entry in params.get("ContextEntries") or []
    }


def _simulate_principal_policy(params: dict[str, Any]) -> Any:
    try:
        sources, boundary = _role_policies(str(params["PolicySourceArn"]))
    except Exception:  # noqa: BLE001 - moto's IAM raises its own not-found error type
        return error_response("NoSuchEntity", f"The role {params['PolicySourceArn']} cannot be found.", 404)
    if params.get("ResourcePolicy"):
        sources.append(("ResourcePolicy", "resource", document(params["ResourcePolicy"])))
    context = _context(params)
    results = []
    for action in params.get("ActionNames", []):
        for resource in params.get("ResourceArns") or ["*"]:
            decision, matched, missing = _evaluate(sources, action, resource, context)
            result: dict[str, Any] = {
                "EvalActionName": action,
                "EvalResourceName": resource,
                "EvalDecision": decision,
                "MatchedStatements": matched,
                "MissingContextValues": sorted(missing),
            }
            if boundary is not None:
                bounded = _evaluate([("PermissionsBoundary", "none", boundary)], action, resource, context)[0] == "allowed"
                result["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": bounded}
                if decision == "allowed" and not bounded:
                    result["EvalDecision"] = "implicitDeny"
            results.append(result)
    return response({"EvaluationResults": results, "IsTruncated": False})


def policy_characters(text: Any) -> int:
    """A policy's size as IAM's quota counts it: compact JSON (white space inside strings counts)."""
    return len(json.dumps(document(text), separators=(",", ":"), ensure_ascii=False))


def _role(name: str) -> Any:
    from moto.iam.models import iam_backends

    try:
        return iam_backends[active().account_id]["aws"].get_role(name)
    except Exception:  # noqa: BLE001 - a missing role is left to IAM's own NoSuchEntity
        return None


def _changing(role: Any, policy_name: str) -> None:
    """Note a change of one inline policy: until it propagates, the document in effect (and the one the simulator
    sees) stays the previous one."""
    if PRINCIPAL.get() in WORLD_CALLERS:
        return
    now = active().clock.now()
    settings = active().settings
    current = role.policies.get(policy_name)
    for pending, delay in ((PENDING, settings.iam_propagation_s), (SIMULATOR_PENDING, settings.iam_simulator_delay_s)):
        settles_at, previous = pending.get((role.name, policy_name), (now, None))
        pending[(role.name, policy_name)] = (now + delay, previous if settles_at > now else current)


def _put_role_policy(params: dict[str, Any]) -> Any:
    role = _role(str(params.get("RoleName", "")))
    if role is None:
        return None
    name = str(params.get("PolicyName", ""))
    others = sum(policy_characters(text) for other, text in role.policies.items() if other != name)
    if others + policy_characters(params.get("PolicyDocument", "{}")) > MAX_ROLE_INLINE_CHARACTERS:
        return error_response(
            "LimitExceeded", f"Maximum policy size of {MAX_ROLE_INLINE_CHARACTERS} bytes exceeded for role {role.name}", 409
        )
    _changing(role, name)
    return None  # moto stores the policy


def _delete_role_policy(params: dict[str, Any]) -> Any:
    role = _role(str(params.get("RoleName", "")))
    if role is not None and str(params.get("PolicyName", "")) in role.policies:
        _changing(role, str(params["PolicyName"]))
    return None  # moto deletes the policy


def _inline_as_of(role: Any, pending: dict[tuple[str, str], tuple[float, Any]]) -> dict[str, Any]:
    """The role's inline policy documents by name, with each change still propagating in `pending` not yet made."""
    now = active().clock.now()
    documents = dict(role.policies)
    for (role_name, policy_name), (settles_at, previous) in pending.items():
        if role_name == role.name and settles_at > now:
            if previous is None:
                documents.pop(policy_name, None)
            else:
                documents[policy_name] = previous
    return documents


def inline_policies_in_effect(role: Any) -> list[Any]:
    """The role's inline policy documents that govern authorization now (a change still propagating is not yet)."""
    return list(_inline_as_of(role, PENDING).values())


# The calls this module answers instead of moto (None: moto answers).
HANDLERS: dict[str, Handler] = {
    "iam:SimulatePrincipalPolicy": _simulate_principal_policy,
    "iam:PutRolePolicy": _put_role_policy,
    "iam:DeleteRolePolicy": _delete_role_policy,
}
