"""`playbooks retry-choices`: the rewrite that keeps an aws-sdk Task's first attempt from retrying a denial.

What a denial is named comes from AWS: IAM's API model names no AccessDenied (so a denial is `Iam.IamException`);
SNS answers a denial AuthorizationError, which its model names; Lambda and DynamoDB model their throttling.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from playbooks import project, retry_choices, validate
from playbooks.cli import app
from playbooks.local.aws import integrations

runner = CliRunner()
ENV = {"COLUMNS": "160"}
IAM_BASE = "Iam.IamException"
TASK = "Read the role"


def sdk_task(resource: str, retry: list[str], catch: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": f"arn:aws:states:::aws-sdk:{resource}",
        "Parameters": {"RoleName.$": "$.role"},
        "ResultPath": "$.found",
        "Retry": [{"ErrorEquals": retry, "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}],
        "Next": "Done",
    }
    if catch is not None:
        state["Catch"] = catch
    return state


IAM_CATCH = [
    {"ErrorEquals": ["Iam.NoSuchEntityException"], "ResultPath": "$.missing", "Next": "Done"},
    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"},
]


def machine(task: dict[str, Any], name: str = TASK) -> dict[str, Any]:
    return {
        "Comment": "A crafted state machine",
        "StartAt": name,
        "States": {name: task, "Done": {"Type": "Succeed"}, "Failed": {"Type": "Fail", "Error": "Failed"}},
    }


def iam_machine() -> dict[str, Any]:
    return machine(sdk_task("iam:getRole", [IAM_BASE, "States.Timeout"], copy.deepcopy(IAM_CATCH)))


def retried(state: dict[str, Any]) -> list[list[str]]:
    return [retrier["ErrorEquals"] for retrier in state.get("Retry", [])]


def aws_error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "REQ"}}


def unrewritten(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition as a contributor writes it before the tool: each Task retrying its base class, no Choices."""
    states = definition["States"]
    for name in [n for n in states if n.endswith(retry_choices.RETRY_SUFFIX)]:
        task = name.removesuffix(retry_choices.RETRY_SUFFIX)
        again = states.pop(name)
        del states[f"{task}: retry?"], states[f"{task}: keep the error"]
        own = {"Comment": states[task]["Comment"]} if "Comment" in states[task] else {}
        states[task] = {**own, **{k: v for k, v in again.items() if k != "Comment"}}
    for state in states.values():
        for inner in validate.inner_definitions(state):
            unrewritten(inner)
    return definition


def test_main_state_machines_are_a_fixed_point(tmp_path: Path) -> None:
    # GIVEN copies of main's state machines
    originals = {path.name: path.read_bytes() for path in retry_choices.state_machine_files()}
    for name, content in originals.items():
        (tmp_path / name).write_bytes(content)
    # WHEN --check reads the project's own files, and a rewrite runs over the copies
    checked = runner.invoke(app, ["retry-choices", "--check"], env=ENV)
    rewritten = runner.invoke(app, ["retry-choices", *(str(tmp_path / name) for name in originals)], env=ENV)
    # THEN neither finds anything to rewrite, and every copy is unchanged byte for byte
    assert checked.exit_code == 0, checked.output
    assert rewritten.exit_code == 0, rewritten.output
    assert rewritten.output.strip() == "nothing to rewrite"
    assert {name: (tmp_path / name).read_bytes() for name in originals} == originals
    # AND the project's ASL is written as `render` writes it, so a rewrite changes only the states it names
    assert all(retry_choices.render(json.loads(content)).encode() == content for content in originals.values())


@pytest.mark.parametrize("path", retry_choices.state_machine_files(), ids=lambda path: path.name)
def test_the_tool_writes_the_retry_choices_main_has(path: Path) -> None:
    # GIVEN one of main's state machines with its retry Choices taken out (the Task retrying its base class)
    expected = json.loads(path.read_text())
    definition = unrewritten(copy.deepcopy(expected))
    # WHEN the tool rewrites it
    rewritten = retry_choices.transform(definition)
    # THEN it gets back every Choice, Pass and copy main has, as written
    assert definition == expected
    assert len(rewritten) == sum(name.endswith(": retry?") for name, _ in validate.states_of(expected))


