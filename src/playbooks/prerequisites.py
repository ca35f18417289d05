"""What must exist in the account before the stack deploys, and a check of it (`playbooks preflight`).

The access-denied alarm counts access-denied lines in the pipeline functions' log groups through
AWS::Logs::MetricFilter resources, and CloudFormation refuses a metric filter whose log group does not exist (the
stack fails and rolls back). Those groups are not the stack's to own: Lambda creates a function's group when it
first runs, and an AWS::Logs::LogGroup of the same name would fail the deploy wherever the group already exists and
delete the pipeline's logs with the stack. So the deploy needs them as a prerequisite, and this module says which.
"""

from __future__ import annotations

import re
from typing import Any

from . import project

SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def filtered_log_groups(parameters: dict[str, str] | None = None) -> list[str]:
    """The log groups the template's metric filters read, with the parameters (or their defaults) filled in."""
    template = project.template()
    values = {name: str(slot.get("Default", "")) for name, slot in template.get("Parameters", {}).items()} | (parameters or {})
    groups = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Logs::MetricFilter":
            continue
        name = resource["Properties"]["LogGroupName"]
        text = name["Fn::Sub"] if isinstance(name, dict) else str(name)
        groups.add(SUBSTITUTION.sub(lambda match: values[match.group(1)], text))
    return sorted(groups)


def missing_log_groups(logs: Any, parameters: dict[str, str] | None = None) -> list[str]:
    """The filtered log groups that do not exist in the account `logs` (a CloudWatch Logs client) reads."""
    missing = []
    for group in filtered_log_groups(parameters):
        found = (
            existing["logGroupName"]
            for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group)
            for existing in page["logGroups"]
        )
        if group not in found:
            missing.append(group)
    return missing
