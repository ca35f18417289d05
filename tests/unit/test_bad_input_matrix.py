"""The schema-derived bad-input matrix of `playbooks assure`, and what the deployed playbooks do with such input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from approval_helpers import wait_for

from playbooks import badinput, project
from playbooks.local.account import TERMINAL, LocalAccount
from playbooks.local.aws import asl
from playbooks.local.recorder import RECORDER
from shared.schemas import errors

PLAYBOOKS = sorted(project.playbooks())


@pytest.fixture
def account() -> Any:  # one per test: test_the_matrix_reports_... runs an account of its own
    with LocalAccount() as local:
        yield local


def finish(account: LocalAccount, arn: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (d := account.describe(arn))["status"] in TERMINAL and d, f"{arn} to end"))


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_case_breaks_the_schema_and_every_field_is_broken(playbook: str) -> None:
    cases = badinput.cases(playbook)
    # every case is one the schema refuses (a case the schema accepts would prove nothing)
    accepted = [case.label for case in cases if not errors(f"{playbook}.input.json", case.document) and isinstance(case.document, dict)]
    assert accepted == []
    # every field of the input and of its config, and the document as a whole, is broken at least once
    schema = json.loads(project.playbook(playbook).input_schema.read_text())
    config = json.loads((project.FUNCTIONS / "schemas" / "config.json").read_text())
    named = {case.names for case in cases}
    assert {"input", "unexpected", *schema["properties"], *config["properties"]} <= named
    assert len({json.dumps(case.document, sort_keys=True) for case in cases}) == len(cases)


@pytest.mark.parametrize("document", [7, None, "functionName", [], True])
def test_input_that_is_not_an_object_is_refused_as_invalid_input(account: LocalAccount, document: Any) -> None:
    # Catch ResultPath "$.error" cannot add a field to 7 or null: the playbook would die with States.Runtime.
    description = finish(account, account.start("lambda-throttling", document))  # type: ignore[arg-type]
    assert (description["status"], description.get("error")) == ("FAILED", "InvalidInput")
    assert "input must be a JSON object" in description["cause"]


def test_the_matrix_reports_an_input_that_is_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a "bad" input the playbook in fact accepts (a valid dry run)
    valid = badinput.base_input("lambda-throttling")
    monkeypatch.setattr(badinput, "cases", lambda playbook: [badinput.Case("a valid dry run", "input", valid)])
    # WHEN the matrix runs it
    result = badinput.run("lambda-throttling")
    # THEN it is reported, not counted as refused
    assert result["refused"] == 0
    assert any(problem.startswith("a valid dry run: ended") for problem in result["problems"])


def test_unrelated_alarm_events_start_nothing_and_the_alarm_itself_starts_one_run(account: LocalAccount) -> None:
    tried, started = badinput.unrelated_alarm_events(account, "lambda-throttling")
    alarms = account.client("cloudwatch").describe_alarms()["MetricAlarms"]
    # its own alarm back to OK, to INSUFFICIENT_DATA, a stranger's alarm; every other alarm of the template in ALARM
    assert tried == 3 + len(alarms) - 1 and len(alarms) > 1
    assert {label: arns for label, arns in started.items() if arns} == {}


def test_each_definition_is_parsed_once_and_every_execution_gets_fresh_components(account: LocalAccount) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = account.client("stepfunctions").describe_state_machine(stateMachineArn=account.state_machine_arn("lambda-throttling"))[
        "definition"
    ]
    finish(account, account.start("lambda-throttling", {"functionName": "not-ours"}))
    assert definition in asl.PARSE_TREES
    first, tree = AmazonStateLanguageParser.parse(definition)
    second, same_tree = AmazonStateLanguageParser.parse(definition)
    assert same_tree is tree and first is not second
    # and the cached tree still runs the playbook as the first parse did
    before = len(RECORDER.calls)
    description = finish(account, account.start("lambda-throttling", {"functionName": "not-ours"}))
    assert (description["status"], description["error"]) == ("FAILED", "InvalidInput")
    assert "not one of the pipeline's functions" in description["cause"]
    assert any(call.api == "lambda:Invoke" for call in RECORDER.calls[before:])
