"""Where the local account differs from plain moto 5.2.5: every gap, filled with AWS's real behaviour, in one place.

Playbooks are never changed to suit moto. Each entry of `GAPS` says what AWS does and what moto does; the code
below it makes the local account behave like AWS. `docs/local-account.md` lists them for readers.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import functools
import importlib
import json
import re
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import StructureShape

from .recorder import PRINCIPAL, RECORDER, error_response, response

if TYPE_CHECKING:
    from .account import LocalAccount


@dataclass(frozen=True)
class Gap:
    api: str
    aws: str
    moto: str


GAPS = [
    Gap(
        "lambda:Invoke",
        "runs the function's code",
        "returns the payload unchanged (no Docker): we dispatch to the real handler in-process, with its environment, and map exceptions to FunctionError payloads",
    ),
    Gap(
        "lambda:GetAccountSettings",
        "returns AccountLimit.ConcurrentExecutions and UnreservedConcurrentExecutions",
        "not implemented: we compute both from the scenario's account limit and the functions' reservations",
    ),
    Gap(
        "lambda:PutFunctionConcurrency",
        "refuses to leave less than 100 unreserved concurrency",
        "enforces it only with an environment variable: we enforce it against the scenario's account limit",
    ),
    Gap(
        "servicequotas:RequestServiceQuotaIncrease",
        "opens a quota increase request",
        "not implemented: we record the request and answer as AWS does (status PENDING)",
    ),
    Gap(
        "aws-sdk tasks",
        "map Step Functions' service names (cloudwatchlogs, eventbridge, servicequotas, ...) to the SDK, accept PascalCase parameters, return PascalCase fields and name errors Service.Exception with the SDK's casing",
        "knows only sfn and dynamodb: we add the rest of the names and normalise requests, responses and errors",
    ),
    Gap(
        "events:PutEvents",
        "delivers matching events to Step Functions targets",
        "does not start executions: we match the rules' patterns and start the target state machines",
    ),
    Gap(
        "cloudwatch alarm state",
        "emits a 'CloudWatch Alarm State Change' event to EventBridge",
        "emits nothing: the local account builds the real-shaped event and delivers it",
    ),
    Gap("logs:StartQuery", "aggregates `stats count() by bin(Nm)`", "returns raw rows: we aggregate counts per bin"),
    Gap(
        "JSONPath",
        "a definite path with an index ($.actions[0].target) selects one value",
        "returns a one-element list: we return the value",
    ),
    Gap(
        "Wait state and Retry interval",
        "wait in real time",
        "sleep in real time: we advance a virtual clock instead, recording the seconds that would have passed",
    ),
    Gap(
        "waitForTaskToken timeout",
        "ends the task with States.Timeout after TimeoutSeconds",
        "waits in real time: the simulator can make the timeout elapse at once ('expire')",
    ),
    Gap(
        "AWS::ApiGateway::RestApi",
        "takes the API's name from its OpenAPI body and deploys it to a stage",
        "requires a Name property and cannot deploy an OpenAPI body: the account names the API, skips its deployment and stage, and serves the approval handler itself (simulate --decision browser)",
    ),
    Gap(
        "AWS::CloudWatch::Alarm",
        "is a CloudFormation resource type",
        "is not created by moto's CloudFormation: we register a resource model that creates the alarm in moto's CloudWatch",
    ),
    Gap(
        "states:StopExecution, states:ListExecutions quotas",
        "throttle with ThrottlingException beyond a token bucket per account and region (us-east-1: StopExecution bucket 1,000, refill 200/s; ListExecutions bucket 100, refill 5/s)",
        "never throttle: we keep those token buckets on the local account's clock (real time plus simulated waits), so pacing is exercised and its simulated time reported, never slept (a benchmark may add a real round trip per call; scenarios and tests do not)",
    ),
    Gap(
        "states:StopExecution",
        "records the cause and error, answers a finished execution with its stop date, and refuses an unknown execution (ExecutionDoesNotExist)",
        "drops the cause and error and finds the execution by a linear scan: we record both and index the executions",
    ),
    Gap(
        "states:ListExecutions",
        "pages newest first, maxResults up to 1,000 (default 100), with a nextToken that survives executions changing status between pages",
        "pages by a token that breaks when the last listed execution leaves the status filter and accepts any page size: we page by (start date, ARN) and refuse more than 1,000",
    ),
    Gap(
        "thousands of RUNNING executions",
        "cost nothing to hold",
        "each runs in its own thread: scenarios create dormant RUNNING executions (no thread) that stop like real ones",
    ),
    Gap(
        "s3:GetBucketNotificationConfiguration",
        "includes EventBridgeConfiguration when the bucket sends its events to EventBridge",
        "stores it but leaves it out of the answer: we add it",
    ),
    Gap(
        "events:TestEventPattern",
        "says whether an event pattern matches an event",
        "not implemented: we answer with moto's own EventBridge pattern matcher (the one its delivery uses)",
    ),
    Gap(
        "time inside handlers",
        "a Lambda that paces its calls sleeps in real time",
        "would sleep too: handlers pace through `shared.clock.monotonic/sleep`, which the local account runs on its simulated clock",
    ),
    Gap(
        "CloudFormation state machines",
        "apply DefinitionSubstitutions and run executions",
        "ignores substitutions and keeps stack state machines away from the ASL executor: the account resolves them from the stack and registers them with the executor",
    ),
    # ------ execution-stuck
    Gap(
        "states:GetExecutionHistory",
        "honours reverseOrder (newest first) and maxResults (with a nextToken)",
        "ignores both and returns every event oldest first: we order, page and cut the events as AWS does",
    ),
    Gap(
        "states:StopExecution",
        "aborts a running execution at once, even one waiting for a task token, and DescribeExecution shows the given error and cause",
        "leaves an execution that waits for a task token RUNNING forever and drops error and cause: we abort it, release the waiting task and keep error and cause",
    ),
    Gap(
        "events:PutEvents to Lambda",
        "delivers matching events to Lambda targets",
        "does not invoke them: the account invokes the target function (in-process, like every function) and reports the playbook executions it started",
    ),
    Gap(
        "Wait state while other executions run",
        "lets the rest of the account run while a state waits",
        "advances the virtual clock at once: before the waiting execution resumes, the account lets every other running execution reach a wait, a task token or its end (bounded)",
    ),
    # cost-spike
    Gap(
        "ce:GetCostAndUsage",
        "returns the account's cost per day and group (e.g. BlendedCost by SERVICE), in pages",
        "tracks no cost and answers from a queue of canned results: we aggregate the scenario's daily cost per service over the requested period",
    ),
    Gap(
        "s3:Put/Get/List/DeleteBucketIntelligentTieringConfiguration",
        "store a bucket's Intelligent-Tiering configurations",
        "not implemented: we keep them per bucket in the local account and answer as AWS does (NoSuchBucket, NoSuchConfiguration)",
    ),
    Gap(
        "sns:Publish to a Lambda subscription",
        "invokes the function with the notification (real MessageId, TopicArn, Subject, attributes)",
        "invokes it outside our dispatch with a fixed sample record: we deliver the real-shaped record to the real handler",
    ),
    Gap(
        "AWS::SNS::Subscription",
        "is a CloudFormation resource type (SAM's SNS event source creates one)",
        "is not created by moto's CloudFormation: we register a resource model that subscribes the endpoint, with its filter policy",
    ),
    Gap(
        "logs storedBytes and creationTime",
        "count everything a log group has stored since it was created",
        "count only the events put in this session and date the group now: scenarios declare the stored bytes and age of older data",
    ),
    # ------------------------------------------------------------------------------------ playbook: access-denied
    Gap(
        "iam:SimulatePrincipalPolicy",
        "evaluates the role's identity policies (inline, attached, permissions boundary) and an optional resource policy for each action and resource",
        "not implemented: we evaluate the policies moto holds for the role (explicit deny > allow > implicit deny; Action/NotAction, "
        "Resource/NotResource, * and ? wildcards; statements with conditions do not apply and their keys are reported missing, as without context entries)",
    ),
    Gap(
        "cloudtrail:LookupEvents",
        "returns the account's management events of the last 90 days",
        "not implemented: we answer from the scenario's `cloudtrail` events (none if it declares none)",
    ),
    Gap(
        "CloudFormation CommaDelimitedList parameters",
        "a parameter's default is split at commas like a value passed in",
        "splits only passed values and leaves a default as one string (so !Join over it joins its characters): we split defaults too",
    ),
    Gap(
        "Step Functions executions (speed only)",
        "a state machine's definition is parsed once, when it is created or updated",
        "parses the definition again with ANTLR at the start of every execution (about 0.3 s each): we keep each "
        "definition's parse tree and build fresh evaluation components from it per execution; the stack's physical "
        "names are the same on every deploy (moto's random generator is seeded while it deploys), so a definition "
        "is parsed once per process",
    ),
    Gap(
        "cloudformation:CreateStack (speed only)",
        "reads a JSON template as JSON",
        "reads every template with PyYAML's pure-Python loader first (0.6 s for ours): we read JSON as JSON (the same "
        "document: JSON is YAML) and leave YAML templates to moto",
    ),
    Gap(
        "kms:CreateKey",
        "chooses a random key id",
        "(world building) scenarios name their keys' ids so that messages and CloudTrail events can cite them: the world builder fixes the id moto generates",
    ),
]

# Step Functions' aws-sdk service names that are not the SDK's; and the error-name prefix AWS uses for each.
SDK_SERVICE = {
    "cloudwatchlogs": "logs",
    "eventbridge": "events",
    "servicequotas": "service-quotas",
    "costexplorer": "ce",
    "sfn": "stepfunctions",
    "states": "stepfunctions",
    "computeoptimizer": "compute-optimizer",
}
ERROR_PREFIX = {
    "dynamodb": "DynamoDb",
    "sfn": "Sfn",
    "lambda": "Lambda",
    "cloudwatch": "CloudWatch",
    "cloudwatchlogs": "CloudWatchLogs",
    "eventbridge": "EventBridge",
    "iam": "Iam",
    "s3": "S3",
    "servicequotas": "ServiceQuotas",
    "costexplorer": "CostExplorer",
    "cloudtrail": "CloudTrail",
    "kms": "Kms",
    "sns": "Sns",
    "budgets": "Budgets",
    "computeoptimizer": "ComputeOptimizer",
}
MIN_UNRESERVED = 100
_BIN_QUERY = re.compile(r"^\s*stats\s+count\(\*?\)\s+by\s+bin\((\d+)([smh])\)\s*$")


class VirtualClock:
    """Seconds that Wait states and retry backoffs would have spent; nothing actually sleeps."""

    def __init__(self) -> None:
        self.waited = 0.0
        self.expire_requested: set[str] = set()
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.waited += max(seconds, 0.0)

    def now(self) -> float:
        """The account's time in seconds: real time plus every simulated wait so far."""
        return time.monotonic() + self.waited