def test_an_iam_task_retrying_its_base_class_gets_the_choice_the_pass_and_the_copy() -> None:
    # GIVEN an IAM Task that retries Iam.IamException, which is how IAM's denial arrives
    definition = iam_machine()
    original = copy.deepcopy(definition["States"][TASK])
    assert retry_choices.denials_retried(definition) == [f"{TASK}: {IAM_BASE}"]
    # WHEN the tool rewrites it
    rewritten = retry_choices.transform(definition)
    states = definition["States"]
    # THEN the three states follow the Task
    assert rewritten == [TASK]
    assert list(states) == [TASK, f"{TASK}: retry?", f"{TASK}: keep the error", f"{TASK} (retry)", "Done", "Failed"]
    # AND the first attempt retries only the rest, and catches the base class into $.retrying for the Choice
    task = states[TASK]
    assert retried(task) == [["States.Timeout"]]
    assert task["Catch"] == [{"ErrorEquals": [IAM_BASE], "ResultPath": "$.retrying", "Next": f"{TASK}: retry?"}, *IAM_CATCH]
    # AND the Pass puts the error where the Task's catcher of the base class (States.ALL) put it
    keep = states[f"{TASK}: keep the error"]
    assert (keep["Type"], keep["InputPath"], keep["ResultPath"], keep["Next"]) == ("Pass", "$.retrying", "$.error", "Failed")
    # AND the copy is the Task with its original Retry and Catch
    again = states[f"{TASK} (retry)"]
    assert {k: v for k, v in again.items() if k != "Comment"} == original
    # AND the rule every playbook is held to holds
    assert retry_choices.denials_retried(definition) == []


@pytest.mark.parametrize(
    ("code", "message", "status", "goes_to"),
    [
        ("AccessDenied", "User: r is not authorized to perform: iam:GetRole", 403, ": keep the error"),
        ("Throttling", "Rate exceeded", 400, " (retry)"),
        ("InternalFailure", "An internal error occurred", 500, " (retry)"),
    ],
)
def test_the_choice_sends_a_denial_to_the_error_and_anything_else_to_the_retry(code: str, message: str, status: int, goes_to: str) -> None:
    # GIVEN the rewritten IAM Task, and an error of the call as Step Functions reports it
    definition = iam_machine()
    retry_choices.transform(definition)
    name, cause = integrations.sdk_error("iam", "iam", aws_error(code, message, status))
    assert name == IAM_BASE
    # WHEN the Choice reads the error's Cause
    choice = definition["States"][f"{TASK}: retry?"]
    (rule,) = choice["Choices"]
    chosen = rule["Next"] if any(fnmatch.fnmatchcase(cause, c["StringMatches"]) for c in rule["Or"]) else choice["Default"]
    # THEN a denial is the answer at once, anything else is tried again
    assert chosen == f"{TASK}{goes_to}"


def test_the_rewritten_machine_passes_the_projects_asl_checks(tmp_path: Path) -> None:
    # GIVEN the rewritten IAM Task, written as the project writes ASL
    definition = iam_machine()
    retry_choices.transform(definition)
    path = tmp_path / "crafted.asl.json"
    path.write_text(retry_choices.render(definition))
    # WHEN `playbooks validate`'s fidelity check reads it (transitions, the ASL parser)
    problems = validate.asl_fidelity(project.Playbook("crafted", "CraftedStateMachine", path, ""), set())
    # THEN it finds nothing
    assert problems == []


