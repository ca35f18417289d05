"""Step Functions' API: StopExecution, ListExecutions and GetExecutionHistory as AWS answers them, its quotas,
dormant executions for scale, and which executions are busy while simulated time passes."""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..recorder import error_response, response
from .runtime import Gap, Handler, Source, active
from .throttling import TokenBucket

# Step Functions' API quotas in us-east-1 (bucket size, refill per second), from the developer guide's "Quotas related
# to API action throttling" (StartExecution: the Standard column).
SFN_QUOTAS = {
    f"states:{api}": (float(size), float(refill))
    for api, size, refill in (
        ("CreateActivity", 100, 1),
        ("CreateStateMachine", 100, 1),
        ("CreateStateMachineAlias", 100, 1),
        ("DeleteActivity", 100, 1),
        ("DeleteStateMachine", 100, 1),
        ("DeleteStateMachineAlias", 100, 1),
        ("DeleteStateMachineVersion", 100, 1),
        ("DescribeActivity", 200, 1),
        ("DescribeExecution", 300, 15),
        ("DescribeMapRun", 200, 1),
        ("DescribeStateMachine", 200, 20),
        ("DescribeStateMachineAlias", 200, 1),
        ("DescribeStateMachineForExecution", 200, 1),
        ("GetActivityTask", 3000, 500),
        ("GetExecutionHistory", 400, 20),
        ("ListActivities", 100, 10),
        ("ListExecutions", 200, 5),
        ("ListMapRuns", 100, 1),
        ("ListStateMachineAliases", 100, 1),
        ("ListStateMachines", 100, 5),
        ("ListStateMachineVersions", 100, 1),
        ("ListTagsForResource", 100, 1),
        ("PublishStateMachineVersion", 100, 1),
        ("RedriveExecution", 1300, 300),
        ("SendTaskFailure", 3000, 500),
        ("SendTaskHeartbeat", 3000, 500),
        ("SendTaskSuccess", 3000, 500),
        ("StartExecution", 1300, 300),
        ("StopExecution", 1000, 200),
        ("TagResource", 200, 1),
        ("TestState", 50, 10),
        ("UntagResource", 200, 1),
        ("UpdateMapRun", 100, 1),
        ("UpdateStateMachine", 100, 1),
        ("UpdateStateMachineAlias", 100, 1),
        ("ValidateStateMachineDefinition", 100, 1),
    )
}

# The simulator's own hands (scenario set-up, an operator's console, polling until an execution ends): AWS would count
# them too, but they are not what a playbook must survive, and a test harness that throttles itself proves nothing.
UNCOUNTED_PRINCIPALS = {"operator", "world", "notifier"}

# How long a just-started execution may stay out of ListExecutions ("eventually consistent ... best effort"; AWS names
# no bound, so we take one a caller must plan for).
LIST_CONSISTENCY_S = 10.0


