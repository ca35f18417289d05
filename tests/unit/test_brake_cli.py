"""`playbooks brake on|off|status` and `playbooks undo` against a deployed stack (moto stands in for AWS)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from playbooks.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "160"}
STACK = {
    "Resources": {
        "BrakeParameter": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/etl-playbooks/playbooks/brake", "Type": "String", "Value": "released"},
        }
    }
}


@pytest.fixture
def stack() -> Iterator[None]:
    with mock_aws():
        boto3.client("cloudformation").create_stack(StackName="etl-playbooks", TemplateBody=json.dumps(STACK))
        yield


def brake_value() -> str:
    return str(boto3.client("ssm").get_parameter(Name="/etl-playbooks/playbooks/brake")["Parameter"]["Value"])


def test_brake_on_engages_and_off_releases(stack: None) -> None:
    # GIVEN a freshly deployed stack: released
    status = runner.invoke(app, ["brake", "status"], env=ENV)
    assert status.exit_code == 0, status.output
    assert "brake released" in status.output
    # WHEN the operator engages it, THEN the parameter says so
    engaged = runner.invoke(app, ["brake", "on"], env=ENV)
    assert engaged.exit_code == 0, engaged.output
    assert (brake_value(), "brake engaged" in engaged.output) == ("engaged", True)
    # WHEN released again
    released = runner.invoke(app, ["brake", "off"], env=ENV)
    assert released.exit_code == 0, released.output
    assert brake_value() == "released"


def test_brake_of_an_unknown_stack_is_one_line_and_exit_2(stack: None) -> None:
    result = runner.invoke(app, ["brake", "on", "--stack-name", "no-such-stack"], env=ENV)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "no-such-stack" in result.output
    assert brake_value() == "released"


def test_undo_refuses_what_is_not_an_execution_arn(stack: None) -> None:
    result = runner.invoke(app, ["undo", "not-an-arn"], env=ENV)
    assert result.exit_code == 2
    assert "is not a Step Functions execution ARN" in result.output


def test_undo_needs_a_stack_with_the_undo_state_machine(stack: None) -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:etl-playbooks-LambdaThrottling:run-1"
    result = runner.invoke(app, ["undo", arn], env=ENV)
    assert result.exit_code == 2
    assert "has no output UndoStateMachineArn" in result.output