_ACTIVE: LocalAccount | None = None
_patched = False


def active() -> LocalAccount:
    if _ACTIVE is None:
        raise RuntimeError("no local account is running")
    return _ACTIVE


def install(account: LocalAccount) -> None:
    global _ACTIVE
    _ACTIVE = account
    _patch_moto_once()
    RECORDER.gaps.update(
        {
            "lambda:GetAccountSettings": _get_account_settings,
            "lambda:PutFunctionConcurrency": _put_function_concurrency,
            "servicequotas:RequestServiceQuotaIncrease": _request_quota_increase,
            "states:GetExecutionHistory": _get_execution_history,
            "states:StopExecution": _stop_execution,
            # cost-spike
            "ce:GetCostAndUsage": _get_cost_and_usage,
            "s3:PutBucketIntelligentTieringConfiguration": _put_intelligent_tiering,
            "s3:GetBucketIntelligentTieringConfiguration": _get_intelligent_tiering,
            "s3:ListBucketIntelligentTieringConfigurations": _list_intelligent_tiering,
            "s3:DeleteBucketIntelligentTieringConfiguration": _delete_intelligent_tiering,
            "iam:SimulatePrincipalPolicy": _simulate_principal_policy,
            "cloudtrail:LookupEvents": _lookup_events,
            # event-loop
            "states:ListExecutions": _list_executions,
            "events:TestEventPattern": _test_event_pattern,
            "s3:GetBucketNotificationConfiguration": _get_bucket_notification_configuration,
        }
    )
    _BUCKETS.clear()
    API_LATENCY_S["value"] = 0.0
    reset_quotas()
    _use_account_clock_in_handlers(account)