GAPS = [
    Gap(
        "Step Functions API quotas (every throttled API: StartExecution, DescribeExecution, ListExecutions, StopExecution, GetExecutionHistory, SendTask*, ...)",
        "throttle each API with ThrottlingException ('Rate exceeded') beyond its own token bucket per account and region; us-east-1: "
        "StartExecution 1,300 + 300/s, DescribeExecution 300 + 15/s, ListExecutions 200 + 5/s, StopExecution 1,000 + 200/s, "
        "GetExecutionHistory 400 + 20/s, DescribeStateMachineForExecution 200 + 1/s, SendTask* 3,000 + 500/s, the rest as "
        "published. An aws-sdk task sees it as `Sfn.SfnException`, the optimized states:startExecution as "
        "`StepFunctions.AWSStepFunctionsException`. Source: Step Functions developer guide, 'Step Functions service quotas', "
        "'Quotas related to API action throttling' (US East (N. Virginia) column)",
        "never throttles: we keep every published bucket on the local account's clock (real time plus simulated waits) for the "
        "calls of the stack's functions and state machines (the simulator's own set-up and polling are not counted), so pacing "
        "is exercised and its simulated time reported, never slept (a benchmark may add a real round trip per call; "
        "scenarios and tests do not)",
        sources=(
            Source(
                "AWS Step Functions developer guide, Step Functions service quotas",
                "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
            ),
        ),
    ),
    Gap(
        "states:StopExecution",
        "records the cause and error, answers a finished execution with its stop date, and refuses an unknown execution (ExecutionDoesNotExist)",
        "drops the cause and error and finds the execution by a linear scan: we record both and index the executions",
        sources=(
            Source(
                "AWS Step Functions API reference, StopExecution", "https://docs.aws.amazon.com/goto/WebAPI/states-2016-11-23/StopExecution"
            ),
        ),
    ),
    Gap(
        "states:ListExecutions",
        "pages most recent first, RUNNING executions by their start date and closed ones by their stop date, maxResults up "
        "to 1,000 (default 100), with a nextToken that survives executions changing status between pages; eventually "
        "consistent ('best effort, may not reflect very recent updates'). Source: Step Functions API reference, "
        "ListExecutions",
        "sorts by start date only, pages by a token that breaks when the last listed execution leaves the status filter "
        "and accepts any page size: we sort RUNNING executions by start date and closed ones by stop date (one order, "
        "most recent first), page by (sort date, ARN), refuse more than 1,000, and (the stricter reading of 'best "
        f"effort') leave out of the stack's listings an execution started less than {LIST_CONSISTENCY_S:.0f} s ago on "
        "the account's clock",
        sources=(
            Source(
                "AWS Tools for PowerShell help, Get-SFNExecutionList (the ListExecutions API description)",
                "https://www.powershellgallery.com/packages/AWS.Tools.StepFunctions/4.1.335/Content/AWS.Tools.StepFunctions.dll-Help.xml",
            ),
            Source(
                "Paws (Perl SDK) documentation, StepFunctions ListExecutions (maxResults default 100, maximum 1000)",
                "https://metacpan.org/pod/release/JLMARTIN/Paws-0.39/lib/Paws/StepFunctions/ListExecutions.pm",
            ),
        ),
    ),
    Gap(
        "thousands of RUNNING executions",
        "cost nothing to hold",
        "each runs in its own thread: scenarios create dormant RUNNING executions (no thread) that stop like real ones",
        sources=(
            Source(
                "AWS Step Functions developer guide, Step Functions service quotas",
                "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
            ),
        ),
    ),
    Gap(
        "states:GetExecutionHistory",
        "honours reverseOrder (newest first) and maxResults (with a nextToken)",
        "ignores both and returns every event oldest first: we order, page and cut the events as AWS does",
        sources=(
            Source(
                "AWS Step Functions API reference, GetExecutionHistory",
                "https://docs.aws.amazon.com/goto/WebAPI/states-2016-11-23/GetExecutionHistory",
            ),
        ),
    ),
    Gap(
        "states:GetExecutionHistory includeExecutionData",
        "returns each event's input and output unless includeExecutionData is false (it defaults to true): with "
        "false, only metadata (Step Functions API reference, GetExecutionHistory; AWS Compute Blog, 'Introducing "
        "larger state payloads for AWS Step Functions')",
        "ignores the flag and always returns the data: we drop input, output and a task's parameters (the stricter "
        "reading: parameters are the data sent to the resource) with their details when it is false",
        sources=(
            Source(
                "AWS Step Functions API reference, GetExecutionHistory",
                "https://docs.aws.amazon.com/goto/WebAPI/states-2016-11-23/GetExecutionHistory",
            ),
        ),
    ),
    Gap(
        "states:DescribeExecution includedData",
        "answers without the execution's input and output when includedData is METADATA_ONLY (Step Functions API "
        "reference, DescribeExecution: includedData ALL_DATA | METADATA_ONLY)",
        "ignores it and always returns input and output: we leave both out for METADATA_ONLY",
        sources=(
            Source(
                "AWS Tools for PowerShell reference, Get-SFNExecution (DescribeExecution, IncludedData)",
                "https://docs.aws.amazon.com/powershell/latest/reference/items/Get-SFNExecution.html",
            ),
        ),
    ),
    Gap(
        "states:StopExecution",
        "aborts a running execution at once, even one waiting for a task token, and DescribeExecution shows the given error and cause",
        "leaves an execution that waits for a task token RUNNING forever and drops error and cause: we abort it, release the waiting task and keep error and cause",
        sources=(
            Source(
                "AWS Step Functions API reference, StopExecution", "https://docs.aws.amazon.com/goto/WebAPI/states-2016-11-23/StopExecution"
            ),
        ),
    ),
]