@pytest.mark.parametrize(
    ("resource", "base", "throttling"),
    [
        ("lambda:getFunctionConcurrency", "Lambda.LambdaException", ["Lambda.TooManyRequestsException"]),
        (
            "dynamodb:getItem",
            "DynamoDb.DynamoDbException",
            ["DynamoDb.ProvisionedThroughputExceededException", "DynamoDb.RequestLimitExceededException", "DynamoDb.ThrottlingException"],
        ),
    ],
)
def test_a_service_that_models_its_throttling_only_loses_the_base_class(resource: str, base: str, throttling: list[str]) -> None:
    # GIVEN a Task that retries the base class beside a modelled throttling name, and a retrier on the base class alone
    task = sdk_task(resource, [base, throttling[0], "States.Timeout"], copy.deepcopy(IAM_CATCH))
    task["Retry"].append({"ErrorEquals": [base], "MaxAttempts": 6})
    definition = machine(task)
    # WHEN the tool rewrites it
    rewritten = retry_choices.transform(definition)
    # THEN the base class is gone, the rest stays, and the retrier left empty retries the model's throttling
    assert rewritten == [TASK]
    assert retried(definition["States"][TASK]) == [[throttling[0], "States.Timeout"], throttling]
    assert definition["States"][TASK]["Retry"][1]["MaxAttempts"] == 6
    # AND no Choice is added: throttling has its own name, so a retrier can tell it from a denial
    assert list(definition["States"]) == [TASK, "Done", "Failed"]
    assert definition["States"][TASK]["Catch"] == IAM_CATCH
    assert retry_choices.denials_retried(definition) == []


def test_a_denial_name_the_model_declares_leaves_the_retry_and_the_copy() -> None:
    # GIVEN an S3 Task retrying S3.AccessDeniedException and S3.S3Exception (a denied HEAD comes as the latter)
    definition = machine(sdk_task("s3:getBucketPolicy", ["S3.AccessDeniedException", "S3.S3Exception"], copy.deepcopy(IAM_CATCH)))
    # WHEN the tool rewrites it
    retry_choices.transform(definition)
    # THEN the first attempt retries neither, and the copy retries only what may pass
    assert retried(definition["States"][TASK]) == []
    assert retried(definition["States"][f"{TASK} (retry)"]) == [["S3.S3Exception"]]
    assert retry_choices.denials_retried(definition) == []


def test_a_base_class_that_is_no_denial_is_left_alone() -> None:
    # GIVEN an SNS Task retrying Sns.SnsException: SNS's denial is AuthorizationError, which its model names
    definition = machine(sdk_task("sns:getTopicAttributes", ["Sns.SnsException"], copy.deepcopy(IAM_CATCH)))
    before = copy.deepcopy(definition)
    # WHEN the tool reads it
    rewritten = retry_choices.transform(definition)
    # THEN nothing changes
    assert rewritten == []
    assert definition == before
    assert retry_choices.denial_names("sns") == {"Sns.AuthorizationErrorException"}


@pytest.mark.parametrize(
    ("service", "names"),
    [
        ("iam", {"Iam.IamException"}),
        ("kms", {"Kms.KmsException"}),
        ("sfn", {"Sfn.SfnException"}),
        ("lambda", {"Lambda.LambdaException"}),
        ("s3", {"S3.AccessDeniedException", "S3.S3Exception"}),
        ("servicequotas", {"ServiceQuotas.AccessDeniedException"}),
    ],
)
def test_denial_names_are_what_step_functions_calls_each_services_denial(service: str, names: set[str]) -> None:
    assert retry_choices.denial_names(service) == names


def nested_machine() -> dict[str, Any]:
    """A Parallel state with the IAM Task in a branch, and a Map whose ItemProcessor holds it."""
    inner = iam_machine()
    return {
        "StartAt": "Both",
        "States": {
            "Both": {"Type": "Parallel", "Branches": [copy.deepcopy(inner)], "Next": "Each"},
            "Each": {"Type": "Map", "ItemsPath": "$.roles", "ItemProcessor": copy.deepcopy(inner), "End": True},
        },
    }


def test_tasks_inside_map_and_parallel_states_are_rewritten() -> None:
    # GIVEN the IAM Task inside a Parallel branch and a Map's ItemProcessor
    definition = nested_machine()
    # WHEN the tool rewrites the definition
    rewritten = retry_choices.transform(definition)
    # THEN each gets its three states beside it, in its own scope
    assert rewritten == [TASK, TASK]
    for inner in (definition["States"]["Both"]["Branches"][0], definition["States"]["Each"]["ItemProcessor"]):
        assert {f"{TASK}: retry?", f"{TASK}: keep the error", f"{TASK} (retry)"} <= set(inner["States"])
    assert list(definition["States"]) == ["Both", "Each"]
    assert retry_choices.denials_retried(definition) == []