def uninstall() -> None:
    global _ACTIVE
    _ACTIVE = None
    _restore_handler_clock()


# ------------------------------------------------------------------------------------------- time inside handlers
_HANDLER_CLOCK: dict[str, Any] = {}


def _use_account_clock_in_handlers(account: LocalAccount) -> None:
    from .. import project

    shared_clock: Any = project.import_function_module("shared.clock")
    _HANDLER_CLOCK.setdefault("monotonic", shared_clock.monotonic)
    _HANDLER_CLOCK.setdefault("sleep", shared_clock.sleep)
    shared_clock.monotonic = account.clock.now
    shared_clock.sleep = account.clock.advance


def _restore_handler_clock() -> None:
    if _HANDLER_CLOCK:
        shared_clock: Any = importlib.import_module("shared.clock")
        shared_clock.monotonic = _HANDLER_CLOCK["monotonic"]
        shared_clock.sleep = _HANDLER_CLOCK["sleep"]


# ------------------------------------------------------------------------------------------- Step Functions at scale
# Step Functions' API quotas in us-east-1 (bucket size, refill per second).
SFN_QUOTAS = {"states:StopExecution": (1000.0, 200.0), "states:ListExecutions": (100.0, 5.0)}
LIST_EXECUTIONS_MAX = 1000
LIST_EXECUTIONS_DEFAULT = 100


class TokenBucket:
    """AWS's API throttling model: a call takes a token; tokens refill at a fixed rate up to the bucket size."""

    def __init__(self, size: float, refill: float, now: Any):
        self.size = size
        self.refill = refill
        self._now = now
        self.tokens = size
        self.last = now()
        self.throttled = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            moment = self._now()
            self.tokens = min(self.size, self.tokens + (moment - self.last) * self.refill)
            self.last = moment
            # A hair of tolerance: a client pacing exactly at the refill rate must not lose to float rounding.
            if self.tokens >= 1 - 1e-6:
                self.tokens -= 1
                return True
            self.throttled += 1
            return False


_BUCKETS: dict[str, TokenBucket] = {}
# Round-trip time of a Step Functions API call, slept for real. Zero except in benchmarks, which set it so a
# one-at-a-time client and a concurrent one pay the same network cost (quota waits stay simulated).
API_LATENCY_S = {"value": 0.0}


def reset_quotas(latency_s: float | None = None) -> None:
    """Full token buckets again (a benchmark's next contender starts as the first did); optionally set the latency."""
    account = active()
    _BUCKETS.update({api: TokenBucket(burst, refill, account.clock.now) for api, (burst, refill) in SFN_QUOTAS.items()})
    if latency_s is not None:
        API_LATENCY_S["value"] = latency_s


def bucket(api: str) -> TokenBucket:
    return _BUCKETS[api]


def _throttled() -> Any:
    return error_response("ThrottlingException", "Rate exceeded", 400)


def _sfn_backend() -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    account = active()
    return stepfunctions_parser_backends[account.account_id][account.region]


def _machine(state_machine_arn: str) -> Any:
    return next((m for m in _sfn_backend().state_machines if m.arn == state_machine_arn), None)


_INDEX: dict[int, tuple[int, dict[str, Any]]] = {}


def _execution(execution_arn: str) -> Any:
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[5] != "execution":
        return None
    machine = _machine(":".join([*parts[:5], "stateMachine", parts[6]]))
    if machine is None:
        return None
    size, index = _INDEX.get(id(machine), (-1, {}))
    if size != len(machine.executions):
        index = {e.execution_arn: e for e in machine.executions}
        _INDEX[id(machine)] = (len(machine.executions), index)
    return index.get(execution_arn)


