"""Start a deployed playbook on real AWS, after the same schema validation its first state performs."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3

from . import project

OUTPUT_KEY = "{logical_id}Arn"


def input_problems(playbook_id: str, document: Any) -> list[str]:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = [(p.name, Resource.from_contents(json.loads(p.read_text()))) for p in project.SCHEMAS.glob("*.json")]
    schema = json.loads(project.playbook(playbook_id).input_schema.read_text())
    validator = Draft202012Validator(schema, registry=Registry().with_resources(resources))
    return [f"{'.'.join(map(str, e.absolute_path)) or 'input'}: {e.message}" for e in validator.iter_errors(document)]


def start_execution(
    playbook_id: str, document: Any, state_machine_arn: str | None, stack_name: str, sfn: Any = None, cloudformation: Any = None
) -> str:
    playbook = project.playbook(playbook_id)
    problems = input_problems(playbook_id, document)
    if problems:
        raise project.ProjectError("input does not match the playbook's schema: " + "; ".join(problems))
    if state_machine_arn is None:
        cloudformation = cloudformation or boto3.client("cloudformation")
        outputs = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])
        wanted = OUTPUT_KEY.format(logical_id=playbook.logical_id)
        state_machine_arn = next((o["OutputValue"] for o in outputs if o["OutputKey"] == wanted), None)
        if state_machine_arn is None:
            raise project.ProjectError(f"stack {stack_name} has no output {wanted}; pass --state-machine-arn")
    sfn = sfn or boto3.client("stepfunctions")
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"console-{int(time.time())}")
    return str(sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(document))["executionArn"])