LIST_EXECUTIONS_MAX = 1000


LIST_EXECUTIONS_DEFAULT = 100


BUCKETS: dict[str, TokenBucket] = {}


# Round-trip time of a Step Functions API call, slept for real. Zero except in benchmarks, which set it so a
# one-at-a-time client and a concurrent one pay the same network cost (quota waits stay simulated).
API_LATENCY_S = {"value": 0.0}


def reset_quotas(latency_s: float | None = None) -> None:
    """Full token buckets again (a benchmark's next contender starts as the first did); optionally set the latency."""
    account = active()
    BUCKETS.update({api: TokenBucket(burst, refill, account.clock.now) for api, (burst, refill) in SFN_QUOTAS.items()})
    if latency_s is not None:
        API_LATENCY_S["value"] = latency_s


def bucket(api: str) -> TokenBucket:
    return BUCKETS[api]


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


def _counted() -> bool:
    """Whether the call in progress is one the account's quotas count: the stack's, not the simulator's own."""
    from ..recorder import PRINCIPAL
    from .pagination import INNER

    return PRINCIPAL.get() not in UNCOUNTED_PRINCIPALS and not INNER.get()


def _within_quota(api: str, answer: Handler | None = None) -> Handler:
    """`answer` (or moto, when it is None) behind the API's token bucket."""

    def handler(params: dict[str, Any]) -> Any:
        if API_LATENCY_S["value"]:
            time.sleep(API_LATENCY_S["value"])
        if _counted() and not bucket(api).take():
            return _throttled()
        return answer(params) if answer is not None else None

    return handler


def _stop_execution(params: dict[str, Any]) -> Any:
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
    # A finished execution answers like a stopped one: the caller cannot tell them apart without reading its status.
    return response({"stopDate": execution.stop_date or datetime.datetime.now(datetime.UTC)})


def _sort_date(execution: Any) -> datetime.datetime:
    """ListExecutions' order: a RUNNING execution by its start date, a closed one by its stop date."""
    return execution.stop_date if execution.status != "RUNNING" and execution.stop_date is not None else execution.start_date


def _listed_yet(execution: Any, now: datetime.datetime) -> bool:
    """ListExecutions is eventually consistent: an execution shows up LIST_CONSISTENCY_S after it started."""
    started = execution.start_date + datetime.timedelta(seconds=getattr(execution, "waited_before_start", 0.0))
    return (now - started).total_seconds() >= LIST_CONSISTENCY_S


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
    status = params.get("statusFilter")
    now = active().clock.utc_now()
    settled = not _counted()  # the simulator sees everything at once; the stack's functions see what AWS would
    ordered = sorted(
        (
            e
            for e in list(machine.executions)
            if e.exec_status is not None and (not status or e.status == status) and (settled or _listed_yet(e, now))
        ),
        key=lambda e: (_sort_date(e), e.execution_arn),
        reverse=True,
    )
    if params.get("nextToken"):
        after_date, after_arn = json.loads(base64.urlsafe_b64decode(str(params["nextToken"])))
        position = (datetime.datetime.fromisoformat(after_date), after_arn)
        ordered = [e for e in ordered if (_sort_date(e), e.execution_arn) < position]
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
        body["nextToken"] = base64.urlsafe_b64encode(json.dumps([_sort_date(last).isoformat(), last.execution_arn]).encode()).decode()
    return response(body)


