"""Read an AWS access-denied error message: who was denied, which action, on which resource, and why.

Pure text handling (no AWS), shared by input validation and the access-denied playbook. The variants it reads are
listed in VARIANTS (and in docs/access-denied.md); anything else is reported as unparseable, never guessed at.
"""

from __future__ import annotations

import re
from typing import Any

# What the parser understands, for the closing note of the playbook's report and the docs.
VARIANTS = [
    "IAM's form: 'User: <principal ARN> is not authorized to perform: <service>:<Action> on resource: <ARN> because ...'",
    "the same wrapped by an SDK error ('An error occurred (AccessDenied[Exception]) when calling the X operation: ...') or "
    "inside a JSON log line (escaped quotes)",
    "principals as assumed-role ARNs with or without a session name (assumed-role/<role>/<session>), or role ARNs with a path",
    "'on resource:' with the ARN bare or quoted (S3 quotes it), or absent (the resource then comes from CloudTrail)",
    "KMS's 'on the resource associated with this ciphertext' (the key then comes from CloudTrail)",
    "reasons: no identity-based policy allows; no resource-based policy allows; explicit deny in an identity-based or "
    "a resource-based policy; permissions boundary; session policy; service or resource control policy; VPC endpoint "
    "policy; or none given",
]

REASONS = [
    ("because no identity-based policy allows", "no-identity-allow"),
    ("because no resource-based policy allows", "no-resource-allow"),
    ("with an explicit deny in an identity-based policy", "identity-deny"),
    ("with an explicit deny in a resource-based policy", "resource-deny"),
    ("because no permissions boundary allows", "permissions-boundary"),
    ("with an explicit deny in a permissions boundary", "permissions-boundary"),
    ("because no session policy allows", "session-policy"),
    ("with an explicit deny in a session policy", "session-policy"),
    ("service control policy", "service-control-policy"),
    ("resource control policy", "resource-control-policy"),
    ("vpc endpoint policy", "vpc-endpoint-policy"),
    ("no resource-based policies allow access, or a resource-based policy explicitly denies access", "resource-policy"),
]

_DENIED = re.compile(r"\bis not authorized to perform:?\s*", re.IGNORECASE)
_PRINCIPAL = re.compile(r"\bUser:\s*(arn:aws[a-z-]*:(?:sts|iam)::\d{12}:[^\s\"']+)\s+is not authorized", re.IGNORECASE)
_ACTION = re.compile(r"([a-z0-9-]+:[A-Za-z0-9*?]+)")
_RESOURCE = re.compile(r"\s+on resource:?\s*(?:\"([^\"]+)\"|'([^']+)'|(\S+))", re.IGNORECASE)
_CIPHERTEXT = re.compile(r"\s+on the resource associated with this ciphertext", re.IGNORECASE)
_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+$")
MAX_MESSAGE = 8192


class Unparseable(ValueError):
    """The text is not an access-denied message this parser can read without guessing."""


def _principal(arn: str) -> dict[str, Any]:
    """assumed-role/<role>[/<session>], role/<path>/<name>, user/<name>, or something else (kind 'other')."""
    _, partition, service, _, account, resource = arn.split(":", 5)
    parts = resource.split("/")
    base = {"arn": arn, "partition": partition, "accountId": account}
    if service == "sts" and parts[0] == "assumed-role" and len(parts) >= 2 and parts[1]:
        return base | {"kind": "role", "roleName": parts[1], "sessionName": "/".join(parts[2:]) or None}
    if service == "iam" and parts[0] == "role" and len(parts) >= 2 and parts[-1]:
        return base | {"kind": "role", "roleName": parts[-1], "sessionName": None}
    if service == "iam" and parts[0] == "user":
        return base | {"kind": "user", "roleName": None, "sessionName": None}
    return base | {"kind": "other", "roleName": None, "sessionName": None}


def _reason(text: str) -> str:
    lowered = text.lower()
    for phrase, reason in REASONS:
        if phrase in lowered:
            return reason
    return "unspecified"


def parse(message: str) -> dict[str, Any]:
    """The parts of `message`; raises Unparseable with a sentence saying what is missing."""
    if not isinstance(message, str) or not message.strip():
        raise Unparseable("the message is empty")
    text = " ".join(message[:MAX_MESSAGE].replace('\\"', '"').replace("\\'", "'").split())
    denied = _DENIED.search(text)
    if denied is None:
        raise Unparseable("it has no 'is not authorized to perform: <action>' clause (S3's bare 'Access Denied' names nothing to fix)")
    principal_match = _PRINCIPAL.search(text)
    if principal_match is None:
        raise Unparseable("it names no principal ('User: <ARN> is not authorized ...'), so there is no role to examine")
    action_match = _ACTION.match(text, denied.end())
    if action_match is None:
        raise Unparseable("it names no action of the form <service>:<Action> after 'is not authorized to perform:'")
    action = action_match.group(1).rstrip(".,;")
    rest = text[action_match.end() :]
    resource: str | None = None
    resource_from = None
    resource_match = _RESOURCE.match(rest)
    if resource_match is not None:
        quoted_double, quoted_single, bare = resource_match.groups()
        # A bare ARN may end the sentence: its final period is not part of it (a quoted one keeps everything).
        resource = quoted_double or quoted_single or bare.rstrip(".,;")
        if not _ARN.match(resource):
            raise Unparseable(f"its resource {resource!r} is not an ARN")
        resource_from = "message"
    elif _CIPHERTEXT.match(rest):
        resource_from = "ciphertext"
    service, event_name = action.split(":", 1)
    return {
        "principal": _principal(principal_match.group(1)),
        "action": action,
        "service": service.lower(),
        "eventName": event_name,
        "resource": resource,
        "resourceFrom": resource_from,
        "reason": _reason(rest),
    }
