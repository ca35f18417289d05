"""What counts as a change: read-only calls, the playbooks' own bookkeeping, and mutations of the pipeline."""

from __future__ import annotations

from collections.abc import Iterable

from .local.recorder import Call

READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "Simulate", "Query", "Scan", "Filter", "BatchGet", "Search", "Test", "Head")
READ_OPERATIONS = {"StartQuery", "StopQuery"}  # Logs Insights queries read logs
# Calls that are the playbook's own machinery wherever they go: running its functions, answering its own tasks.
BOOKKEEPING_APIS = {
    "lambda:Invoke",
    "cloudwatch:PutMetricData",
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
}
# Changes are named as a Step Functions task would call them: the aws-sdk service name, not the IAM prefix.
SFN_SERVICE = {"states": "sfn", "events": "eventbridge", "logs": "cloudwatchlogs"}
TARGET_KEYS = (
    "FunctionName",
    "executionArn",
    "ExecutionArn",
    "stateMachineArn",
    "Name",
    "RoleName",
    "Bucket",
    "TableName",
    "logGroupName",
    "KeyId",
    "TopicArn",
)


def is_read_only(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES) or operation in READ_OPERATIONS


def target_of(api: str, params: dict[str, object]) -> str:
    if api == "servicequotas:RequestServiceQuotaIncrease":
        return f"{params.get('ServiceCode')}/{params.get('QuotaCode')}"
    for key in TARGET_KEYS:
        if key in params:
            return str(params[key]).split(":function:")[-1]
    return ""


def mutations(calls: Iterable[Call], principals: set[str], own_resources: set[str]) -> list[str]:
    """The changes made to the account by `principals`, as "api target", in order.

    Excludes reads, failed calls and the playbooks' bookkeeping (their lock and approval tables, topics, functions).
    """
    changed = []
    for call in calls:
        if call.principal not in principals or call.error is not None:
            continue
        prefix, operation = call.api.split(":", 1)
        if is_read_only(operation) or call.api in BOOKKEEPING_APIS:
            continue
        target = target_of(call.api, call.params)
        if target in own_resources:
            continue
        changed.append(f"{SFN_SERVICE.get(prefix, prefix)}:{operation} {target}".strip())
    return changed
