"""The state machines' own paginated reads under small pages: AWS may answer any page short or empty, with a token.

CloudWatch Logs API reference, FilterLogEvents: "Partially full or empty pages don't necessarily mean that pagination
is finished"; IAM SimulatePrincipalPolicy, CloudTrail LookupEvents, Step Functions GetExecutionHistory and CloudWatch
DescribeAlarms document that a page may hold fewer results than asked for, with IsTruncated/Marker or NextToken.
These four are every paginated API (by botocore's paginator model) that a state machine calls through aws-sdk.
"""

from __future__ import annotations

import json

import pytest

from playbooks import project, scenario, simulate
from playbooks.local.recorder import RECORDER

CASES = [
    # an empty first page of events hid the denied call's key: the playbook escalated instead of fixing the key policy
    ("access-denied", "kms-decrypt", "AccessDeniedStateMachine", ["iam:SimulatePrincipalPolicy", "cloudtrail:LookupEvents"]),
    ("access-denied", "missing-s3-put", "AccessDeniedStateMachine", ["iam:SimulatePrincipalPolicy", "cloudtrail:LookupEvents"]),
    # an empty first page of history hid the stuck state: the report lost the function's timeout line
    ("execution-stuck", "lambda-timeout", "ExecutionStuckStateMachine", ["states:GetExecutionHistory"]),
    # an empty first page of alarms made the playbook create an alarm that exists
    ("event-loop", "processed-bucket-loop", "EventLoopStateMachine", ["cloudwatch:DescribeAlarms"]),
]


def _tokens(read: str, machine: str) -> list[str | None]:
    return [
        c.params.get("NextToken") or c.params.get("nextToken") or c.params.get("Marker")
        for c in RECORDER.calls
        if c.api == read and c.principal == machine
    ]


@pytest.mark.parametrize(("playbook", "name", "machine", "reads"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_the_state_machines_read_past_short_and_empty_pages(playbook: str, name: str, machine: str, reads: list[str]) -> None:
    # WHEN the scenario runs with every page empty first and then one item long (the pagination pass of the gate)
    result = simulate.run(scenario.load(playbook, name), small_pages=True)
    # THEN the run reaches the answer it reaches with full pages...
    assert result.passed, result.expect_failures
    # ...because each of the state machine's paginated reads went on past its empty first page with the token
    for read in reads:
        tokens = _tokens(read, machine)
        assert len(tokens) > 1 and tokens[0] is None and all(tokens[1:]), (read, tokens)


def test_the_history_kept_is_bounded() -> None:
    # GIVEN execution-stuck keeps the newest events of a history that is longer than one page of its own
    definition = json.loads((project.ROOT / "statemachines" / "execution-stuck.asl.json").read_text())
    wanted = definition["States"]["Read the execution's recent history"]["Parameters"]["MaxResults"]
    # WHEN every page is empty first and then one event long
    result = simulate.run(scenario.load("execution-stuck", "lambda-timeout"), small_pages=True)
    assert result.passed, result.expect_failures
    # THEN it stops reading once a page's worth is kept (the empty page, then one page per event), not at the first event
    tokens = _tokens("states:GetExecutionHistory", "ExecutionStuckStateMachine")
    assert len(tokens) == 1 + wanted, tokens
    assert tokens[-1] is not None


def _with_identity_deny() -> scenario.Scenario:
    """missing-s3-put where the role's own policy also denies the write: only the simulator's answer shows the deny."""
    loaded = scenario.load("access-denied", "missing-s3-put")
    data = json.loads(json.dumps(loaded.data))
    policy = data["world"]["roles"][0]["inlinePolicies"]["LambdaS3Access"]
    policy["Statement"].append({"Effect": "Deny", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::processed-data-bucket/*"})
    data["expect"] = {}
    return scenario.Scenario(loaded.playbook, loaded.name, loaded.path, data)


def test_an_explicit_deny_on_a_later_simulator_page_is_still_seen() -> None:
    # GIVEN the denied role's identity policy denies the action: with full pages the simulator says explicitDeny
    full = simulate.run(_with_identity_deny())
    assert full.outcome == "escalated" and not full.mutations, (full.outcome, full.mutations)
    # WHEN the simulator's first page comes back empty with IsTruncated
    small = simulate.run(_with_identity_deny(), small_pages=True)
    # THEN the playbook reads on and escalates the deny as before instead of proposing an Allow it cannot make work
    assert (small.outcome, small.mutations) == (full.outcome, full.mutations)
    assert any("explicitly denies" in email["body"] for email in small.emails), [e["subject"] for e in small.emails]
