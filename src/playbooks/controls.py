"""The deployed stack's safety controls on real AWS: the brake (one SSM parameter) and starting an undo."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from . import project

BRAKE_LOGICAL_ID = "BrakeParameter"
UNDO_OUTPUT = "UndoStateMachineArn"
ENGAGED, RELEASED = "engaged", "released"
EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$")


def _aws(call: Any, what: str) -> Any:
    """Run one AWS call; the user's mistakes (no region, no credentials, no such stack) become one clear line."""
    try:
        return call()
    except NoRegionError:
        raise project.ProjectError("no AWS region: pass --region or set AWS_REGION") from None
    except NoCredentialsError:
        raise project.ProjectError("no AWS credentials: pass --profile or configure credentials") from None
    except ClientError as error:
        raise project.ProjectError(f"{what}: {error.response['Error'].get('Message') or error.response['Error']['Code']}") from None
    except BotoCoreError as error:
        raise project.ProjectError(f"{what}: {error}") from None


def brake_parameter(cloudformation: Any, stack_name: str) -> str:
    """The name of the stack's brake parameter (the template names it; the stack says so)."""
    detail = _aws(
        lambda: cloudformation.describe_stack_resource(StackName=stack_name, LogicalResourceId=BRAKE_LOGICAL_ID),
        f"stack {stack_name} has no {BRAKE_LOGICAL_ID}",
    )
    return str(detail["StackResourceDetail"]["PhysicalResourceId"])


def brake_state(ssm: Any, name: str) -> str:
    return str(_aws(lambda: ssm.get_parameter(Name=name), f"cannot read {name}")["Parameter"]["Value"])


def set_brake(ssm: Any, name: str, engaged: bool) -> str:
    """Engage or release the brake; returns the state it is in now (read back, not assumed)."""
    value = ENGAGED if engaged else RELEASED
    _aws(lambda: ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True), f"cannot write {name}")
    return brake_state(ssm, name)


def start_undo(sfn: Any, cloudformation: Any, stack_name: str, execution_arn: str, dry_run: bool = False) -> str:
    """Start the stack's undo state machine for the remediating run `execution_arn`; returns the undo's ARN."""
    if not EXECUTION_ARN.match(execution_arn):
        raise project.ProjectError(f"{execution_arn!r} is not a Step Functions execution ARN")
    stacks = _aws(lambda: cloudformation.describe_stacks(StackName=stack_name), f"cannot read stack {stack_name}")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if UNDO_OUTPUT not in outputs:
        raise project.ProjectError(f"stack {stack_name} has no output {UNDO_OUTPUT} (deploy the current template)")
    document: dict[str, Any] = {"executionArn": execution_arn} | ({"dryRun": True} if dry_run else {})
    name = f"undo-{execution_arn.rsplit(':', 1)[-1][:40]}-{int(time.time())}"
    started = _aws(
        lambda: sfn.start_execution(
            stateMachineArn=outputs[UNDO_OUTPUT], name=re.sub(r"[^A-Za-z0-9_-]", "-", name), input=json.dumps(document)
        ),
        "cannot start the undo",
    )
    return str(started["executionArn"])
