"""IAM: SimulatePrincipalPolicy over the roles moto holds."""

from __future__ import annotations

import json
import re
from typing import Any

from ..recorder import error_response, response
from .runtime import Gap, Handler, active

GAPS = [
    Gap(
        "iam:SimulatePrincipalPolicy",
        "evaluates the role's identity policies (inline, attached, permissions boundary) and an optional resource policy for each action and resource",
        "not implemented: we evaluate the policies moto holds for the role (explicit deny > allow > implicit deny; Action/NotAction, "
        "Resource/NotResource, * and ? wildcards; statements with conditions do not apply and their keys are reported missing, as without context entries)",
    ),
]


# moto's own evaluator (moto/iam/access_control.py) was the first choice, but it does not fit the simulator: it treats a
# statement with NotResource as matching everything, reads ARNs as regular expressions ('.' matches any character, no
# '?'), turns a statement whose condition is false into a deny, and cannot say which statement decided. So this is a
# small evaluator of its own, following IAM's documented evaluation logic for one account.
def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | dict) else list(value or [])


def _applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        action_matches = any(_glob(p, action, ignore_case=True) for p in _listed(statement["Action"]))
    else:
        action_matches = "NotAction" in statement and not any(_glob(p, action, ignore_case=True) for p in _listed(statement["NotAction"]))
    if not action_matches:
        return False
    if "Resource" in statement:
        return any(_glob(p, resource) for p in _listed(statement["Resource"]))
    if "NotResource" in statement:
        return not any(_glob(p, resource) for p in _listed(statement["NotResource"]))
    return True


def _document(text: Any) -> dict[str, Any]:
    from urllib.parse import unquote

    if isinstance(text, dict):
        return text
    text = str(text)
    return dict(json.loads(text if text.lstrip().startswith("{") else unquote(text)))


def _role_policies(role_arn: str) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, Any] | None]:
    """(source id, source type, document) of each identity policy of the role, and its permissions boundary."""
    from moto.iam.models import iam_backends

    account = active()
    backend = iam_backends[account.account_id]["aws"]
    role = backend.get_role(role_arn.rsplit("/", 1)[-1])

    def default_document(policy: Any) -> dict[str, Any]:
        return _document(next(v.document for v in policy.versions if v.is_default))

    sources = [(name, "role", _document(document)) for name, document in role.policies.items()]
    for arn, policy in role.managed_policies.items():
        sources.append((policy.name, "aws-managed" if ":iam::aws:" in arn else "user-managed", default_document(policy)))
    boundary = None
    if role.permissions_boundary_arn:
        boundary = default_document(backend.get_policy(role.permissions_boundary_arn))
    return sources, boundary


def _evaluate(sources: list[tuple[str, str, dict[str, Any]]], action: str, resource: str) -> tuple[str, list[dict[str, Any]], set[str]]:
    denied: list[dict[str, Any]] = []
    allowed: list[dict[str, Any]] = []
    missing: set[str] = set()
    for source_id, source_type, document in sources:
        for statement in _listed(document.get("Statement")):
            if not _applies(statement, action, resource):
                continue
            if statement.get("Condition"):
                missing.update(key for operator in statement["Condition"].values() for key in operator)
                continue
            matched = {"SourcePolicyId": source_id, "SourcePolicyType": source_type}
            (denied if statement.get("Effect") == "Deny" else allowed).append(matched)
    if denied:
        return "explicitDeny", denied, missing
    return ("allowed", allowed, missing) if allowed else ("implicitDeny", [], missing)


def _simulate_principal_policy(params: dict[str, Any]) -> Any:
    try:
        sources, boundary = _role_policies(str(params["PolicySourceArn"]))
    except Exception:  # noqa: BLE001 - moto's IAM raises its own not-found error type
        return error_response("NoSuchEntity", f"The role {params['PolicySourceArn']} cannot be found.", 404)
    if params.get("ResourcePolicy"):
        sources.append(("ResourcePolicy", "resource", _document(params["ResourcePolicy"])))
    results = []
    for action in params.get("ActionNames", []):
        for resource in params.get("ResourceArns") or ["*"]:
            decision, matched, missing = _evaluate(sources, action, resource)
            result: dict[str, Any] = {
                "EvalActionName": action,
                "EvalResourceName": resource,
                "EvalDecision": decision,
                "MatchedStatements": matched,
                "MissingContextValues": sorted(missing),
            }
            if boundary is not None:
                bounded = _evaluate([("PermissionsBoundary", "none", boundary)], action, resource)[0] == "allowed"
                result["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": bounded}
                if decision == "allowed" and not bounded:
                    result["EvalDecision"] = "implicitDeny"
            results.append(result)
    return response({"EvaluationResults": results, "IsTruncated": False})


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "iam:SimulatePrincipalPolicy": _simulate_principal_policy,
}
