"""Start a deployed playbook on real AWS, after the same schema validation its first state performs.

Everything a user can get wrong (the input file, the region, credentials, the stack, permissions) ends in one
`StartError` sentence that says what to do; the CLI prints it on one line and exits 2.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import project

OUTPUT_KEY = "{logical_id}Arn"
ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):stateMachine:[A-Za-z0-9_-]+$")
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
NO_CREDENTIALS = "no AWS credentials found: configure a profile (aws configure), pass --profile, or set AWS_ACCESS_KEY_ID"
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "RequestExpired"}


class StartError(project.ProjectError):
    """A user error: said in one line, exit code 2, nothing started."""


@dataclass
class Target:
    region: str
    state_machine_arn: str | None


def read_input(path: Path) -> Any:
    """The console input as JSON; a problem names the file, the line and the column."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StartError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise StartError(f"{path}: is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise StartError(f"{path}: cannot be read: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise StartError(f"{path}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}") from None


def input_problems(playbook_id: str, document: Any) -> list[str]:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = [(p.name, Resource.from_contents(json.loads(p.read_text()))) for p in project.SCHEMAS.glob("*.json")]
    schema = json.loads(project.playbook(playbook_id).input_schema.read_text())
    validator = Draft202012Validator(schema, registry=Registry().with_resources(resources))
    return [f"{'.'.join(map(str, e.absolute_path)) or 'input'}: {e.message}" for e in validator.iter_errors(document)]


def target(state_machine_arn: str | None, region: str | None, session_region: str | None) -> Target:
    """The region to call: --region, else the ARN's, else the profile's or environment's; they must agree."""
    arn_region = None
    if state_machine_arn is not None:
        match = ARN.match(state_machine_arn)
        if match is None:
            raise StartError(
                f"--state-machine-arn {state_machine_arn!r} is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)"
            )
        arn_region = match["region"]
    if region and arn_region and region != arn_region:
        raise StartError(f"--region {region} does not match the state machine's region {arn_region}")
    chosen = region or arn_region or session_region
    if not chosen:
        raise StartError("no AWS region: pass --region, set AWS_REGION, or set a region in your AWS profile")
    return Target(chosen, state_machine_arn)


def _session(profile: str | None, region: str | None) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise StartError(f"AWS profile {profile!r} is not in your AWS config (aws configure --profile {profile})") from None


def _credentials(session: Any) -> Any:
    """The session's credentials; a broken credential source (an SSO profile whose login expired, a bad
    credential_process) is the user's to fix, so it is said in one line."""
    from botocore.exceptions import BotoCoreError

    try:
        return session.get_credentials()
    except (BotoCoreError, ValueError) as error:
        raise StartError(f"your AWS credentials could not be loaded: {error}") from None


def _call(doing: str, call: Callable[..., Any], explain: Callable[[str, str], str | None] | None = None, **kwargs: Any) -> Any:
    """One AWS call; every error a user can cause becomes a StartError (`explain` names the call's own)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return call(**kwargs)
    except NoCredentialsError:
        raise StartError(NO_CREDENTIALS) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        explained = explain(code, message) if explain else None
        if explained:
            raise StartError(explained) from None
        if code in DENIED:
            raise StartError(f"permission denied {doing}: {message or code}") from None
        if code in EXPIRED:
            raise StartError(f"your AWS credentials were refused ({code}): refresh them (e.g. aws sso login) and try again") from None
        raise StartError(f"AWS refused {doing}: {code}: {message}") from None
    except BotoCoreError as error:
        raise StartError(f"could not reach AWS {doing}: {error}") from None


def state_machine_from_stack(cloudformation: Any, stack_name: str, logical_id: str, region: str) -> str:
    """The playbook's state machine ARN from the stack's outputs (the template names each `<LogicalId>Arn`)."""

    def unknown_stack(code: str, message: str) -> str | None:
        if code == "ValidationError" and "does not exist" in message:
            return (
                f"no stack {stack_name!r} in {region}: pass --stack-name (the name you gave sam deploy), --region, or --state-machine-arn"
            )
        return None

    stacks = _call(f"reading stack {stack_name}", cloudformation.describe_stacks, unknown_stack, StackName=stack_name)["Stacks"]
    wanted = OUTPUT_KEY.format(logical_id=logical_id)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if wanted not in outputs:
        raise StartError(f"stack {stack_name!r} has no output {wanted}: is it this project's stack? Or pass --state-machine-arn")
    return outputs[wanted]


def start_execution(
    playbook_id: str,
    document: Any,
    state_machine_arn: str | None = None,
    stack_name: str = "etl-playbooks",
    region: str | None = None,
    profile: str | None = None,
    session: Any = None,
    source: str = "the input",
) -> str:
    playbook = project.playbook(playbook_id)
    problems = input_problems(playbook_id, document)
    if problems:
        schema = project.playbook(playbook_id).input_schema.name
        raise StartError(f"{source} does not match schemas/{schema}: " + "; ".join(problems))
    session = session or _session(profile, region)
    where = target(state_machine_arn, region, session.region_name)
    if _credentials(session) is None:
        raise StartError(NO_CREDENTIALS)
    arn = where.state_machine_arn or state_machine_from_stack(
        session.client("cloudformation", region_name=where.region), stack_name, playbook.logical_id, where.region
    )
    sfn = session.client("stepfunctions", region_name=where.region)

    def unknown_state_machine(code: str, message: str) -> str | None:
        return f"no state machine {arn} in {where.region}: check the ARN or the stack" if code == "StateMachineDoesNotExist" else None

    name = f"console-{int(time.time())}-{uuid.uuid4().hex[:8]}"
    started = _call(
        f"starting {arn}", sfn.start_execution, unknown_state_machine, stateMachineArn=arn, name=name, input=json.dumps(document)
    )
    return str(started["executionArn"])
