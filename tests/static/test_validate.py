"""`playbooks validate`: passes on the project, and the approval-gate proof catches an ungated change."""

from __future__ import annotations

import copy

import pytest
from typer.testing import CliRunner

from playbooks import project, validate
from playbooks.cli import app

runner = CliRunner()


def test_validate_passes_on_the_project() -> None:
    result = runner.invoke(app, ["validate"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output


@pytest.mark.parametrize("playbook", sorted(project.playbooks()))
def test_every_mutating_task_is_gated(playbook: str) -> None:
    chosen = project.playbook(playbook)
    assert validate.approval_gate(chosen.definition, chosen.logical_id) == []


def test_gate_proof_finds_a_change_that_skips_approval() -> None:
    # GIVEN the throttling playbook with its dry-run check wired straight to the change
    definition = copy.deepcopy(project.playbook("lambda-throttling").definition)
    definition["States"]["Is this a dry run?"]["Default"] = "Raise reserved concurrency"
    # WHEN the proof runs THEN it names the mutating state and the path to it
    problems = validate.approval_gate(definition, "LambdaThrottlingStateMachine")
    assert len(problems) == 1
    assert "'Raise reserved concurrency' (aws-sdk lambda:PutFunctionConcurrency)" in problems[0]
    assert "Is this a dry run? -> Raise reserved concurrency" in problems[0]


def test_gate_proof_counts_catch_paths() -> None:
    definition = copy.deepcopy(project.playbook("lambda-throttling").definition)
    definition["States"]["Propose a remediation"]["Catch"][0]["Next"] = "Raise reserved concurrency"
    assert validate.approval_gate(definition, "LambdaThrottlingStateMachine")


def test_lock_bookkeeping_is_not_a_change() -> None:
    state = project.playbook("lambda-throttling").definition["States"]["Take the playbook lock"]
    assert validate.mutating_reason(state, "LambdaThrottlingStateMachine") is None


# Defect 8: the proof treated every Lambda task as read-only, so event-loop's stopper (thousands of StopExecution
# calls from its function) was neither proven gated nor shown as a change.
def test_a_function_that_may_change_things_is_a_change_by_its_grants() -> None:
    assert validate.function_changes("EventLoopStopFunction") == ["states:StopExecution"]
    stopper = project.playbook("event-loop").definition["States"]["Stop the running executions"]
    assert validate.mutating_reason(stopper, "EventLoopStateMachine") == "lambda EventLoopStopFunction may call states:StopExecution"


def test_gate_proof_finds_a_function_that_changes_things_without_approval() -> None:
    # GIVEN event-loop started straight at its stopper
    definition = copy.deepcopy(project.playbook("event-loop").definition)
    definition["StartAt"] = "Stop the running executions"
    # WHEN the proof runs THEN the stopper is an ungated change
    problems = validate.approval_gate(definition, "EventLoopStateMachine")
    assert any("'Stop the running executions' (lambda EventLoopStopFunction may call states:StopExecution)" in p for p in problems)


def test_read_only_and_bookkeeping_functions_are_not_changes() -> None:
    # reads, its own approvals table and topic, starting the playbook's own executions
    for function in ("ThrottlingDiagnosisFunction", "ApprovalRequestFunction", "ReportFunction", "StuckExecutionFanOutFunction"):
        assert validate.function_changes(function) == [], function


def test_fidelity_rules_reject_jsonata_and_missing_timeout() -> None:
    playbook = project.playbook("lambda-throttling")
    substitutions = set(project.template()["Resources"][playbook.logical_id]["Properties"]["DefinitionSubstitutions"])
    assert validate.asl_fidelity(playbook, substitutions) == []
    assert any("has no DefinitionSubstitutions entry" in p for p in validate.asl_fidelity(playbook, substitutions - {"PlanFunctionArn"}))


def test_gate_proof_looks_inside_map_states() -> None:
    # GIVEN the cost-spike playbook with its per-action Map moved before the approval
    definition = copy.deepcopy(project.playbook("cost-spike").definition)
    definition["States"]["Is this a dry run?"]["Default"] = "Apply each approved action"
    # WHEN the proof runs THEN it finds the writes inside the Map
    problems = validate.approval_gate(definition, "CostSpikeStateMachine")
    assert any('"Lower the function\'s memory" (aws-sdk lambda:UpdateFunctionConfiguration)' in p for p in problems)
    assert any("'Shorten the log retention' (aws-sdk cloudwatchlogs:PutRetentionPolicy)" in p for p in problems)


def test_role_grant_check_uses_iam_action_names() -> None:
    actions = validate.task_actions(project.playbook("cost-spike").definition)
    assert actions["Enable S3 Intelligent-Tiering"] == "s3:PutLifecycleConfiguration"
    assert actions["Shorten the log retention"] == "logs:PutRetentionPolicy"


UNDO_MACHINE = "UndoStateMachine"


def test_undo_s_changes_are_gated_like_any_playbook_s() -> None:
    # The undo's changes are made by a Lambda task: the proof judges it by the function's grants.
    definition = project.playbook("undo").definition
    changing = [name for name, state in validate.states_of(definition) if validate.mutating_reason(state, UNDO_MACHINE)]
    assert changing == ["Apply the approved inverses"]
    assert validate.approval_gate(definition, UNDO_MACHINE) == []


def test_gate_proof_finds_an_undo_that_skips_approval() -> None:
    # GIVEN the undo with its dry-run check wired straight to applying the inverses
    definition = copy.deepcopy(project.playbook("undo").definition)
    definition["States"]["Is this a dry run?"]["Default"] = "Apply the approved inverses"
    # WHEN the proof runs THEN it names the Lambda task and what its grants allow
    [problem] = validate.approval_gate(definition, UNDO_MACHINE)
    assert "'Apply the approved inverses' (lambda UndoApplyFunction may call" in problem
    assert "lambda:PutFunctionConcurrency" in problem and "iam:DeleteRolePolicy" in problem


def test_a_function_that_only_keeps_the_books_is_not_a_change() -> None:
    assert validate.function_changes("ReportFunction") == []
    assert validate.function_changes("SafetyControlsFunction") == []
    assert validate.function_changes("UndoApplyFunction")


@pytest.mark.parametrize("playbook", sorted(project.playbooks()))
def test_every_change_after_an_approval_passes_a_brake_check(playbook: str) -> None:
    chosen = project.playbook(playbook)
    assert validate.brake_gate(chosen.definition, chosen.logical_id) == []


def test_brake_proof_finds_an_approval_wired_straight_to_the_change() -> None:
    # GIVEN the throttling playbook whose approval leads straight to its choice of remediation, skipping the brake check
    definition = copy.deepcopy(project.playbook("lambda-throttling").definition)
    definition["States"]["Ask an approver"]["Next"] = "Which remediation was approved?"
    # WHEN the proof runs THEN it names each change and the path that skips the check
    problems = validate.brake_gate(definition, "LambdaThrottlingStateMachine")
    assert any(
        "'Raise reserved concurrency' (aws-sdk lambda:PutFunctionConcurrency)" in p
        and "Ask an approver -> Which remediation was approved?" in p
        for p in problems
    ), problems
    # AND the approval gate alone does not see it: the change is still after an approval
    assert validate.approval_gate(definition, "LambdaThrottlingStateMachine") == []


def test_brake_proof_lets_nothing_through_a_failed_check() -> None:
    # GIVEN the undo whose brake check, when it fails, goes on to apply the inverses
    definition = copy.deepcopy(project.playbook("undo").definition)
    definition["States"]["Check the brake before changing anything"]["Catch"][0]["Next"] = "Apply the approved inverses"
    [problem] = validate.brake_gate(definition, UNDO_MACHINE)
    assert "'Apply the approved inverses' (lambda UndoApplyFunction may call" in problem


def test_only_a_before_change_check_counts_as_the_brake() -> None:
    # GIVEN the throttling playbook whose second check asks in the wrong phase (the one before the approval)
    definition = copy.deepcopy(project.playbook("lambda-throttling").definition)
    definition["States"]["Check the brake before changing anything"]["Parameters"]["Payload"]["phase"] = "before-approval"
    assert validate.brake_gate(definition, "LambdaThrottlingStateMachine")
