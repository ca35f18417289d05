"""execution-stuck's plan is what the state machine applies: the stop (its error and cause recorded by Step Functions),
the reprocessing run (its name, the execution whose input it gets, and rollback), and the threshold under which nothing
is proposed.

The plan never carries the stuck execution's input (up to 256 KiB): it names the execution (`inputOf`), and the
reprocess function reads the input there and starts the retry with it. The change states read `$.plan.actions[0]`
and `[1]` (target, after.*); the approval page shows the description and before -> after; the undo reads the
rollback. Each field is checked against what the inputs say it must be.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

import execution_stuck
from playbooks import project

WORKFLOW = "arn:aws:states:us-east-1:123456789012:stateMachine:etl-workflow"
STUCK = "arn:aws:states:us-east-1:123456789012:execution:etl-workflow:abc"
STARTED = "2026-11-25T03:00:00.000Z"
NOW = datetime(2026, 11, 25, 3, 40, tzinfo=UTC)
RUN = "arn:aws:states:us-east-1:123456789012:execution:execution-stuck:run-1"
S3_INPUT = json.dumps({"detail": {"bucket": {"name": "raw-data-bucket"}, "object": {"key": "incoming/a.csv"}}})
OBJECT = {"bucket": "raw-data-bucket", "key": "incoming/a.csv"}
DEFINITION = project.playbook("execution-stuck").definition["States"]


class WorkflowSfn:
    """Step Functions as the diagnosis and the reprocess function see it: one stuck execution with its input."""

    def __init__(self, raw_input: str = S3_INPUT) -> None:
        self.input = raw_input
        self.started: list[dict[str, str]] = []

    def describe_state_machine_for_execution(self, executionArn: str) -> dict[str, Any]:
        assert executionArn == STUCK
        return {"definition": json.dumps({"StartAt": "Transform", "States": {"Transform": {"Type": "Pass", "End": True}}})}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        assert executionArn == STUCK  # the input is read from the stuck execution, nowhere else
        return {"executionArn": STUCK, "status": "ABORTED", "input": self.input}

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        self.started.append({"stateMachineArn": stateMachineArn, "name": name, "input": input})
        return {"executionArn": stateMachineArn.replace(":stateMachine:", ":execution:") + f":{name}", "startDate": NOW}


def read_object(raw_input: str) -> dict[str, str] | None:
    """The object the diagnosis reads from the stuck execution's input (it passes to the plan in `diagnosis.object`)."""
    _, obj = execution_stuck.read_workflow(WorkflowSfn(raw_input), STUCK)
    return obj


def reprocess_as_planned(action: dict[str, Any], sfn: WorkflowSfn) -> dict[str, Any]:
    """What the reprocess function does with the plan's action: read the input of `inputOf`, start the retry."""
    assert action["id"] == "reprocess"
    return execution_stuck.reprocess(
        sfn, input_of=action["after"]["inputOf"], state_machine_arn=action["target"], name=action["after"]["name"]
    )


def diagnosis(
    running: int = 40,
    *,
    state: str | None = "Transform",
    function: str | None = "transform-handler",
    obj: dict[str, str] | None = OBJECT,
) -> dict[str, Any]:
    return {
        "runningMinutes": running,
        "stuckMinutes": 35,
        "state": {"name": state, "enteredAt": "2026-11-25T03:05:00.000Z"},
        "function": function,
        "functionSettings": {"timeoutSeconds": 900, "memoryMb": 128} if function else None,
        "errorLines": ["Task timed out after 900.00 seconds"] if function else [],
        "cause": "lambda-timeout",
        "definition": {"withoutTimeout": ["Transform"], "withoutHeartbeat": [], "workflowTimeout": None},
        "object": obj,
    }


def plan(running: int = 40, raw_input: str = S3_INPUT, **kwargs: Any) -> dict[str, Any]:
    # the state machine reads the execution without its input (METADATA_ONLY); the object comes from the diagnosis
    target = {"executionArn": STUCK, "stateMachineArn": WORKFLOW}
    execution = {"name": "abc", "status": "RUNNING", "startDate": STARTED}
    found = diagnosis(running, obj=read_object(raw_input), **kwargs)
    return execution_stuck.plan(target, execution, found, {"stuckThresholdMinutes": 15}, RUN, NOW)


