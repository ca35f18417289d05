"""`playbooks start` on "real AWS" (moto): every user error is one line on stderr, exit code 2, and nothing started."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from playbooks import start
from playbooks.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "100"}
OUTPUT = "LambdaThrottlingStateMachineArn"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
ROLE = "arn:aws:iam::123456789012:role/playbook"


@pytest.fixture
def console_input(tmp_path: Path) -> Path:
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"functionName": "ingest-handler"}))
    return path


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials and no region anywhere: not in the environment, no config files, no instance metadata."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["start", "lambda-throttling", *args], env=ENV)


def one_line_error(result: Any) -> str:
    """The whole of what the user sees: exit 2, a single 'error:' line, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return str(lines[0])


def deploy_stack(region: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=region).create_stack(StackName="etl-playbooks", TemplateBody=json.dumps(template))


def state_machine(region: str) -> str:
    sfn = boto3.client("stepfunctions", region_name=region)
    return str(sfn.create_state_machine(name="LambdaThrottling-abc", definition=DEFINITION, roleArn=ROLE)["stateMachineArn"])


def test_invalid_json_names_the_file_line_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "input.json"
    bad.write_text('{"functionName": "ingest-handler",\n  "dryRun": tru}\n')
    line = one_line_error(invoke("--input", str(bad), "--region", "us-east-1"))
    assert f"{bad}:2:13: not valid JSON: Expecting value" in line


def test_a_missing_input_file_is_named(tmp_path: Path) -> None:
    line = one_line_error(invoke("--input", str(tmp_path / "nope.json")))
    assert "nope.json: no such file" in line


def test_input_that_breaks_the_schema_names_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "input.json"
    bad.write_text(json.dumps({"functionName": "x y"}))
    line = one_line_error(invoke("--input", str(bad), "--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:x"))
    assert f"{bad} does not match schemas/lambda-throttling.input.json: functionName:" in line


def test_no_region_says_how_to_give_one(no_aws_config: None, console_input: Path) -> None:
    line = one_line_error(invoke("--input", str(console_input)))
    assert "no AWS region: pass --region" in line


def test_no_credentials_says_how_to_give_them(no_aws_config: None, console_input: Path) -> None:
    line = one_line_error(invoke("--input", str(console_input), "--region", "eu-west-1"))
    assert "no AWS credentials found" in line


def test_an_unknown_profile_is_named(no_aws_config: None, console_input: Path) -> None:
    line = one_line_error(invoke("--input", str(console_input), "--profile", "on-call"))
    assert "AWS profile 'on-call' is not in your AWS config" in line


def test_an_unknown_stack_is_named_with_its_region(aws: None, console_input: Path) -> None:
    line = one_line_error(invoke("--input", str(console_input), "--region", "eu-west-1", "--stack-name", "pipeline-b"))
    assert "no stack 'pipeline-b' in eu-west-1" in line


def test_a_stack_without_the_output_is_named(aws: None, console_input: Path) -> None:
    deploy_stack("us-east-1", {"Something": "else"})
    line = one_line_error(invoke("--input", str(console_input)))
    assert f"stack 'etl-playbooks' has no output {OUTPUT}" in line


def test_an_unknown_state_machine_is_named(aws: None, console_input: Path) -> None:
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:gone"
    line = one_line_error(invoke("--input", str(console_input), "--state-machine-arn", arn))
    assert f"no state machine {arn} in eu-west-1" in line


def test_a_region_that_contradicts_the_arn_is_refused(aws: None, console_input: Path) -> None:
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:x"
    line = one_line_error(invoke("--input", str(console_input), "--state-machine-arn", arn, "--region", "us-east-1"))
    assert "--region us-east-1 does not match the state machine's region eu-west-1" in line


def test_permission_denied_says_which_call(monkeypatch: pytest.MonkeyPatch, console_input: Path) -> None:
    # GIVEN credentials whose policy does not allow cloudformation:DescribeStacks (as AWS answers it)
    real = boto3.Session(region_name="us-east-1")
    cloudformation = real.client("cloudformation")
    stubber = Stubber(cloudformation)
    stubber.add_client_error(
        "describe_stacks",
        service_error_code="AccessDenied",
        service_message="User: arn:aws:iam::123456789012:user/sre is not authorized to perform: cloudformation:DescribeStacks",
        http_status_code=403,
    )
    stubber.activate()

    class Session:
        region_name = "us-east-1"

        def get_credentials(self) -> object:
            return real.get_credentials()

        def client(self, service: str, region_name: str) -> Any:
            assert service == "cloudformation" and region_name == "us-east-1"
            return cloudformation

    monkeypatch.setattr(start, "_session", lambda profile, region: Session())
    # WHEN the playbook is started by stack name
    line = one_line_error(invoke("--input", str(console_input)))
    # THEN the user reads which call was denied
    assert "permission denied reading stack etl-playbooks: User: arn:aws:iam::123456789012:user/sre is not authorized" in line


def test_the_region_comes_from_the_arn(aws: None, no_aws_config: None, monkeypatch: pytest.MonkeyPatch, console_input: Path) -> None:
    # GIVEN credentials but no region configured, and a state machine in eu-west-1
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    arn = state_machine("eu-west-1")
    # WHEN it is started by ARN
    result = invoke("--input", str(console_input), "--state-machine-arn", arn)
    # THEN the execution runs in the ARN's region
    assert result.exit_code == 0, result.output
    assert result.output.startswith("started arn:aws:states:eu-west-1:123456789012:execution:LambdaThrottling-abc:console-")


def test_the_state_machine_comes_from_the_stacks_outputs(aws: None, console_input: Path) -> None:
    # GIVEN a stack in eu-west-1 whose outputs name the playbook's state machine
    arn = state_machine("eu-west-1")
    deploy_stack("eu-west-1", {OUTPUT: arn})
    # WHEN the playbook is started by stack name and region
    result = invoke("--input", str(console_input), "--region", "eu-west-1")
    # THEN that state machine runs the console input
    assert result.exit_code == 0, result.output
    (execution,) = boto3.client("stepfunctions", region_name="eu-west-1").list_executions(stateMachineArn=arn)["executions"]
    assert result.output.strip() == f"started {execution['executionArn']}"