def _stop_execution(params: dict[str, Any]) -> Any:
    if API_LATENCY_S["value"]:
        time.sleep(API_LATENCY_S["value"])
    if not bucket("states:StopExecution").take():
        return _throttled()
    arn = str(params.get("executionArn", ""))
    execution = _execution(arn)
    if execution is None:
        return error_response("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
    if execution.status == "RUNNING":
        stopped_at = datetime.datetime.now(datetime.UTC)
        worker = getattr(execution, "exec_worker", None)
        if worker is not None and getattr(worker, "env", None) is not None:
            _abort_live_execution(execution, params.get("error"), params.get("cause"), stopped_at)
        else:  # a dormant execution (scenario set-up without an executor thread)
            execution.stop(stop_date=stopped_at, error=params.get("error"), cause=params.get("cause"))
    return response({"stopDate": execution.stop_date or datetime.datetime.now(datetime.UTC)})


def _list_executions(params: dict[str, Any]) -> Any:
    machine = _machine(str(params.get("stateMachineArn", "")))
    if machine is None:
        return None  # moto answers StateMachineDoesNotExist
    limit = int(params.get("maxResults") or LIST_EXECUTIONS_DEFAULT)
    if limit > LIST_EXECUTIONS_MAX:
        return error_response(
            "ValidationException",
            f"1 validation error detected: Value '{limit}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000",
        )
    if API_LATENCY_S["value"]:
        time.sleep(API_LATENCY_S["value"])
    if not bucket("states:ListExecutions").take():
        return _throttled()
    status = params.get("statusFilter")
    ordered = sorted(
        (e for e in list(machine.executions) if e.exec_status is not None and (not status or e.status == status)),
        key=lambda e: (e.start_date, e.execution_arn),
        reverse=True,
    )
    if params.get("nextToken"):
        after_date, after_arn = json.loads(base64.urlsafe_b64decode(str(params["nextToken"])))
        position = (datetime.datetime.fromisoformat(after_date), after_arn)
        ordered = [e for e in ordered if (e.start_date, e.execution_arn) < position]
    page = ordered[:limit]
    body: dict[str, Any] = {
        "executions": [
            {"executionArn": e.execution_arn, "stateMachineArn": machine.arn, "name": e.name, "status": e.status, "startDate": e.start_date}
            | ({"stopDate": e.stop_date} if e.stop_date else {})
            for e in page
        ]
    }
    if len(ordered) > limit:
        last = page[-1]
        body["nextToken"] = base64.urlsafe_b64encode(json.dumps([last.start_date.isoformat(), last.execution_arn]).encode()).decode()
    return response(body)


class _NoCallbacks:
    """The callback pool of an execution that waits for no task token."""

    _pool: dict[str, Any] = {}

    def notify(self, callback_id: str, outcome: Any) -> bool:
        return False

    def heartbeat(self, callback_id: str) -> bool:
        return False


class _DormantWorker:
    """Stands in for the executor thread of a RUNNING execution that runs nothing (scenario set-up)."""

    def __init__(self, execution: Any):
        self.execution = execution
        self.env = type("DormantEnv", (), {"callback_pool_manager": _NoCallbacks()})()

    def stop(self, stop_date: Any, error: str | None, cause: str | None) -> None:
        from moto.stepfunctions.parser.api import ExecutionStatus

        self.execution.exec_status = ExecutionStatus.ABORTED
        self.execution.stop_date = stop_date
        self.execution.error = error
        self.execution.cause = cause


def add_dormant_executions(state_machine_arn: str, executions: list[tuple[str, str, datetime.datetime]]) -> None:
    """RUNNING executions of `state_machine_arn` without threads: (name, input JSON, start date) each."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import Execution

    machine = _machine(state_machine_arn)
    if machine is None:
        raise RuntimeError(f"no state machine {state_machine_arn}")
    account = active()
    for name, payload, started in executions:
        execution = Execution(
            name=name,
            sm_type=machine.sm_type,
            role_arn=machine.roleArn,
            exec_arn=f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}",
            account_id=account.account_id,
            region_name=account.region,
            state_machine=machine,
            start_date=started,
            cloud_watch_logging_session=None,
            activity_store={},
            input_data=payload,
        )
        execution.exec_status = ExecutionStatus.RUNNING
        execution.exec_worker = _DormantWorker(execution)  # type: ignore[assignment]
        machine.executions.append(execution)


def _get_bucket_notification_configuration(params: dict[str, Any]) -> Any:
    from moto.s3.models import s3_backends

    account = active()
    bucket = s3_backends[account.account_id]["aws"].buckets.get(str(params.get("Bucket", "")))
    config = getattr(bucket, "notification_configuration", None)
    if config is None or config.event_bridge is None:
        return None  # moto's own answer is right (or its NoSuchBucket)
    return response({"EventBridgeConfiguration": {}})


def _test_event_pattern(params: dict[str, Any]) -> Any:
    from moto.events.models import EventPattern

    raw = str(params["EventPattern"])
    matched = EventPattern(raw, json.loads(raw)).matches_event(json.loads(str(params["Event"])))
    return response({"Result": bool(matched)})


# ------------------------------------------------------------------------------------------- Lambda concurrency
def _lambda_backend() -> Any:
    from moto.awslambda.utils import get_backend

    account = active()
    return get_backend(account.account_id, account.region)


def _reserved_total(exclude: str | None = None) -> int:
    total = 0
    for function in _lambda_backend().list_functions():
        if function.reserved_concurrency and function.function_name != exclude:
            total += int(function.reserved_concurrency)
    return total


def _get_account_settings(params: dict[str, Any]) -> Any:
    limit = active().settings.concurrency_limit
    return response(
        {
            "AccountLimit": {
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": limit - _reserved_total(),
            },
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(_lambda_backend().list_functions())},
        }
    )


def _put_function_concurrency(params: dict[str, Any]) -> Any:
    name = str(params.get("FunctionName", "")).rsplit(":", 1)[-1]
    wanted = int(params.get("ReservedConcurrentExecutions", 0))
    unreserved = active().settings.concurrency_limit - _reserved_total(exclude=name) - wanted
    if unreserved < MIN_UNRESERVED:
        return error_response(
            "InvalidParameterValueException",
            "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
            f"below its minimum value of [{MIN_UNRESERVED}].",
        )
    return None  # moto applies it


def _request_quota_increase(params: dict[str, Any]) -> Any:
    account = active()
    request_id = f"{len(account.quota_requests) + 1:032x}"
    requested = {
        "Id": request_id,
        "ServiceCode": params["ServiceCode"],
        "QuotaCode": params["QuotaCode"],
        "DesiredValue": float(params["DesiredValue"]),
        "Status": "PENDING",
        "Created": time.time(),
        "Requester": account.account_id,
        "GlobalQuota": False,
        "Unit": "None",
    }
    account.quota_requests.append(requested)
    return response({"RequestedQuota": requested})


# ------------------------------------------------------------------------------------------- cost-spike
def _get_cost_and_usage(params: dict[str, Any]) -> Any:
    """Daily cost per service from the scenario (`account.costs`: date -> service -> USD), as Cost Explorer answers."""
    period = params["TimePeriod"]
    metrics = params.get("Metrics") or ["BlendedCost"]
    grouped = any(group.get("Key") == "SERVICE" for group in params.get("GroupBy", []))
    day = datetime.date.fromisoformat(period["Start"])
    end = datetime.date.fromisoformat(period["End"])
    results = []
    while day < end:
        services = active().costs.get(day.isoformat(), {})
        amounts = {metric: {"Amount": f"{sum(services.values()):.10f}", "Unit": "USD"} for metric in metrics}
        results.append(
            {
                "TimePeriod": {"Start": day.isoformat(), "End": (day + datetime.timedelta(days=1)).isoformat()},
                "Total": {} if grouped else amounts,
                "Groups": [
                    {"Keys": [service], "Metrics": {metric: {"Amount": f"{amount:.10f}", "Unit": "USD"} for metric in metrics}}
                    for service, amount in sorted(services.items())
                ]
                if grouped
                else [],
                "Estimated": day >= datetime.date.today() - datetime.timedelta(days=1),
            }
        )
        day += datetime.timedelta(days=1)
    return response({"ResultsByTime": results, "DimensionValueAttributes": [], "GroupDefinitions": params.get("GroupBy", [])})


def _bucket_exists(bucket: str) -> bool:
    from moto.s3.models import s3_backends

    return bucket in s3_backends[active().account_id]["aws"].buckets


def _put_intelligent_tiering(params: dict[str, Any]) -> Any:
    if not _bucket_exists(params["Bucket"]):
        return error_response("NoSuchBucket", "The specified bucket does not exist", 404)
    active().tiering.setdefault(params["Bucket"], {})[params["Id"]] = dict(params["IntelligentTieringConfiguration"])
    return response({})


def _get_intelligent_tiering(params: dict[str, Any]) -> Any:
    if not _bucket_exists(params["Bucket"]):
        return error_response("NoSuchBucket", "The specified bucket does not exist", 404)
    found = active().tiering.get(params["Bucket"], {}).get(params["Id"])
    if found is None:
        return error_response("NoSuchConfiguration", "The specified configuration does not exist.", 404)
    return response({"IntelligentTieringConfiguration": found})


def _list_intelligent_tiering(params: dict[str, Any]) -> Any:
    if not _bucket_exists(params["Bucket"]):
        return error_response("NoSuchBucket", "The specified bucket does not exist", 404)
    found = list(active().tiering.get(params["Bucket"], {}).values())
    return response({"IsTruncated": False, "IntelligentTieringConfigurationList": found})


def _delete_intelligent_tiering(params: dict[str, Any]) -> Any:
    if active().tiering.get(params["Bucket"], {}).pop(params["Id"], None) is None:
        return error_response("NoSuchConfiguration", "The specified configuration does not exist.", 404)
    return response({}, 204)


def set_log_group_history(group_name: str, stored_bytes: int, age_days: int) -> None:
    """What a log group holds from before the scenario: its stored bytes and its creation time."""
    from moto.logs.models import LogStream, logs_backends

    account = active()
    group = logs_backends[account.account_id][account.region].groups[group_name]
    archive = LogStream(group, "archived")
    archive.stored_bytes = stored_bytes
    group.streams["archived"] = archive
    group.creation_time = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(days=age_days)


def _patch_sns_lambda_delivery() -> None:
    from moto.sns.models import Subscription

    original = Subscription.publish

    def publish(
        self: Any, message: str, message_id: str, subject: str | None = None, message_attributes: Any = None, **kwargs: Any
    ) -> None:
        if self.protocol != "lambda":
            return original(self, message, message_id, subject=subject, message_attributes=message_attributes, **kwargs)  # type: ignore[no-any-return]
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(message_attributes, message):
            return None
        record = {
            "EventVersion": "1.0",
            "EventSubscriptionArn": self.arn,
            "EventSource": "aws:sns",
            "Sns": {
                "Type": "Notification",
                "MessageId": message_id,
                "TopicArn": self.topic.arn,
                "Subject": subject,
                "Message": message,
                "Timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "SignatureVersion": "1",
                "Signature": "local",
                "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/local.pem",
                "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                "MessageAttributes": {
                    name: {
                        "Type": value.get("DataType", value.get("Type", "String")),
                        "Value": value.get("StringValue", value.get("Value")),
                    }
                    for name, value in (message_attributes or {}).items()
                },
            },
        }
        active().dispatch(self.endpoint, json.dumps({"Records": [record]}))
        return None

    Subscription.publish = publish  # type: ignore[method-assign,assignment]


def _register_sns_subscription_model() -> None:
    """AWS::SNS::Subscription (SAM's SNS event source) as a CloudFormation resource type."""
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.sns.models import sns_backends

    class SnsSubscription(CloudFormationModel):  # type: ignore[misc]
        def __init__(self, arn: str):
            self.arn = arn

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::Subscription"

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:  # type: ignore[override]
            properties = cloudformation_json["Properties"]
            backend = sns_backends[account_id][region_name]
            subscription = backend.subscribe(properties["TopicArn"], properties["Endpoint"], properties["Protocol"])
            if properties.get("FilterPolicy"):
                backend.set_subscription_attributes(subscription.arn, "FilterPolicy", json.dumps(properties["FilterPolicy"]))
            return cls(subscription.arn)

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


# ------------------------------------------------------------------------------------------- playbook: access-denied
# moto's own evaluator (moto/iam/access_control.py) was the first choice, but it does not fit the simulator: it treats a
# statement with NotResource as matching everything, reads ARNs as regular expressions ('.' matches any character, no
# '?'), turns a statement whose condition is false into a deny, and cannot say which statement decided. So this is a
# small evaluator of its own, following IAM's documented evaluation logic for one account.
def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | dict) else list(value or [])


def _applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        action_matches = any(_glob(p, action, ignore_case=True) for p in _listed(statement["Action"]))
    else:
        action_matches = "NotAction" in statement and not any(_glob(p, action, ignore_case=True) for p in _listed(statement["NotAction"]))
    if not action_matches:
        return False
    if "Resource" in statement:
        return any(_glob(p, resource) for p in _listed(statement["Resource"]))
    if "NotResource" in statement:
        return not any(_glob(p, resource) for p in _listed(statement["NotResource"]))
    return True


def _document(text: Any) -> dict[str, Any]:
    from urllib.parse import unquote

    if isinstance(text, dict):
        return text
    text = str(text)
    return dict(json.loads(text if text.lstrip().startswith("{") else unquote(text)))


def _role_policies(role_arn: str) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, Any] | None]:
    """(source id, source type, document) of each identity policy of the role, and its permissions boundary."""
    from moto.iam.models import iam_backends

    account = active()
    backend = iam_backends[account.account_id]["aws"]
    role = backend.get_role(role_arn.rsplit("/", 1)[-1])

    def default_document(policy: Any) -> dict[str, Any]:
        return _document(next(v.document for v in policy.versions if v.is_default))

    sources = [(name, "role", _document(document)) for name, document in role.policies.items()]
    for arn, policy in role.managed_policies.items():
        sources.append((policy.name, "aws-managed" if ":iam::aws:" in arn else "user-managed", default_document(policy)))
    boundary = None
    if role.permissions_boundary_arn:
        boundary = default_document(backend.get_policy(role.permissions_boundary_arn))
    return sources, boundary


