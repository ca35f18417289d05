"""The approval-gate proof on crafted graphs: it must find every ungated change, however the graph reaches it.

Each graph is the smallest shape that hides a change from a proof that stops too early, forgets a kind of edge or a
kind of write: long ungated branches beside a gated one, Parallel branches, the legacy Map `Iterator`, catchers,
DynamoDB writes to a table of the pipeline, and a nested StartExecution.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from playbooks import validate

APPROVAL = {"Type": "Task", "Resource": validate.APPROVAL_RESOURCE, "TimeoutSeconds": 60, "Parameters": {}}
CHANGE = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:lambda:putFunctionConcurrency", "Parameters": {}}
READ = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:lambda:getFunctionConcurrency", "Parameters": {}}
PASS = {"Type": "Pass"}


def gate(definition: dict[str, Any], machine: str = "LambdaThrottlingStateMachine") -> list[str]:
    """The proof on a crafted graph, as part of `machine` (whose substitutions resolve a Lambda task's function)."""
    return validate.approval_gate(definition, machine)


def state(base: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {**base, **more}


def chain(names: list[str], last: dict[str, Any], prefix: dict[str, Any] = PASS) -> dict[str, dict[str, Any]]:
    """`names[0] -> names[1] -> ... -> names[-1]`, every state a `prefix` but the last, which is `last` (ending)."""
    states = {name: state(prefix, Next=following) for name, following in pairwise(names)}
    states[names[-1]] = state(last, End=True)
    return states


def test_a_gated_change_is_no_problem() -> None:
    definition = {"StartAt": "Ask", "States": {"Ask": state(APPROVAL, Next="Change"), "Change": state(CHANGE, End=True)}}
    assert gate(definition) == []


def test_an_ungated_change_is_named_with_its_path() -> None:
    definition = {"StartAt": "Read", "States": {"Read": state(READ, Next="Change"), "Change": state(CHANGE, End=True)}}
    problems = gate(definition)
    assert len(problems) == 1
    assert "'Change'" in problems[0]
    assert "Read -> Change" in problems[0]


def test_a_longer_ungated_branch_beside_an_approval_is_still_examined() -> None:
    # GIVEN a Choice whose first branch reaches an approval at once and whose second reaches a change three states later
    states: dict[str, Any] = {
        "Which?": {"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": True, "Next": "Ask"}], "Default": "A"},
        "Ask": state(APPROVAL, Next="Gated change"),
        "Gated change": state(CHANGE, End=True),
        **chain(["A", "B", "C", "Ungated change"], CHANGE),
    }
    # WHEN the proof runs (the approval is dequeued before the long branch's change)
    problems = gate({"StartAt": "Which?", "States": states})
    # THEN the search went on past the approval and found the change at the end of the long branch
    assert len(problems) == 1
    assert "'Ungated change'" in problems[0]
    assert "Which? -> A -> B -> C -> Ungated change" in problems[0]


def test_every_ungated_change_is_reported_not_only_the_first() -> None:
    states: dict[str, Any] = {
        "Which?": {"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": True, "Next": "First"}], "Default": "Second"},
        "First": state(CHANGE, End=True),
        "Second": state(CHANGE, Resource="arn:aws:states:::aws-sdk:iam:putRolePolicy", End=True),
    }
    problems = gate({"StartAt": "Which?", "States": states})
    assert sorted(problem.split(" ", 1)[0] for problem in problems) == ["'First'", "'Second'"]