@pytest.mark.parametrize("build", [iam_machine, nested_machine], ids=["iam", "nested"])
def test_running_twice_equals_running_once(build: Any) -> None:
    # GIVEN a definition the tool has rewritten
    definition = build()
    retry_choices.transform(definition)
    once = retry_choices.render(definition)
    # WHEN it runs again
    rewritten = retry_choices.transform(definition)
    # THEN it finds nothing to do and changes nothing
    assert rewritten == []
    assert retry_choices.render(definition) == once


def test_an_edit_of_the_task_reaches_its_retry_copy_on_the_next_run() -> None:
    # GIVEN a rewritten Task whose Parameters and Next a contributor then edits
    definition = iam_machine()
    retry_choices.transform(definition)
    states = definition["States"]
    again = copy.deepcopy(states[f"{TASK} (retry)"])
    states[TASK]["Parameters"] = {"RoleName.$": "$.other"}
    states[TASK]["Next"] = "Failed"
    # WHEN the tool runs again
    rewritten = retry_choices.transform(definition)
    # THEN the copy follows the Task, and keeps its own Comment, Retry and Catch
    assert rewritten == [TASK]
    copied = states[f"{TASK} (retry)"]
    assert (copied["Parameters"], copied["Next"]) == ({"RoleName.$": "$.other"}, "Failed")
    assert {k: copied[k] for k in ("Comment", "Retry", "Catch")} == {k: again[k] for k in ("Comment", "Retry", "Catch")}
    assert retried(states[TASK]) == [["States.Timeout"]]


def test_check_lists_the_tasks_to_rewrite_and_writes_nothing(tmp_path: Path) -> None:
    # GIVEN a file whose IAM Task retries its base class
    path = tmp_path / "crafted.asl.json"
    path.write_text(retry_choices.render(iam_machine()))
    before = path.read_bytes()
    # WHEN --check reads it
    result = runner.invoke(app, ["retry-choices", str(path), "--check"], env=ENV)
    # THEN it exits 1 naming the Task, and the file is as it was
    assert result.exit_code == 1, result.output
    assert f"{path}: {TASK}" in result.output
    assert path.read_bytes() == before


def test_the_rewrite_names_each_task_and_writes_the_file(tmp_path: Path) -> None:
    # GIVEN a file whose IAM Task retries its base class
    path = tmp_path / "crafted.asl.json"
    path.write_text(retry_choices.render(iam_machine()))
    # WHEN the command runs, then runs again
    first = runner.invoke(app, ["retry-choices", str(path)], env=ENV)
    written = path.read_text()
    second = runner.invoke(app, ["retry-choices", str(path)], env=ENV)
    # THEN the first names the Task and writes the rewrite as the project writes ASL; the second has nothing to do
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [f"{path}: {TASK}"]
    expected = iam_machine()
    retry_choices.transform(expected)
    assert written == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert second.exit_code == 0, second.output
    assert second.output.strip() == "nothing to rewrite"
    assert path.read_text() == written


def test_a_task_without_a_catch_for_its_base_class_is_a_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    # GIVEN two files: one the tool could rewrite, one whose Task catches only IAM's NoSuchEntity
    fine = tmp_path / "a.asl.json"
    fine.write_text(retry_choices.render(iam_machine()))
    uncaught = tmp_path / "b.asl.json"
    uncaught.write_text(retry_choices.render(machine(sdk_task("iam:getRole", [IAM_BASE], IAM_CATCH[:1]))))
    before = {path: path.read_bytes() for path in (fine, uncaught)}
    # WHEN the command runs over both
    result = runner.invoke(app, ["retry-choices", str(fine), str(uncaught)], env=ENV)
    # THEN it names the file and the Task and says what to add, and writes neither file
    assert result.exit_code == 2, result.output
    assert f"{uncaught}: '{TASK}' retries {IAM_BASE}" in result.output
    assert "add a Catch" in result.output
    assert {path: path.read_bytes() for path in before} == before


def test_a_file_that_is_no_state_machine_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.asl.json"
    path.write_text("{")
    result = runner.invoke(app, ["retry-choices", str(path)], env=ENV)
    assert result.exit_code == 2, result.output
    assert f"{path}: not JSON" in result.output
