"""Undo: every applied change of every playbook can be taken back, drift-checked, approved and verified."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from approval_helpers import wait_for

from playbooks import assure, project, scenario, simulate, validate
from playbooks.local.account import TERMINAL, LocalAccount
from playbooks.local.recorder import RECORDER, Fault

UNDO_SCENARIOS = sorted(
    (path.parent.name, path.stem) for path in scenario.project.SCENARIOS.glob("*/*.yaml") if path.stem.endswith("-undo")
)


def load(playbook: str, name: str) -> scenario.Scenario:
    return scenario.load(playbook, name)


def variant(playbook: str, name: str, **changes: Any) -> scenario.Scenario:
    base = load(playbook, name)
    data = json.loads(json.dumps(base.data)) | changes
    return scenario.Scenario(base.playbook, f"{name}-variant", base.path, data)


@pytest.mark.parametrize(("playbook", "name"), UNDO_SCENARIOS)
def test_undo_scenario_meets_its_expectations(playbook: str, name: str) -> None:
    result = simulate.run(load(playbook, name))
    assert result.passed, result.expect_failures


def test_every_playbook_has_a_remediate_then_undo_scenario_ending_at_the_before_state() -> None:
    restored = {playbook for playbook, name in UNDO_SCENARIOS if load(playbook, name).expect.get("undo", {}).get("restored") is True}
    # execution-stuck stops and restarts executions only: nothing of it can be undone (its scenario says so)
    assert restored == {"lambda-throttling", "cost-spike", "access-denied", "event-loop"}


def test_the_reservation_is_raised_then_restored_to_exactly_its_previous_value_with_two_approvals() -> None:
    concurrency: list[int] = []

    def reservations(account: LocalAccount, _: simulate.Result) -> None:
        concurrency.extend(
            int(c.params["ReservedConcurrentExecutions"])
            for c in RECORDER.calls
            if c.api == "lambda:PutFunctionConcurrency" and c.principal != "world"
        )

    result = simulate.run(load("lambda-throttling", "throttled-then-undo"), inspect=reservations)
    assert (result.outcome, result.approvals, concurrency) == ("remediated", 2, [200, 100])
    assert result.undo is not None and (result.undo["outcome"], result.undo["differences"]) == ("undone", [])


def test_a_rejected_undo_changes_nothing_and_the_world_keeps_the_run_s_change() -> None:
    result = simulate.run(variant("lambda-throttling", "throttled-then-undo", decision=["approve", "reject"]))
    assert result.undo is not None
    assert (result.undo["outcome"], result.undo["mutations"]) == ("rejected", [])
    assert result.undo["differences"] == [
        'functions ingest-handler: {"memorySize": 512, "reservedConcurrency": 100} -> {"memorySize": 512, "reservedConcurrency": 200}'
    ]


def test_a_partly_approved_undo_applies_only_the_approved_inverses() -> None:
    # GIVEN every saving applied; WHEN the undo's approver approves only putting the memory back
    decisions = [load("cost-spike", "approve-all-then-undo").decisions[0], {"approve": ["undo_0_memory"]}]
    result = simulate.run(variant("cost-spike", "approve-all-then-undo", decision=decisions))
    # THEN only that inverse is applied and verified
    assert result.undo is not None
    assert (result.undo["outcome"], result.undo["mutations"]) == ("undone", ["lambda:UpdateFunctionConfiguration transform-handler"])
    assert result.undo["report"] is not None and len(result.undo["report"]["proposed"]) == 6
    assert len(result.undo["differences"]) == 5


def test_a_capacity_mode_switch_aws_refuses_escalates_the_undo_with_aws_s_reason() -> None:
    refusal = Fault(
        api="dynamodb:UpdateTable",
        error="LimitExceededException",
        principal="UndoApplyFunction",
        message="Subscriber limit exceeded: Billing mode can only be updated once per 24 hours",
    )
    result = simulate.run(load("cost-spike", "approve-all-then-undo"), extra_faults=[refusal])
    assert result.undo is not None and result.undo["report"] is not None
    assert result.undo["outcome"] == "escalated"
    assert any("LimitExceededException" in line for line in result.undo["report"]["refused"])
    # the other five inverses were applied; only the table stays on demand
    assert [d.split(":")[0] for d in result.undo["differences"]] == ["tables etl-metadata"]


def test_undoing_twice_changes_nothing_the_second_time() -> None:
    second: dict[str, Any] = {}

    def undo_again(account: LocalAccount, result: simulate.Result) -> None:
        first_call = len(RECORDER.calls)
        arn = account.start("undo", {"executionArn": result.executions[0]})
        wait_for(lambda: account.describe(arn)["status"] in TERMINAL, "the second undo to finish")
        second.update(account.describe(arn))
        second["mutations"] = simulate.playbook_mutations(account, "undo", RECORDER.calls[first_call:])

    result = simulate.run(load("lambda-throttling", "throttled-then-undo"), inspect=undo_again)
    assert result.undo is not None and result.undo["outcome"] == "undone"
    assert (json.loads(second["output"])["outcome"], second["mutations"]) == ("no-action", [])
    assert "already at its before-state" in json.dumps(json.loads(second["output"])["result"]["report"]["evidence"])


@pytest.mark.parametrize(
    "undo_input",
    [
        {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:unknown-machine:never-ran"},
        {"executionArn": "not an arn"},
        {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:run", "extra": 1},
    ],
)
def test_bad_undo_input_is_refused_with_a_clear_error_and_changes_nothing(undo_input: dict[str, Any]) -> None:
    result = simulate.run(variant("lambda-throttling", "throttled-then-undo", undo={"input": undo_input}))
    assert result.undo is not None
    assert (result.undo["status"], result.undo["outcome"], result.undo["mutations"]) == ("FAILED", "failed", [])
    assert result.undo["states"][-1] == "Reject the input"


def test_an_undo_with_the_brake_engaged_asks_and_changes_nothing() -> None:
    brake = {
        "call": "ssm:PutParameter",
        "params": {"Name": "/etl-playbooks/playbooks/brake", "Value": "engaged", "Type": "String", "Overwrite": True},
    }
    result = simulate.run(variant("lambda-throttling", "throttled-then-undo", undo={"drift": [brake]}))
    assert result.undo is not None
    assert (result.undo["outcome"], result.undo["mutations"], result.approvals) == ("paused", [], 1)


def test_undo_takes_the_playbook_s_own_lock_on_the_resource() -> None:
    # GIVEN a remediated run, and another run of the playbook holding the lock on the same function
    outcome: dict[str, Any] = {}

    def undo_while_locked(account: LocalAccount, result: simulate.Result) -> None:
        expires = "2999-01-01T00:00:00.000Z"
        item = {
            "pk": {"S": "lambda-throttling#ingest-handler"},
            "execution": {"S": "another-run"},
            "expiresAt": {"S": expires},
            "ttl": {"N": "32503680000"},
        }
        account.client("dynamodb").put_item(TableName=account.resources["LocksTable"], Item=item)
        first_call = len(RECORDER.calls)
        arn = account.start("undo", {"executionArn": result.executions[0]})
        wait_for(lambda: account.describe(arn)["status"] in TERMINAL, "the undo to finish")
        outcome["outcome"] = simulate.outcome_of(account.describe(arn))
        outcome["mutations"] = simulate.playbook_mutations(account, "undo", RECORDER.calls[first_call:])

    # WHEN the undo starts THEN it ends already-running and changes nothing
    simulate.run(load("lambda-throttling", "throttled"), inspect=undo_while_locked)
    assert outcome == {"outcome": "already-running", "mutations": []}


def test_a_fault_aimed_at_the_second_state_calling_a_function_fails_that_state_not_the_first() -> None:
    # GIVEN the undo's inspecting function serves two states: the plan, and the check that the before-state is back
    states = dict(validate.states_of(project.playbook("undo").definition))
    aimed = assure.task_call("Check the before-state is back", states["Check the before-state is back"], "UndoStateMachine")
    assert aimed is not None
    persistent = Fault(api=aimed.api, error="ServiceException", times=1000, principal=aimed.principal, state=aimed.state, match=aimed.match)
    # WHEN every call of that state fails
    result = simulate.run(load("lambda-throttling", "throttled-then-undo"), extra_faults=[persistent])
    # THEN the plan (the first state of that function) was made, the inverse applied, and the undo failed at the check
    assert result.undo is not None
    visited = result.undo["states"]
    assert "Check what is still in place" in visited and "Apply the approved inverses" in visited, visited
    assert ("Check the before-state is back", "Undo failed") in set(itertools.pairwise(visited)), visited
    assert (result.undo["outcome"], persistent.fired > 1) == ("failed", True)
