"""Step Functions execution stuck playbook: diagnose, plan and verify (runbook "Step Functions Execution Stuck (Timeout)").

The reads whose answer is small (DescribeExecution without its input, GetExecutionHistory without execution data)
and the stop are direct AWS SDK tasks in the state machine; this module holds the logic: which state is stuck and
which function is behind it, that function's error lines and the likely cause, the workflow's missing timeouts and
heartbeats, the plan, the retry, and whether the retry really processed the object.

No state of the playbook carries the pipeline's data: a workflow may pass up to 256 KiB between its states, which is
also Step Functions' quota for one state of the playbook, and exceeding it is States.DataLimitExceeded, which no
States.ALL catcher catches (the run would die without a report, its lock held). So the workflow's definition (up to
1 MB) and the stuck execution's input are read here and only what the plan needs goes back into the state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from shared import clock
from shared.aws import client, kept_items

logger = Logger()

ERROR_LINE = re.compile(r"ERROR|Error|error|Task timed out|signal: killed|Exception|Traceback|Max Memory Used")
# Most specific first: a timeout or a kill explains an error line logged before it.
CAUSES = [
    ("out-of-memory", re.compile(r"Runtime\.OutOfMemory|signal: killed|MemoryError|out of memory", re.IGNORECASE)),
    ("lambda-timeout", re.compile(r"Task timed out after")),
    (
        "api-call-hang",
        re.compile(r"Read timeout on endpoint|ReadTimeoutError|Connect timeout on endpoint|ConnectTimeoutError|timed out waiting for"),
    ),
]
CAUSE_TEXT = {
    "lambda-timeout": "the function hit its timeout (Lambda killed it before it answered)",
    "out-of-memory": "the function ran out of memory and was killed mid-execution",
    "api-call-hang": "an AWS API call (DynamoDB/S3) hung without a client timeout or retry",
    "unknown": "no error in the function's logs explains it",
}
MAX_ERROR_LINES = 20
MAX_LOG_EVENTS = 2000
MAX_LOG_PAGES = 2000  # a bound on the pages read, empty ones included
CALLBACK_SUFFIXES = (".waitForTaskToken",)
STOP_ERROR = "ExecutionStuck"


# ---------------------------------------------------------------------------------------------- diagnose
def _moment(value: Any) -> datetime:
    """A timestamp as Step Functions' SDK integrations hand it on: ISO string or epoch (seconds or milliseconds)."""
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10_000_000_000 else value
        return datetime.fromtimestamp(seconds, tz=clock.now().tzinfo)
    return clock.parse(str(value))


