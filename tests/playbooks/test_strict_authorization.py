"""A playbook run in the strict local account: a grant the template lacks fails the run as it would on AWS."""

from __future__ import annotations

from typing import Any

import pytest

from playbooks import project, scenario, simulate
from playbooks.local import account as account_module
from playbooks.local.recorder import RECORDER, Fault


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


def _attempts(machine: str, action: str) -> list[str | None]:
    """The error each call of `action` by the state machine's role met (None: it succeeded), in order."""
    return [c.error for c in RECORDER.calls if c.iam_action == action and c.principal == machine]


def test_a_denied_read_is_attempted_once() -> None:
    # GIVEN a key whose policy neither names the playbook's role nor lets IAM policies grant access: KMS denies the read
    # WHEN access-denied reads the key policy (Kms.KmsException: KMS's model names no AccessDeniedException)
    result = simulate.run(scenario.load("access-denied", "key-policy-not-delegated"))
    # THEN the denial is the answer at once: one call, no retries waited for, and the run ends as the scenario expects
    assert _attempts("AccessDeniedStateMachine", "kms:GetKeyPolicy") == ["AccessDeniedException"]
    assert result.passed, result.expect_failures


@pytest.mark.parametrize(
    ("name", "action", "code", "status"),
    [
        ("missing-s3-put", "iam:SimulatePrincipalPolicy", "Throttling", 400),  # Iam.IamException
        ("missing-s3-put", "s3:GetBucketPolicy", "SlowDown", 503),  # S3.S3Exception
        # a throttled attempt's error must not outlive the retry that succeeds: the plan reads the key policy's error
        ("kms-decrypt", "kms:GetKeyPolicy", "ThrottlingException", 400),  # Kms.KmsException
    ],
)
def test_throttling_that_comes_as_the_base_class_is_still_retried(name: str, action: str, code: str, status: int) -> None:
    # GIVEN the call throttled twice, with an error its service's model does not name (<Service>.<Service>Exception)
    fault = Fault(api=action, error=code, status=status, times=2, principal="AccessDeniedStateMachine", message="Rate exceeded")
    # WHEN the scenario runs
    result = simulate.run(scenario.load("access-denied", name), extra_faults=[fault])
    # THEN the call is made again until it passes, and the run ends as it does without the throttling
    assert _attempts("AccessDeniedStateMachine", action)[:3] == [code, code, None]
    assert result.passed, result.expect_failures
