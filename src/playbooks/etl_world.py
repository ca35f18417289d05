"""World builders for the pipeline's own workflow: buckets, tables, scripted functions, `etl-workflow` and its executions.

Scenario set-up only (never a playbook's code): a scenario can put the pipeline's Step Functions workflow in the
account, start executions that really stay RUNNING in moto's executor (a callback task whose function was killed
before answering its task token), and date them in the past, as an incident finds them.
"""

from __future__ import annotations

import fnmatch
import json
import time
from datetime import datetime, timedelta
from typing import Any

from . import project
from .local.account import LocalAccount
from .local.aws import sfn as aws_sfn

# A scenario's execution normally blocks within milliseconds; the deadline only bounds a starved machine, and a
# world that is not built by then is an error, never a silently different incident.
SETTLE_DEADLINE_S = 60.0


def put_behaviours(account: LocalAccount, behaviours: list[dict[str, Any]], now: datetime) -> None:
    """Scripted pipeline functions: each copies the S3 object its event names into the `writes` bucket and answers the
    task token it was given; for executions whose name matches one of `hangs` (glob patterns) it is killed before it
    does either, so the token is never answered."""
    for behaviour in behaviours:
        account.scripts[behaviour["function"]] = _processor(account, behaviour)


def _processor(account: LocalAccount, behaviour: dict[str, Any]) -> Any:
    def run(event: dict[str, Any]) -> dict[str, Any]:
        execution = str(event.get("execution", "")).rsplit(":", 1)[-1]
        if any(fnmatch.fnmatchcase(execution, pattern) for pattern in behaviour.get("hangs", [])):
            return {"status": "killed before answering"}
        detail = (event.get("input") or event).get("detail", {})
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
        if "writes" in behaviour:
            account.client("s3").copy_object(Bucket=behaviour["writes"], Key=key, CopySource={"Bucket": bucket, "Key": key})
        result = {"bucket": behaviour.get("writes", bucket), "key": key}
        if "taskToken" in event:
            account.client("stepfunctions").send_task_success(taskToken=event["taskToken"], output=json.dumps(result))
        return result

    return run


def put_state_machines(account: LocalAccount, machines: list[dict[str, Any]], now: datetime) -> None:
    from .scenario import PIPELINE_ROLE

    sfn = account.client("stepfunctions")
    for machine in machines:
        definition = (project.ROOT / machine["definition"]).read_text()
        definition = definition.replace("${AccountId}", account.account_id).replace("${Region}", account.region)
        sfn.create_state_machine(
            name=machine["name"], definition=definition, roleArn=f"arn:aws:iam::{account.account_id}:role/{PIPELINE_ROLE}"
        )


def execution_input(execution: dict[str, Any]) -> dict[str, Any]:
    """A world execution's input; `inputPaddingKb` adds a `padding` field of that many KiB (a pipeline that carries
    its data in the execution input, as many do up to Step Functions' 256 KiB quota)."""
    document = dict(execution.get("input", {}))
    if execution.get("inputPaddingKb"):
        document["padding"] = "r" * (int(execution["inputPaddingKb"]) * 1024)
    return document


def put_executions(account: LocalAccount, executions: list[dict[str, Any]], now: datetime) -> None:
    """Start each execution in turn, let it run until it finishes or blocks, then move its clock back
    `startedMinutesAgo`."""
    sfn = account.client("stepfunctions")
    for execution in executions:
        machine = f"arn:aws:states:{account.region}:{account.account_id}:stateMachine:{execution['stateMachine']}"
        arn = sfn.start_execution(stateMachineArn=machine, name=execution["name"], input=json.dumps(execution_input(execution)))[
            "executionArn"
        ]
        deadline = time.monotonic() + SETTLE_DEADLINE_S
        while aws_sfn.busy_executions():
            if time.monotonic() > deadline:
                raise project.ProjectError(
                    f"the scenario's execution {execution['name']} did not finish or block within {SETTLE_DEADLINE_S:.0f} s"
                )
            time.sleep(0.01)
        aws_sfn.backdate_execution(arn, timedelta(minutes=int(execution.get("startedMinutesAgo", 0))))