def stuck_state(events: list[dict[str, Any]], definition: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state the execution is in (its newest StateEntered event), the resource its task scheduled and the
    function behind it.

    `events` are GetExecutionHistory's events, newest first, as the SDK integration returns them (PascalCase). Read
    without execution data they carry no task parameters: the function is then the one the state's definition names.
    """
    state: dict[str, Any] = {"name": None, "enteredAt": None, "resource": None, "resourceType": None, "functionName": None}
    for event in events:
        if state["resource"] is None and "TaskScheduledEventDetails" in event:
            details = event["TaskScheduledEventDetails"]
            state["resource"], state["resourceType"] = details.get("Resource"), details.get("ResourceType")
            parameters = _json(details.get("Parameters"))
            state["functionName"] = _function_name(parameters.get("FunctionName") if isinstance(parameters, dict) else None)
        if "StateEnteredEventDetails" in event:
            state["name"] = event["StateEnteredEventDetails"].get("Name")
            state["enteredAt"] = clock.iso(_moment(event["Timestamp"]))
            break
    if state["functionName"] is None and state["name"] and definition:
        declared = dict(_states(definition)).get(state["name"], {})
        resource = str(declared.get("Resource", ""))
        # an optimized lambda:invoke names it in Parameters (a path, FunctionName.$, is known only at run time);
        # a legacy Lambda task's Resource is the function's ARN
        lambda_invoke = resource.startswith("arn:aws:states:::lambda:")
        state["functionName"] = _function_name((declared.get("Parameters") or {}).get("FunctionName") if lambda_invoke else resource)
    return state


def _function_name(reference: Any) -> str | None:
    """A function's name from its name, ARN or partial ARN (with or without a version or alias)."""
    if not reference or not isinstance(reference, str) or reference.startswith("arn:aws:states:"):
        return None
    return reference.rsplit(":function:", 1)[-1].split(":")[0]


def _json(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None


def definition_gaps(document: dict[str, Any]) -> dict[str, Any]:
    """Task states without TimeoutSeconds, callback/activity tasks without HeartbeatSeconds, and a missing workflow timeout."""
    no_timeout, no_heartbeat = [], []
    for name, state in _states(document):
        if state.get("Type") != "Task":
            continue
        if not {"TimeoutSeconds", "TimeoutSecondsPath"} & set(state):
            no_timeout.append(name)
        resource = str(state.get("Resource", ""))
        waits = resource.endswith(CALLBACK_SUFFIXES) or ":activity:" in resource
        if waits and not {"HeartbeatSeconds", "HeartbeatSecondsPath"} & set(state):
            no_heartbeat.append(name)
    return {"withoutTimeout": no_timeout, "withoutHeartbeat": no_heartbeat, "workflowTimeout": document.get("TimeoutSeconds")}


def _states(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in document.get("States", {}).items():
        found.append((name, state))
        for branch in state.get("Branches", []):
            found += _states(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found += _states(processor)
    return found


def error_lines(logs: Any, function_name: str, since: datetime, until: datetime) -> list[str]:
    """The function's log lines since the stuck state started that look like errors (newest last, at most 20)."""
    found: list[str] = []
    kwargs: dict[str, Any] = {
        "logGroupName": f"/aws/lambda/{function_name}",
        "startTime": int(since.timestamp() * 1000),
        "endTime": int(until.timestamp() * 1000),
    }
    seen = 0
    try:
        # Only a page without a nextToken ends the search: AWS may answer empty pages with more to come.
        for _ in range(MAX_LOG_PAGES):
            page = logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                seen += 1
                message = " ".join(str(event.get("message", "")).split())
                if ERROR_LINE.search(message):
                    found.append(message[:500])
            if not page.get("nextToken") or seen >= MAX_LOG_EVENTS:
                break
            kwargs["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return found[-MAX_ERROR_LINES:]


def classify(lines: list[str], memory_mb: int | None) -> str:
    for cause, pattern in CAUSES:
        if any(pattern.search(line) for line in lines):
            return cause
    if memory_mb is not None:
        for line in lines:
            used = re.search(r"Max Memory Used: (\d+) MB", line)
            if used and int(used.group(1)) >= memory_mb:
                return "out-of-memory"
    return "unknown"


def function_settings(lam: Any, function_name: str) -> dict[str, Any] | None:
    try:
        config = lam.get_function_configuration(FunctionName=function_name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    return {"timeoutSeconds": config.get("Timeout"), "memoryMb": config.get("MemorySize")}


def read_workflow(sfn: Any, execution_arn: str) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The stuck execution's workflow definition and the S3 object its input names: both stay in this function."""
    definition = json.loads(sfn.describe_state_machine_for_execution(executionArn=execution_arn)["definition"])
    return definition, source_object(sfn.describe_execution(executionArn=execution_arn).get("input", "{}"))


def diagnose(
    logs: Any,
    lam: Any,
    execution: dict[str, Any],
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    obj: dict[str, str] | None,
    now: datetime,
) -> dict[str, Any]:
    started = _moment(execution["startDate"])
    state = stuck_state(events, definition)
    entered = clock.parse(state["enteredAt"]) if state["enteredAt"] else started
    function = state["functionName"]
    settings = function_settings(lam, function) if function else None
    lines = error_lines(logs, function, entered - timedelta(minutes=1), now) if function else []
    return {
        "runningMinutes": int((now - started).total_seconds() // 60),
        "stuckMinutes": int((now - entered).total_seconds() // 60),
        "state": state,
        "function": function,
        "functionSettings": settings,
        "errorLines": lines,
        "cause": classify(lines, (settings or {}).get("memoryMb")),
        "definition": definition_gaps(definition),
        "object": obj,
    }


# ---------------------------------------------------------------------------------------------- plan
def retry_name(stuck_arn: str, now: datetime) -> str:
    """`retry-<unix seconds>`, made unique per stuck execution: runs for several executions plan in the same second."""
    return f"retry-{int(now.timestamp())}-{hashlib.sha256(stuck_arn.encode()).hexdigest()[:8]}"


def source_object(raw_input: str) -> dict[str, str] | None:
    """The S3 object an "Object Created" event input names (the runbook's `.detail.object.key`)."""
    document = _json(raw_input)
    detail = document.get("detail") if isinstance(document, dict) else None
    if not isinstance(detail, dict):
        return None
    key = (detail.get("object") or {}).get("key")
    bucket = (detail.get("bucket") or {}).get("name")
    return {"bucket": str(bucket), "key": str(key)} if key and bucket else None


def recommendations(diagnosis: dict[str, Any], config: dict[str, Any]) -> list[str]:
    gaps = diagnosis["definition"]
    function = diagnosis["function"]
    advice = []
    if gaps["withoutTimeout"]:
        states = ", ".join(repr(name) for name in gaps["withoutTimeout"])
        advice.append(f"Set TimeoutSeconds on the workflow's tasks that have none: {states} (e.g. 300 s for Lambda tasks).")
    if gaps["withoutHeartbeat"]:
        states = ", ".join(repr(name) for name in gaps["withoutHeartbeat"])
        advice.append(
            f"Set HeartbeatSeconds on the callback tasks {states} and have their workers call SendTaskHeartbeat, "
            "so a worker that dies fails the task instead of leaving it waiting."
        )
    if gaps["workflowTimeout"] is None:
        advice.append("Set a TimeoutSeconds for the whole workflow (e.g. 600 s) so no execution can run unbounded.")
    settings = diagnosis.get("functionSettings") or {}
    if function and diagnosis["cause"] == "lambda-timeout":
        advice.append(
            f"Give {function} a timeout that fits its work (now {settings.get('timeoutSeconds', '?')} s; e.g. 5 minutes) or split the work."
        )
    if function and diagnosis["cause"] == "out-of-memory":
        advice.append(
            f"Raise {function}'s memory (now {settings.get('memoryMb', '?')} MB) or stream the object instead of loading it whole."
        )
    if diagnosis["cause"] == "api-call-hang":
        advice.append("Give the SDK clients connect/read timeouts and retries with backoff around DynamoDB and S3 calls.")
    advice.append("Investigate: the function's X-Ray traces for slow API calls and the AWS Health Dashboard for DynamoDB/S3 events.")
    advice.append(
        f"Keep the watchdog alarm on executions RUNNING longer than {config['stuckThresholdMinutes']} minutes enabled "
        "(ExecutionWatchdogFunction publishes the metric every 5 minutes)."
    )
    return advice


def plan(
    target: dict[str, Any],
    execution: dict[str, Any],
    diagnosis: dict[str, Any],
    config: dict[str, Any],
    playbook_execution: str,
    now: datetime,
) -> dict[str, Any]:
    arn = target["executionArn"]
    state = diagnosis["state"]
    where = (f"'{state['name']}'" if state["name"] else "an unidentified state") + (
        f" ({diagnosis['function']})" if diagnosis["function"] else ""
    )
    evidence = [
        f"Execution {execution['name']} of {target['stateMachineArn'].rsplit(':', 1)[-1]} is {execution['status']} since "
        f"{clock.iso(_moment(execution['startDate']))} ({diagnosis['runningMinutes']} minutes).",
        f"It has been in state {where} for {diagnosis['stuckMinutes']} minutes (last event: {state['enteredAt']}).",
        f"Likely cause: {CAUSE_TEXT[diagnosis['cause']]} [{diagnosis['cause']}].",
    ]
    settings = diagnosis.get("functionSettings")
    if settings:
        evidence.append(f"{diagnosis['function']}: timeout {settings['timeoutSeconds']} s, memory {settings['memoryMb']} MB.")
    if diagnosis["errorLines"]:
        evidence += [f"log: {line}" for line in diagnosis["errorLines"][-5:]]
    elif diagnosis["function"]:
        evidence.append(f"No error lines in /aws/lambda/{diagnosis['function']} since the state started.")
    gaps = diagnosis["definition"]
    evidence.append(
        f"Tasks without TimeoutSeconds: {', '.join(gaps['withoutTimeout']) or 'none'}; "
        f"callback tasks without HeartbeatSeconds: {', '.join(gaps['withoutHeartbeat']) or 'none'}."
    )
    threshold = config["stuckThresholdMinutes"]
    if diagnosis["runningMinutes"] < threshold:
        return {
            "case": "not-stuck",
            "summary": f"Execution {execution['name']} has run for {diagnosis['runningMinutes']} minutes, under the "
            f"{threshold}-minute threshold; it is not treated as stuck and nothing is proposed.",
            "actions": [],
            "evidence": evidence,
            "recommendations": [],
        }
    name = retry_name(arn, now)
    retry_arn = target["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"
    incident = playbook_execution.rsplit(":", 1)[-1]
    cause = (
        f"Manual intervention: execution timeout (execution-stuck playbook, incident {incident}): stuck in {where} "
        f"for {diagnosis['stuckMinutes']} minutes [{diagnosis['cause']}]; reprocessed as {name}."
    )
    obj = diagnosis.get("object")
    stop = {
        "id": "stop_execution",
        "api": "states:StopExecution",
        "target": arn,
        "description": f"Stop execution {execution['name']} (stuck {diagnosis['stuckMinutes']} minutes in {where}).",
        "before": {"status": "RUNNING"},
        "after": {"status": "ABORTED", "error": STOP_ERROR, "cause": cause},
        "rollback": None,
    }
    reprocess = {
        "id": "reprocess",
        "api": "states:StartExecution",
        "target": target["stateMachineArn"],
        "description": f"Reprocess: start execution {name} with the stuck execution's input"
        + (f" (s3://{obj['bucket']}/{obj['key']})" if obj else "")
        + "; only after the stop.",
        "before": {"execution": None},
        # the input itself stays in the stuck execution: the function that starts the retry reads it there
        "after": {"name": name, "executionArn": retry_arn, "inputOf": arn, "object": obj},
        "rollback": {"api": "states:StopExecution", "parameters": {"ExecutionArn": retry_arn}},
    }
    return {
        "case": diagnosis["cause"],
        "summary": f"Execution {execution['name']} is stuck: {diagnosis['runningMinutes']} minutes RUNNING, "
        f"{diagnosis['stuckMinutes']} in {where}; {CAUSE_TEXT[diagnosis['cause']]}. One approval covers both actions: "
        f"stop it, then start {name} with the same input (a stopped execution cannot be resumed).",
        "actions": [stop, reprocess],
        "evidence": evidence,
        "recommendations": recommendations(diagnosis, config),
    }


# ---------------------------------------------------------------------------------------------- reprocess
def reprocess(sfn: Any, *, input_of: str, state_machine_arn: str, name: str) -> dict[str, Any]:
    """Start a run named `name` with the input of execution `input_of` (a stuck run, or access-denied's failed one),
    read here so that it never passes through the playbook's state. Started again after a lost answer (a Lambda
    retry, or a second playbook run), the same name finds the run it started."""
    payload = sfn.describe_execution(executionArn=input_of)["input"]
    try:
        started = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        existing = sfn.describe_execution(executionArn=arn)
        if existing.get("input") != payload:
            raise
        started = {"executionArn": arn, "startDate": existing["startDate"]}
    return {"executionArn": started["executionArn"], "startDate": clock.iso(started["startDate"])}


# ---------------------------------------------------------------------------------------------- verify
def verify(
    sfn: Any,
    s3: Any,
    dynamodb: Any,
    *,
    execution_arn: str,
    obj: dict[str, str] | None,
    attempt: int,
    config: dict[str, Any],
    processed_bucket: str,
    metadata_table: str,
    key_attribute: str,
    now: datetime,
) -> dict[str, Any]:
    """One look at the retry: finished? succeeded? object in the processed bucket? metadata item updated?"""
    attempt += 1
    described = sfn.describe_execution(executionArn=execution_arn)
    status, started = described["status"], described["startDate"]
    result: dict[str, Any] = {
        "attempt": attempt,
        "execution": execution_arn,
        "status": status,
        "processedObject": None,
        "metadataUpdated": None,
        "problems": [],
    }
    if status == "RUNNING":
        waited = attempt * config["reprocessPollSeconds"]
        result["done"] = (
            waited >= config["reprocessDeadlineSeconds"] or (now - started).total_seconds() >= config["reprocessDeadlineSeconds"]
        )
        result["verified"] = False
        return result
    result["done"] = True
    if status != "SUCCEEDED" or obj is None:
        result["verified"] = status == "SUCCEEDED"
        return result
    since = started.replace(microsecond=0)
    result["processedObject"] = _written_since(s3, processed_bucket, obj["key"], since)
    result["metadataUpdated"] = _recorded_since(dynamodb, metadata_table, key_attribute, obj["key"], execution_arn, since)
    result["verified"] = bool(result["processedObject"] and result["metadataUpdated"])
    if result["processedObject"] is None:
        result["problems"].append(
            f"s3://{processed_bucket}/{obj['key']} could not be read (403 Forbidden): the verify role is denied reading it, "
            "so whether the retry wrote it is unknown. Check the bucket policy and the object's KMS key."
        )
    return result


def _written_since(s3: Any, bucket: str, key: str, since: datetime) -> bool | None:
    """Whether the object was written since `since`; None when S3 refuses to say.

    The role may list the bucket, so a missing key is 404 (S3 answers 403 for a missing key only to a caller without
    s3:ListBucket); a 403 therefore means the read itself is denied, and the playbook cannot tell."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        if code in ("403", "AccessDenied", "Forbidden"):
            return None
        raise
    return bool(head["LastModified"] >= since)


def _recorded_since(dynamodb: Any, table: str, key_attribute: str, key: str, execution_arn: str, since: datetime) -> bool:
    item = dynamodb.get_item(TableName=table, Key={key_attribute: {"S": key}}, ConsistentRead=True).get("Item")
    if not item:
        return False
    if item.get("executionArn", {}).get("S") == execution_arn:
        return True
    for field in ("processedAt", "updatedAt"):
        value = item.get(field, {}).get("S")
        if value and clock.parse(value) >= since:
            return True
    return False


# ---------------------------------------------------------------------------------------------- handlers
@logger.inject_lambda_context
def diagnose_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    definition, obj = read_workflow(client("stepfunctions"), event["executionArn"])
    result = diagnose(
        client("logs"), client("lambda"), event["execution"], kept_items(event["history"], "Events"), definition, obj, clock.now()
    )
    logger.info(
        "diagnosed stuck execution",
        extra={
            "state": result["state"]["name"],
            "function": result["function"],
            "cause": result["cause"],
            "stuckMinutes": result["stuckMinutes"],
        },
    )
    return result


@logger.inject_lambda_context
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan(event["target"], event["execution"], event["diagnosis"], event["config"], event["playbookExecution"], clock.now())
    logger.info("proposed plan", extra={"case": result["case"], "actions": [a["id"] for a in result["actions"]]})
    return result


@logger.inject_lambda_context
def reprocess_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = reprocess(client("stepfunctions"), input_of=event["inputOf"], state_machine_arn=event["stateMachineArn"], name=event["name"])
    logger.info("started the retry", extra={"execution": result["executionArn"]})
    return result


@logger.inject_lambda_context
def verify_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = verify(
        client("stepfunctions"),
        client("s3"),
        client("dynamodb"),
        execution_arn=event["executionArn"],
        obj=event.get("object"),
        attempt=int(event.get("attempt", 0)),
        config=event["config"],
        processed_bucket=os.environ["PROCESSED_BUCKET"],
        metadata_table=os.environ["METADATA_TABLE"],
        key_attribute=os.environ.get("METADATA_KEY_ATTRIBUTE", "objectKey"),
        now=clock.now(),
    )
    logger.info("checked the retry", extra={k: result[k] for k in ("attempt", "status", "done", "verified")})
    return result