def test_a_stuck_run_is_stopped_with_a_cause_naming_the_incident_then_reprocessed_with_its_own_input() -> None:
    result = plan()
    name = execution_stuck.retry_name(STUCK, NOW)
    where = "'Transform' (transform-handler)"
    stop, reprocess = result["actions"]
    assert stop == {
        "id": "stop_execution",
        "api": "states:StopExecution",
        "target": STUCK,
        "description": f"Stop execution abc (stuck 35 minutes in {where}).",
        "before": {"status": "RUNNING"},
        "after": {
            "status": "ABORTED",
            "error": "ExecutionStuck",
            "cause": f"Manual intervention: execution timeout (execution-stuck playbook, incident run-1): stuck in {where} "
            f"for 35 minutes [lambda-timeout]; reprocessed as {name}.",
        },
        "rollback": None,
    }
    retry_arn = f"arn:aws:states:us-east-1:123456789012:execution:etl-workflow:{name}"
    assert reprocess == {
        "id": "reprocess",
        "api": "states:StartExecution",
        "target": WORKFLOW,
        "description": f"Reprocess: start execution {name} with the stuck execution's input "
        "(s3://raw-data-bucket/incoming/a.csv); only after the stop.",
        "before": {"execution": None},
        # the plan names the execution whose input the retry gets, never the input itself
        "after": {"name": name, "executionArn": retry_arn, "inputOf": STUCK, "object": OBJECT},
        "rollback": {"api": "states:StopExecution", "parameters": {"ExecutionArn": retry_arn}},
    }
    assert S3_INPUT not in json.dumps(result)
    # AND the reprocess function, given that action, starts the retry on the workflow with the stuck run's own input
    sfn = WorkflowSfn()
    assert reprocess_as_planned(reprocess, sfn) == {"executionArn": retry_arn, "startDate": "2026-11-25T03:40:00.000Z"}
    assert sfn.started == [{"stateMachineArn": WORKFLOW, "name": name, "input": S3_INPUT}]
    assert result["case"] == "lambda-timeout"
    assert result["recommendations"] == execution_stuck.recommendations(diagnosis(), {"stuckThresholdMinutes": 15})
    assert result["summary"] == (
        f"Execution abc is stuck: 40 minutes RUNNING, 35 in {where}; {execution_stuck.CAUSE_TEXT['lambda-timeout']}. "
        f"One approval covers both actions: stop it, then start {name} with the same input (a stopped execution cannot be resumed)."
    )


def test_the_evidence_shows_the_run_the_state_the_cause_and_the_definitions_gaps() -> None:
    assert plan()["evidence"] == [
        "Execution abc of etl-workflow is RUNNING since 2026-11-25T03:00:00.000Z (40 minutes).",
        "It has been in state 'Transform' (transform-handler) for 35 minutes (last event: 2026-11-25T03:05:00.000Z).",
        f"Likely cause: {execution_stuck.CAUSE_TEXT['lambda-timeout']} [lambda-timeout].",
        "transform-handler: timeout 900 s, memory 128 MB.",
        "log: Task timed out after 900.00 seconds",
        "Tasks without TimeoutSeconds: Transform; callback tasks without HeartbeatSeconds: none.",
    ]


def test_an_unidentified_state_without_a_function_is_named_so() -> None:
    result = plan(state=None, function=None)
    assert result["actions"][0]["description"] == "Stop execution abc (stuck 35 minutes in an unidentified state)."
    assert "stuck in an unidentified state for 35 minutes" in result["actions"][0]["after"]["cause"]
    assert result["evidence"][-1] == "Tasks without TimeoutSeconds: Transform; callback tasks without HeartbeatSeconds: none."
    assert not any(line.startswith("No error lines") for line in result["evidence"])


def test_the_evidence_lists_every_gap_and_only_the_last_five_error_lines() -> None:
    lines = [f"ERROR {n}" for n in range(1, 8)]
    gaps = {"withoutTimeout": ["A", "B"], "withoutHeartbeat": ["C", "D"], "workflowTimeout": 600}
    target = {"executionArn": STUCK, "stateMachineArn": WORKFLOW}
    execution = {"name": "abc", "status": "RUNNING", "startDate": STARTED, "input": "{}"}
    noisy = diagnosis() | {"errorLines": lines, "definition": gaps}
    evidence = execution_stuck.plan(target, execution, noisy, {"stuckThresholdMinutes": 15}, RUN, NOW)["evidence"]
    assert [line for line in evidence if line.startswith("log: ")] == [f"log: ERROR {n}" for n in range(3, 8)]
    assert evidence[-1] == "Tasks without TimeoutSeconds: A, B; callback tasks without HeartbeatSeconds: C, D."
    quiet = diagnosis() | {"definition": {"withoutTimeout": [], "withoutHeartbeat": [], "workflowTimeout": 600}}
    evidence = execution_stuck.plan(target, execution, quiet, {"stuckThresholdMinutes": 15}, RUN, NOW)["evidence"]
    assert evidence[-1] == "Tasks without TimeoutSeconds: none; callback tasks without HeartbeatSeconds: none."