def _evaluate(sources: list[tuple[str, str, dict[str, Any]]], action: str, resource: str) -> tuple[str, list[dict[str, Any]], set[str]]:
    denied: list[dict[str, Any]] = []
    allowed: list[dict[str, Any]] = []
    missing: set[str] = set()
    for source_id, source_type, document in sources:
        for statement in _listed(document.get("Statement")):
            if not _applies(statement, action, resource):
                continue
            if statement.get("Condition"):
                missing.update(key for operator in statement["Condition"].values() for key in operator)
                continue
            matched = {"SourcePolicyId": source_id, "SourcePolicyType": source_type}
            (denied if statement.get("Effect") == "Deny" else allowed).append(matched)
    if denied:
        return "explicitDeny", denied, missing
    return ("allowed", allowed, missing) if allowed else ("implicitDeny", [], missing)


def _simulate_principal_policy(params: dict[str, Any]) -> Any:
    try:
        sources, boundary = _role_policies(str(params["PolicySourceArn"]))
    except Exception:  # noqa: BLE001 - moto's IAM raises its own not-found error type
        return error_response("NoSuchEntity", f"The role {params['PolicySourceArn']} cannot be found.", 404)
    if params.get("ResourcePolicy"):
        sources.append(("ResourcePolicy", "resource", _document(params["ResourcePolicy"])))
    results = []
    for action in params.get("ActionNames", []):
        for resource in params.get("ResourceArns") or ["*"]:
            decision, matched, missing = _evaluate(sources, action, resource)
            result: dict[str, Any] = {
                "EvalActionName": action,
                "EvalResourceName": resource,
                "EvalDecision": decision,
                "MatchedStatements": matched,
                "MissingContextValues": sorted(missing),
            }
            if boundary is not None:
                bounded = _evaluate([("PermissionsBoundary", "none", boundary)], action, resource)[0] == "allowed"
                result["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": bounded}
                if decision == "allowed" and not bounded:
                    result["EvalDecision"] = "implicitDeny"
            results.append(result)
    return response({"EvaluationResults": results, "IsTruncated": False})


