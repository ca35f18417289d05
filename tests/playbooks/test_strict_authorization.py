"""A playbook run in the strict local account: a grant the template lacks fails the run as it would on AWS."""

from __future__ import annotations

from typing import Any

import pytest

from playbooks import project, scenario, simulate
from playbooks.local import account as account_module


def test_a_playbook_missing_a_grant_fails_with_awss_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the template without the throttling state machine's grant to change a function's concurrency
    original = project.template

    def without_the_grant() -> dict[str, Any]:
        template = original()
        for policy in template["Resources"]["LambdaThrottlingStateMachine"]["Properties"]["Policies"]:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [a for a in actions if a != "lambda:PutFunctionConcurrency"] or ["lambda:GetFunctionConcurrency"]
        return template

    monkeypatch.setattr(project, "template", without_the_grant)
    monkeypatch.setattr(account_module, "_TRANSLATED", {})
    # WHEN the approved remediation runs
    result = simulate.run(scenario.load("lambda-throttling", "throttled"))
    # THEN the change is refused as AWS refuses it, the run fails, nothing changed and the report quotes AWS's message
    assert (result.status, result.outcome, result.mutations) == ("FAILED", "failed", [])
    denied = "is not authorized to perform: lambda:PutFunctionConcurrency on resource: arn:aws:lambda:us-east-1:123456789012:function:ingest-handler"
    assert any(denied in email["body"] for email in result.emails)