def test_a_catcher_that_skips_the_approval_is_a_path() -> None:
    states: dict[str, Any] = {
        "Read": state(READ, Next="Ask", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Change"}]),
        "Ask": state(APPROVAL, Next="Done"),
        "Done": {"Type": "Succeed"},
        "Change": state(CHANGE, End=True),
    }
    problems = gate({"StartAt": "Read", "States": states})
    assert len(problems) == 1
    assert "Read -> Change" in problems[0]


def test_a_change_inside_a_parallel_branch_is_found() -> None:
    branch = {"StartAt": "Inner read", "States": {"Inner read": state(READ, Next="Inner change"), "Inner change": state(CHANGE, End=True)}}
    states: dict[str, Any] = {
        "Fan out": {"Type": "Parallel", "Branches": [{"StartAt": "Noop", "States": {"Noop": state(PASS, End=True)}}, branch], "End": True}
    }
    problems = gate({"StartAt": "Fan out", "States": states})
    assert len(problems) == 1
    assert "Fan out -> Inner read -> Inner change" in problems[0]


def test_a_change_inside_a_legacy_map_iterator_is_found() -> None:
    iterator = {"StartAt": "Each", "States": {"Each": state(CHANGE, End=True)}}
    states: dict[str, Any] = {"For each": {"Type": "Map", "Iterator": iterator, "End": True}}
    problems = gate({"StartAt": "For each", "States": states})
    assert len(problems) == 1
    assert "For each -> Each" in problems[0]


def test_a_change_inside_an_item_processor_is_found_and_an_approval_inside_gates_it() -> None:
    ungated = {"StartAt": "Each", "States": {"Each": state(CHANGE, End=True)}}
    gated = {"StartAt": "Ask each", "States": {"Ask each": state(APPROVAL, Next="Each"), "Each": state(CHANGE, End=True)}}
    assert gate({"StartAt": "Map", "States": {"Map": {"Type": "Map", "ItemProcessor": ungated, "End": True}}})
    assert gate({"StartAt": "Map", "States": {"Map": {"Type": "Map", "ItemProcessor": gated, "End": True}}}) == []


@pytest.mark.parametrize("action", ["putItem", "updateItem", "deleteItem"])
def test_a_dynamodb_write_to_a_pipeline_table_is_a_change(action: str) -> None:
    write = {"Type": "Task", "Resource": f"arn:aws:states:::dynamodb:{action}", "Parameters": {"TableName": "${MetadataTableName}"}}
    problems = gate({"StartAt": "Write", "States": {"Write": state(write, End=True)}})
    assert len(problems) == 1
    assert f"dynamodb:{action}" in problems[0]


@pytest.mark.parametrize("action", ["getItem", "query", "scan"])
def test_a_dynamodb_read_is_not_a_change(action: str) -> None:
    read = {"Type": "Task", "Resource": f"arn:aws:states:::dynamodb:{action}", "Parameters": {"TableName": "${MetadataTableName}"}}
    assert gate({"StartAt": "Read", "States": {"Read": state(read, End=True)}}) == []


@pytest.mark.parametrize("table", sorted(validate.BOOKKEEPING_TABLES))
def test_the_playbooks_own_tables_are_bookkeeping(table: str) -> None:
    write = {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "Parameters": {"TableName": table}}
    assert gate({"StartAt": "Lock", "States": {"Lock": state(write, End=True)}}) == []


@pytest.mark.parametrize("suffix", ["", ".sync", ".sync:2", ".waitForTaskToken"])
def test_starting_another_execution_is_a_change(suffix: str) -> None:
    start: dict[str, Any] = {"Type": "Task", "Resource": f"arn:aws:states:::states:startExecution{suffix}", "Parameters": {}}
    if suffix == ".waitForTaskToken":
        start["TimeoutSeconds"] = 60
    problems = gate({"StartAt": "Start", "States": {"Start": state(start, End=True)}})
    assert len(problems) == 1
    assert "'Start' (states:StartExecution) is reachable" in problems[0]


def test_a_nested_start_execution_inside_a_parallel_branch_is_found() -> None:
    start = {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution", "Parameters": {}, "End": True}
    states: dict[str, Any] = {"Fan out": {"Type": "Parallel", "Branches": [{"StartAt": "Start", "States": {"Start": start}}], "End": True}}
    assert gate({"StartAt": "Fan out", "States": states})


def test_reads_choices_and_passes_are_no_change() -> None:
    states: dict[str, Any] = {
        "Read": state(READ, Next="Which?"),
        "Which?": {"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": True, "Next": "Fine"}], "Default": "Fail"},
        "Fine": {"Type": "Succeed"},
        "Fail": {"Type": "Fail", "Error": "X"},
    }
    assert gate({"StartAt": "Read", "States": states}) == []


def test_a_loop_back_before_the_approval_terminates_and_finds_the_change() -> None:
    states: dict[str, Any] = {
        "Poll": state(READ, Next="Again?"),
        "Again?": {"Type": "Choice", "Choices": [{"Variable": "$.again", "BooleanEquals": True, "Next": "Poll"}], "Default": "Change"},
        "Change": state(CHANGE, End=True),
    }
    problems = gate({"StartAt": "Poll", "States": states})
    assert len(problems) == 1
    assert "Poll -> Again? -> Change" in problems[0]


def test_a_lambda_task_whose_function_may_change_things_is_a_change() -> None:
    # GIVEN event-loop's stopper (its role may call states:StopExecution) reached without approval
    stopper = {"Type": "Task", "Resource": validate.LAMBDA_INVOKE, "Parameters": {"FunctionName": "${StopFunctionArn}"}}
    problems = gate({"StartAt": "Stop", "States": {"Stop": state(stopper, End=True)}}, machine="EventLoopStateMachine")
    # THEN the proof names it by its function's grants
    assert len(problems) == 1
    assert "EventLoopStopFunction may call states:StopExecution" in problems[0]


def test_a_lambda_task_whose_function_only_reads_is_no_change() -> None:
    planner = {"Type": "Task", "Resource": validate.LAMBDA_INVOKE, "Parameters": {"FunctionName": "${PlanFunctionArn}"}}
    assert gate({"StartAt": "Plan", "States": {"Plan": state(planner, End=True)}}) == []