def _lookup_events(params: dict[str, Any]) -> Any:
    import datetime

    wanted = {a["AttributeKey"]: a["AttributeValue"] for a in params.get("LookupAttributes", [])}
    start = params.get("StartTime")
    if isinstance(start, str):
        start = datetime.datetime.fromisoformat(start.replace("Z", "+00:00"))
    events = []
    for event in sorted(active().cloudtrail_events, key=lambda e: e["EventTime"], reverse=True):
        if wanted.get("EventName") not in (None, event["EventName"]):
            continue
        if isinstance(start, datetime.datetime) and event["EventTime"] < start:
            continue
        events.append(event)
    return response({"Events": events[: int(params.get("MaxResults", 50))]})


def _patch_list_parameter_defaults() -> None:
    from moto.cloudformation.parsing import ResourceMap

    original = ResourceMap.load_parameters

    def load_parameters(self: Any) -> None:
        original(self)
        for name, slot in self._template.get("Parameters", {}).items():
            kind = slot.get("Type", "String")
            value = self.resolved_parameters.get(name)
            if (kind == "CommaDelimitedList" or kind.startswith("List")) and isinstance(value, str):
                self.resolved_parameters[name] = self._parsed_resources[name] = value.split(",")

    ResourceMap.load_parameters = load_parameters  # type: ignore[method-assign]


def create_key_with_id(account: LocalAccount, key_id: str, policy: str, description: str = "") -> str:
    """Create a KMS key whose id the scenario chose (AWS picks one at random; moto has no way to choose)."""
    from unittest import mock

    from moto.kms import models as kms_models

    with mock.patch.object(kms_models, "generate_key_id", lambda multi_region=False: key_id):
        return str(account.client("kms").create_key(Policy=policy, Description=description)["KeyMetadata"]["Arn"])


# ------------------------------------------------------------------------------------------- moto patches
def _patch_moto_once() -> None:
    global _patched
    if _patched:
        return
    _patch_lambda_invoke()
    _patch_aws_sdk_tasks()
    _patch_principal_of_tasks()
    _patch_time()
    _patch_logs_insights()
    _register_cloudformation_models()
    _patch_definite_json_paths()
    _patch_atomic_dynamodb_writes()
    _patch_sns_lambda_delivery()
    _register_sns_subscription_model()
    _patch_list_parameter_defaults()
    _parse_each_definition_once()
    _read_json_templates_as_json()
    _patched = True


def _read_json_templates_as_json() -> None:
    from moto.cloudformation.models import Stack

    original = Stack.parse_template

    def parse_template(template: str) -> dict[str, Any]:
        if template.lstrip().startswith("{"):
            with contextlib.suppress(ValueError):
                return dict(json.loads(template))
        return dict(original(template))

    Stack.parse_template = staticmethod(parse_template)  # type: ignore[method-assign]


# Parse trees by definition text. A tree is only read after parsing; each execution still gets fresh evaluation
# components from it (the Preprocessor), so no state is shared between executions.
_PARSE_TREES: dict[str, Any] = {}
_PARSE_LOCK = threading.Lock()


def _parse_each_definition_once() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = AmazonStateLanguageParser.parse

    def parse(definition: str) -> tuple[Any, Any]:
        tree = _PARSE_TREES.get(definition)
        if tree is None:
            program, tree = original(definition)  # raises on a bad definition, so only good ones are kept
            with _PARSE_LOCK:
                _PARSE_TREES[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]


def _patch_lambda_invoke() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
        payload, error = active().dispatch(function_name, body)
        if error:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def lambda_error_payload(error: BaseException) -> bytes:
    return json.dumps(
        {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": "",
            "stackTrace": traceback.format_tb(error.__traceback__)[-5:],
        }
    ).encode()