def test_a_function_without_error_lines_says_where_it_looked() -> None:
    result = plan()
    assert "log: Task timed out after 900.00 seconds" in result["evidence"]
    quiet = diagnosis() | {"errorLines": []}
    target = {"executionArn": STUCK, "stateMachineArn": WORKFLOW}
    execution = {"name": "abc", "status": "RUNNING", "startDate": STARTED, "input": "{}"}
    evidence = execution_stuck.plan(target, execution, quiet, {"stuckThresholdMinutes": 15}, RUN, NOW)["evidence"]
    assert "No error lines in /aws/lambda/transform-handler since the state started." in evidence


@pytest.mark.parametrize(("running", "stuck"), [(14, False), (15, True), (16, True)])
def test_the_threshold_is_inclusive_and_below_it_nothing_is_proposed(running: int, stuck: bool) -> None:
    result = plan(running)
    assert bool(result["actions"]) is stuck
    if not stuck:
        assert result == {
            "case": "not-stuck",
            "summary": f"Execution abc has run for {running} minutes, under the 15-minute threshold; it is not treated as "
            "stuck and nothing is proposed.",
            "actions": [],
            "evidence": plan(running)["evidence"],
            "recommendations": [],
        }
        assert len(result["evidence"]) == 6


def test_an_input_that_names_no_object_is_reprocessed_as_it_is() -> None:
    reprocess = plan(raw_input='{"files": 3}')["actions"][1]
    assert reprocess["after"]["object"] is None
    assert reprocess["after"]["inputOf"] == STUCK
    assert reprocess["description"].endswith("with the stuck execution's input; only after the stop.")
    sfn = WorkflowSfn('{"files": 3}')
    reprocess_as_planned(reprocess, sfn)
    assert [started["input"] for started in sfn.started] == ['{"files": 3}']


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (S3_INPUT, {"bucket": "raw-data-bucket", "key": "incoming/a.csv"}),
        (json.dumps({"detail": {"bucket": {"name": "b"}, "object": {}}}), None),
        (json.dumps({"detail": {"bucket": {}, "object": {"key": "k"}}}), None),
        (json.dumps({"detail": {"object": {"key": "k"}}}), None),
        (json.dumps({"detail": {"bucket": {"name": "b"}}}), None),
        (json.dumps({"detail": "not an event"}), None),
        (json.dumps(["a", "list"]), None),
        ("not json", None),
    ],
)
def test_the_source_object_is_read_only_from_an_object_created_event(raw: str, expected: dict[str, str] | None) -> None:
    assert execution_stuck.source_object(raw) == expected


def test_the_retry_name_is_the_second_and_a_digest_of_the_stuck_execution() -> None:
    name = execution_stuck.retry_name(STUCK, NOW)
    assert re.fullmatch(rf"retry-{int(NOW.timestamp())}-[0-9a-f]{{8}}", name)
    assert name == execution_stuck.retry_name(STUCK, NOW)
    assert name != execution_stuck.retry_name(STUCK + "x", NOW)


def resolve(path: str, actions: list[dict[str, Any]], index: int) -> Any:
    assert path.startswith(f"$.plan.actions[{index}].")
    value: Any = actions[index]
    for key in path.removeprefix(f"$.plan.actions[{index}].").split("."):
        value = value[key]
    return value


def test_the_change_states_read_the_fields_the_plan_fills(monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    # The stop takes its target and parameters from the plan's first action; the reprocess function's payload comes
    # from the second, and no state starts the retry with an input of its own.
    stop = next(s for s in DEFINITION.values() if s.get("Resource") == "arn:aws:states:::aws-sdk:sfn:stopExecution")
    assert not any(str(s.get("Resource", "")).startswith("arn:aws:states:::aws-sdk:sfn:startExecution") for s in DEFINITION.values())
    start = next(s for s in DEFINITION.values() if s.get("Parameters", {}).get("FunctionName") == "${ReprocessFunctionArn}")
    actions = plan()["actions"]
    stopped = {name.removesuffix(".$"): resolve(path, actions, 0) for name, path in stop["Parameters"].items()}
    assert stopped == {"ExecutionArn": STUCK, "Error": "ExecutionStuck", "Cause": actions[0]["after"]["cause"]}
    payload = {name.removesuffix(".$"): resolve(path, actions, 1) for name, path in start["Parameters"]["Payload"].items()}
    assert payload == {"inputOf": STUCK, "stateMachineArn": WORKFLOW, "name": actions[1]["after"]["name"]}
    # AND the reprocess function, given that payload, starts the retry on the workflow with the stuck run's input
    sfn = WorkflowSfn()
    monkeypatch.setattr(execution_stuck, "client", lambda service: {"stepfunctions": sfn}[service])
    result = execution_stuck.reprocess_handler(payload, lambda_context)
    assert result["executionArn"] == actions[1]["after"]["executionArn"]
    assert sfn.started == [{"stateMachineArn": WORKFLOW, "name": actions[1]["after"]["name"], "input": S3_INPUT}]