def _stamp_start_on_account_clock() -> None:
    """Every execution remembers the simulated time that had passed when it started (its start date is real time; the
    account's clock runs ahead by the simulated waits), so ListExecutions can tell how long ago it started."""
    from moto.stepfunctions.parser.backend.execution import Execution

    original = Execution.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            account = active()
        except RuntimeError:  # moto used on its own
            return
        self.waited_before_start = (account.clock.utc_now() - datetime.datetime.now(datetime.UTC)).total_seconds()

    Execution.__init__ = init  # type: ignore[method-assign]


def patch_moto() -> None:
    _stamp_start_on_account_clock()


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


def close_dormant_execution(execution_arn: str, status: str, stopped_at: datetime.datetime) -> None:
    """Scenario set-up: a dormant execution ends with `status` (SUCCEEDED or FAILED) at `stopped_at`."""
    from moto.stepfunctions.parser.api import ExecutionStatus

    execution = _execution(execution_arn)
    if execution is None:
        raise RuntimeError(f"no execution {execution_arn}")
    execution.exec_status = ExecutionStatus(status)
    execution.stop_date = stopped_at


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


IDLE = _Idleness()


def _parser_executions() -> list[Any]:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    account = active()
    backend = stepfunctions_parser_backends[account.account_id][account.region]
    return [execution for machine in backend.state_machines for execution in list(machine.executions)]


def busy_executions() -> list[str]:
    """Running executions that are doing work (not waiting in a Wait state or for a task token)."""
    return IDLE.busy(except_execution="")


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
    if params.get("includeExecutionData") is False:
        events = [_without_data(event) for event in events]
    if params.get("reverseOrder"):
        events.reverse()
    start = int(params.get("nextToken") or 0)
    size = int(params.get("maxResults") or 1000)
    page: dict[str, Any] = {"events": events[start : start + size]}
    if start + size < len(events):
        page["nextToken"] = str(start + size)
    return response(page)


def _describe_execution(params: dict[str, Any]) -> Any:
    if params.get("includedData") != "METADATA_ONLY":
        return None
    execution = _parser_execution(str(params.get("executionArn", "")))
    if execution is None:
        return None  # moto answers ExecutionDoesNotExist / InvalidArn
    described = {k: v for k, v in execution.to_describe_output().items() if k not in ("input", "output", "inputDetails", "outputDetails")}
    return response({k: _millis(getattr(v, "value", v)) for k, v in described.items() if v is not None})


def _millis(value: Any) -> Any:
    """Dates as the API gives them: to the millisecond."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000) if isinstance(value, datetime.datetime) else value


EXECUTION_DATA = ("input", "inputDetails", "output", "outputDetails", "parameters")


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    """A history event as GetExecutionHistory answers it with includeExecutionData false: metadata only."""
    return {
        key: {k: v for k, v in value.items() if k not in EXECUTION_DATA}
        if key.endswith("EventDetails") and isinstance(value, dict)
        else value
        for key, value in event.items()
    }


def _abort_live_execution(execution: Any, error: Any, cause: Any, stopped_at: Any) -> None:
    """An execution with an executor thread (one waiting for a task token, say): abort it, release what it waits
    for, and keep the error and cause the caller gave."""
    execution.stop(stop_date=stopped_at, error=error, cause=cause)
    env = execution.exec_worker.env
    IDLE.abandoned.update(env.callback_pool_manager._pool)
    deadline = time.monotonic() + STOP_DEADLINE_S
    while _status(execution) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.01)
    execution.error, execution.cause = error, cause


# The calls this module answers instead of moto.
ANSWERS: dict[str, Handler] = {
    "states:GetExecutionHistory": _get_execution_history,
    "states:DescribeExecution": _describe_execution,
    "states:StopExecution": _stop_execution,
    "states:ListExecutions": _list_executions,
}
HANDLERS: dict[str, Handler] = {api: _within_quota(api, ANSWERS.get(api)) for api in SFN_QUOTAS}