def _patch_aws_sdk_tasks() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_aws_sdk as sdk
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService

    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES = SDK_SERVICE  # type: ignore[misc]
    sdk._SERVICE_ERROR_NAMES.clear()
    sdk._SERVICE_ERROR_NAMES.update(ERROR_PREFIX)
    cls = sdk.StateTaskServiceAwsSdk

    def operation(self: Any) -> Any:
        name = self.resource.api_action
        return _service_model(self._get_boto_service_name()).operation_model(name[0].upper() + name[1:])

    def normalise_parameters(
        self: Any, parameters: dict[str, Any], boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        shape = operation(self).input_shape
        if isinstance(shape, StructureShape):
            self._to_boto_request(parameters, shape)

    def normalise_response(self: Any, result: Any, boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
        shape = operation(self).output_shape
        if isinstance(shape, StructureShape):
            self._from_boto_response(result, shape)
        _json_safe(result)

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        # AWS names unmodelled errors (throttling, internal) "<Service>.<Service>Exception", modelled ones by their shape.
        if isinstance(ex, ClientError):
            code = ex.response["Error"]["Code"]
            modelled = code in {shape.name for shape in operation(self).service_model.error_shapes}
            prefix = self._normalise_service_error_name(self.resource.api_name)
            name = code if modelled else prefix
            error = f"{prefix}.{name if name.endswith('Exception') else name + 'Exception'}"
            cause = f"{ex.response['Error'].get('Message', '')} (Service: {prefix}, Status Code: {ex.response['ResponseMetadata'].get('HTTPStatusCode', 400)}, Error Code: {code})"
            return self._get_task_failure_event(env=env, error=error, cause=cause)
        return original_from_error(self, env, ex)

    original_from_error = cls._from_error
    cls._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    cls._normalise_response = normalise_response  # type: ignore[method-assign,assignment]
    cls._from_error = from_error  # type: ignore[method-assign]


@functools.cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def _json_safe(value: Any) -> None:
    """Step Functions hands results on as JSON: timestamps become ISO strings, in place."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in list(items):
        if isinstance(item, datetime.datetime):
            value[key] = item.isoformat()
        else:
            _json_safe(item)


def _patch_principal_of_tasks() -> None:
    """Calls a Task state makes are the state machine role's calls: attribute them to its logical id."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService

    original = StateTaskService._eval_execution

    def eval_execution(self: Any, env: Any) -> None:
        name = env.states.context_object.context_object_data["StateMachine"]["Name"]
        token = PRINCIPAL.set(active().logical_id_of_state_machine(name))
        try:
            original(self, env)
        finally:
            PRINCIPAL.reset(token)

    StateTaskService._eval_execution = eval_execution  # type: ignore[method-assign]


def _patch_time() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    class _Time:
        """Stands in for the `time` module inside moto's retrier: backoff advances the virtual clock."""

        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            active().clock.advance(seconds)

    retrier_decl.time = _Time()  # type: ignore[assignment]

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        active().clock.advance(wait_seconds)
        execution = env.states.context_object.context_object_data["Execution"]["Id"]
        with _IDLE.waiting(execution=execution):
            _IDLE.settle(except_execution=execution)

    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]

    def callback_wait(self: Any, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with _IDLE.waiting(callback=self.callback_id):
            while not self._notify_event.wait(0.02):
                if self.callback_id in active().clock.expire_requested:
                    active().clock.advance(timeout or 0)
                    break
                if self.callback_id in _IDLE.abandoned:
                    break  # its execution was stopped
                if deadline is not None and time.monotonic() >= deadline:
                    break
        return self._outcome

    CallbackEndpoint.wait = callback_wait  # type: ignore[method-assign]
    _patch_stopped_stays_stopped()


def _patch_logs_insights() -> None:
    from moto.logs import models

    original = models.execute_query

    def execute_query(log_groups: list[Any], query: str, start_time: int, end_time: int) -> list[dict[str, Any]]:
        match = _BIN_QUERY.match(query)
        if not match:
            return original(log_groups=log_groups, query=query, start_time=start_time, end_time=end_time)
        size = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)] * 1000
        counts: Counter[int] = Counter()
        for group in log_groups:
            for stream in group.streams.values():
                for event in stream.events:
                    if start_time * 1000 <= event.timestamp <= end_time * 1000:
                        counts[event.timestamp - event.timestamp % size] += 1
        label = f"bin({match.group(1)}{match.group(2)})"
        return [
            {label: time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(start / 1000)), "count()": str(count)}
            for start, count in sorted(counts.items())
        ]

    models.execute_query = execute_query  # type: ignore[assignment]


_INDEFINITE_PATH = re.compile(r"\[\s*(\*|\?|-?\d*\s*:)|\.\.|\.\*|\[\s*'[^']*'\s*,|\[\s*\d+\s*,")


def _patch_definite_json_paths() -> None:
    """A definite path such as `$.plan.actions[0].target` selects one value on AWS; moto wraps it in a list."""
    import importlib

    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path.extract_json

    def extract_json(path: str, data: Any) -> Any:
        if not _INDEFINITE_PATH.search(path):
            matches = json_path.parse(path).find(data)
            if len(matches) == 1:
                return matches[0].value
        return original(path, data)

    json_path.extract_json = extract_json
    for module in (
        "moto.stepfunctions.parser.asl.component.common.string.string_expression",
        "moto.stepfunctions.parser.asl.component.intrinsic.argument.argument",
        "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.timestamp_operators",
        "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.boolean_equals",
        "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.numeric",
        "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.string_operators",
        "moto.stepfunctions.parser.asl.eval.states",
    ):
        importlib.import_module(module).extract_json = extract_json  # type: ignore[attr-defined]


_DYNAMODB_WRITE_LOCK = threading.RLock()


def _patch_atomic_dynamodb_writes() -> None:
    """A conditional write is atomic on DynamoDB; moto checks and writes in two steps that threads can interleave."""
    from moto.dynamodb.models import DynamoDBBackend

    def atomic(method: Any) -> Any:
        @functools.wraps(method)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with _DYNAMODB_WRITE_LOCK:
                return method(*args, **kwargs)

        return locked

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))


def _register_cloudformation_models() -> None:
    """Resource types the template uses that moto's CloudFormation does not create."""
    from moto.cloudformation import parsing
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    class CloudWatchAlarm(CloudFormationModel):  # type: ignore[misc]
        def __init__(self, alarm: Any):
            self.alarm = alarm

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @property
        def physical_resource_id(self) -> str:
            return str(self.alarm.name)

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return str(self.alarm.alarm_arn)

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:  # type: ignore[override]
            properties = cloudformation_json["Properties"]
            alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
                name=properties.get("AlarmName", resource_name),
                namespace=properties.get("Namespace"),
                metric_name=properties.get("MetricName"),
                comparison_operator=properties["ComparisonOperator"],
                evaluation_periods=int(properties["EvaluationPeriods"]),
                period=int(properties.get("Period", 60)),
                threshold=float(properties.get("Threshold", 0)),
                statistic=properties.get("Statistic"),
                description=properties.get("AlarmDescription", ""),
                dimensions=properties.get("Dimensions", []),
                alarm_actions=properties.get("AlarmActions", []),
                datapoints_to_alarm=properties.get("DatapointsToAlarm"),
                treat_missing_data=properties.get("TreatMissingData"),
            )
            return cls(alarm)

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


# ------------------------------------------------------------------------------------------- execution-stuck
# Bounds, not sleeps: other executions settle within milliseconds (none of the scenarios takes a second); the
# bounds only matter on a starved machine, where giving up early would let a Wait end before the world caught up.
SETTLE_DEADLINE_S = 60.0
STOP_DEADLINE_S = 10.0


class _Idleness:
    """Which executions are idle: waiting in a Wait state or for a task token. The rest are doing work."""

    def __init__(self) -> None:
        self.executions: Counter[str] = Counter()
        self.callbacks: Counter[str] = Counter()
        self.abandoned: set[str] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def waiting(self, execution: str | None = None, callback: str | None = None) -> Iterator[None]:
        with self._lock:
            if execution:
                self.executions[execution] += 1
            if callback:
                self.callbacks[callback] += 1
        try:
            yield
        finally:
            with self._lock:
                if execution:
                    self.executions[execution] -= 1
                if callback:
                    self.callbacks[callback] -= 1

    def busy(self, except_execution: str) -> list[str]:
        busy = []
        for execution in _parser_executions():
            arn = execution.exec_arn
            if arn == except_execution or _status(execution) != "RUNNING" or execution.exec_worker is None:
                continue
            if isinstance(execution.exec_worker, _DormantWorker):
                continue  # a scenario's dormant execution never moves: nothing to wait for
            env = execution.exec_worker.env
            tokens = list(env.callback_pool_manager._pool) if env is not None else []
            with self._lock:
                idle = self.executions[arn] > 0 or any(self.callbacks[token] > 0 for token in tokens)
            if not idle:
                busy.append(arn)
        return busy

    def settle(self, except_execution: str) -> None:
        """Simulated time passes for everyone: let the other executions reach a wait, a task token or their end."""
        deadline = time.monotonic() + SETTLE_DEADLINE_S
        while self.busy(except_execution) and time.monotonic() < deadline:
            time.sleep(0.01)


_IDLE = _Idleness()


def _parser_executions() -> list[Any]:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    account = active()
    backend = stepfunctions_parser_backends[account.account_id][account.region]
    return [execution for machine in backend.state_machines for execution in list(machine.executions)]


def _patch_stopped_stays_stopped() -> None:
    """The task a StopExecution releases fails in moto's executor; on AWS nothing overrides the abort."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    original = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return
        original(self, error)

    Environment.set_error = set_error  # type: ignore[method-assign]


def busy_executions() -> list[str]:
    """Running executions that are doing work (not waiting in a Wait state or for a task token)."""
    return _IDLE.busy(except_execution="")


def backdate_execution(arn: str, age: Any) -> None:
    """Scenario set-up: make an execution look as if it started `age` (a timedelta) ago, its history with it."""
    import datetime

    from moto.core.utils import iso_8601_datetime_with_milliseconds

    execution = _parser_execution(arn)
    execution.start_date -= age
    if execution.stop_date is not None:
        execution.stop_date -= age
    manager = execution.exec_worker.env.event_manager
    with manager._mutex:
        for event in manager._history_event_list:
            moment = datetime.datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
            event["timestamp"] = iso_8601_datetime_with_milliseconds(moment - age)


def _status(execution: Any) -> str | None:
    """An execution's status; None in the instant between its creation and its start."""
    return getattr(execution.exec_status, "value", None)


def _parser_execution(arn: str) -> Any:
    return next((execution for execution in _parser_executions() if execution.exec_arn == arn), None)


def _get_execution_history(params: dict[str, Any]) -> Any:
    execution = _parser_execution(str(params.get("executionArn", "")))
    if execution is None:
        return None  # moto answers ExecutionDoesNotExist / InvalidArn as AWS does
    events = list(execution.to_history_output()["events"])
    if params.get("reverseOrder"):
        events.reverse()
    start = int(params.get("nextToken") or 0)
    size = int(params.get("maxResults") or 1000)
    page: dict[str, Any] = {"events": events[start : start + size]}
    if start + size < len(events):
        page["nextToken"] = str(start + size)
    return response(page)


def _abort_live_execution(execution: Any, error: Any, cause: Any, stopped_at: Any) -> None:
    """An execution with an executor thread (one waiting for a task token, say): abort it, release what it waits
    for, and keep the error and cause the caller gave."""
    execution.stop(stop_date=stopped_at, error=error, cause=cause)
    env = execution.exec_worker.env
    _IDLE.abandoned.update(env.callback_pool_manager._pool)
    deadline = time.monotonic() + STOP_DEADLINE_S
    while _status(execution) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.01)
    execution.error, execution.cause = error, cause


def decode_payload(body: Any) -> Any:
    if body in (None, "", b""):
        return {}
    if isinstance(body, bytes | bytearray):
        body = body.decode()
    try:
        return json.loads(body)
    except ValueError:
        return base64.b64decode(body)


def render_doc() -> str:
    """docs/local-account.md, generated from GAPS."""
    lines = [
        "# The local account and moto's gaps",
        "",
        "The local account (`src/playbooks/local/`) runs the project's own `template.yaml` and ASL on moto 5.2.5. Where moto",
        "differs from AWS, `moto_gaps.py` makes it behave like AWS; no playbook is changed to suit moto. This page is",
        "generated from `moto_gaps.GAPS` (`make docs`); a test fails when it is stale.",
        "",
        "| API or feature | AWS | moto, and what the local account does |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {gap.api} | {gap.aws} | {gap.moto} |" for gap in GAPS]
    from .aws import authorization

    return "\n".join(lines + authorization.render_doc()) + "\n"
