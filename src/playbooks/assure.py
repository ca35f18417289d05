"""`playbooks assure`: can this be let loose in production? Evidence from runs in the local account.

For every playbook: every scenario once (baseline); every scenario again with small and empty pages from every
paginated API (same outcome and changes); a transient fault on every Task state's call (retried: same
outcome); a persistent fault on each Task state in turn (outcome `failed`, reported, lock released, nothing applied
left unreported); a persistent denial of each call whose error the ASL tells apart by its Cause (asked once, then
handled as the state's Catch says); least privilege (actions each role really calls vs what the template grants); secrets in logs,
e-mails and outputs; two triggers at once; a stale lock; bad input; state and transition coverage of the ASL.
Writes docs/assurance.md. Runs fan out over a process pool (one local account per run).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from . import badinput, project, scenario, simulate, validate
from .local.account import FAKE_ENV, TERMINAL, LocalAccount
from .local.recorder import Fault

REPORT = project.ROOT / "docs" / "assurance.md"
COVERAGE_TARGET = 0.9
# Transient errors AWS returns under load, per IAM prefix of the call, as (error code, HTTP status).
TRANSIENT = {
    "lambda": ("TooManyRequestsException", 429),
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "servicequotas": ("TooManyRequestsException", 400),
}
DEFAULT_TRANSIENT = ("ThrottlingException", 400)
# A denial as each service answers it (IAM, CloudWatch: AccessDenied, 403; JSON services: AccessDeniedException, 400);
# S3's is a 403 without a modelled code (a denied HEAD has no body), which Step Functions reports as S3.S3Exception.
DENIAL_ERROR = {"iam": ("AccessDenied", 403), "cloudwatch": ("AccessDenied", 403), "s3": ("Forbidden", 403)}
DEFAULT_DENIAL_ERROR = ("AccessDeniedException", 400)
# Grants that no call in the account exercises because the service itself uses them, with the reason.
SERVICE_SIDE = {
    "logs:CreateLogDelivery": "Step Functions configures its vended log delivery with the role",
    "logs:GetLogDelivery": "Step Functions configures its vended log delivery with the role",
    "logs:UpdateLogDelivery": "Step Functions configures its vended log delivery with the role",
    "logs:DeleteLogDelivery": "Step Functions configures its vended log delivery with the role",
    "logs:ListLogDeliveries": "Step Functions configures its vended log delivery with the role",
    "logs:PutResourcePolicy": "Step Functions configures its vended log delivery with the role",
    "logs:DescribeResourcePolicies": "Step Functions configures its vended log delivery with the role",
    "logs:DescribeLogGroups": "Step Functions configures its vended log delivery with the role",
    "xray:PutTraceSegments": "tracing: the Lambda/Step Functions service sends the segments",
    "xray:PutTelemetryRecords": "tracing: the Lambda/Step Functions service sends the telemetry",
    "xray:GetSamplingRules": "tracing: the Lambda/Step Functions service reads sampling rules",
    "xray:GetSamplingTargets": "tracing: the Lambda/Step Functions service reads sampling targets",
    "logs:CreateLogGroup": "the Lambda service writes the function's own logs",
    "logs:CreateLogStream": "the Lambda service writes the function's own logs",
    "logs:PutLogEvents": "the Lambda service writes the function's own logs",
}

# Why a granted resource is a pattern rather than the ARNs the playbook touches (regex on the pattern, reason). A
# pattern that matches none of these fails `make test`.
WILDCARD_RESOURCES = [
    (r":states:[^:]+:[^:]+:execution:[^:*]+:\*$", "execution names are chosen when each execution starts"),
    (r":lambda:[^:]+:[^:]+:function:[^:*]+\*$", "SAM's LambdaInvokePolicy: the function, its versions and aliases (<name>*)"),
    (r":logs:[^:]+:[^:]+:log-group:[^*]+:\*$", "CloudWatch Logs authorizes a log group's actions as log-group:<name>:*"),
    (r":logs:[^:]+:[^:]+:log-group:\*$", "DescribeLogGroups is authorized on the account's log groups as a whole"),
    (r"^arn:[^:]+:s3:::[^/*]+/\*$", "object keys are the pipeline's data, not known when the stack is deployed"),
    (r":iam::[^:]+:role/\*/[^*/]+$", "the pipeline's role may have a path"),
    (r":iam::(aws|\d+):policy/\*$", "the pipeline role's attached policies are found when the playbook runs"),
    (
        r":kms:[^:]+:[^:]+:key/\*$",
        "the key's id is not known when the stack is deployed; the kms:ResourceAliases condition keeps it to the pipeline's key",
    ),
]

# Actions granted on `Resource: "*"` because they have no resource-level permission, with the reason. A grant on "*"
# for anything else fails `make test`.
NO_RESOURCE_LEVEL = {
    "cloudwatch:GetMetricStatistics": "CloudWatch metric reads have no resource-level permission",
    "cloudwatch:PutMetricData": "no resource-level permission; the cloudwatch:namespace condition keeps it to ETL/Playbooks",
    "logs:GetQueryResults": "reads a Logs Insights query by its id; no resource-level permission",
    "lambda:GetAccountSettings": "an account-wide read; no resource-level permission",
    "ce:GetCostAndUsage": "Cost Explorer reads the whole account's bill; no resource-level permission",
    "events:TestEventPattern": "evaluates a pattern against an event, touching no resource",
    "cloudtrail:LookupEvents": "reads the account's management events; no resource-level permission",
    "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota": "lists the account's requests for one quota; no resource-level permission",
    "states:SendTaskSuccess": "the request carries only a task token, which names no resource to scope it to",
    "states:SendTaskFailure": "the request carries only a task token, which names no resource to scope it to",
} | {
    action: f'{reason}; AWS documents these with Resource "*" (no resource-level permission)'
    for action, reason in SERVICE_SIDE.items()
    if action.startswith("logs:") and action not in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
}


@dataclass
class Run:
    playbook: str
    scenario: str
    kind: str  # baseline | pagination | transient | persistent | denial | large-payload
    state: str | None
    status: str
    outcome: str
    mutations: list[str]
    edges: list[tuple[str, str]]
    states: list[str]
    calls: list[tuple[str, str, str | None]]  # (principal, iam action, error)
    texts: list[str]  # every log line, e-mail and execution output
    secrets: list[str]  # task tokens and approval ids this run created
    lock_released: bool
    emails: list[str]
    deployed: list[str]
    expect_failures: list[str] = field(default_factory=list)
    error: str | None = None  # the first execution's error and cause, when it failed
    cause: str | None = None
    faults: int = 0  # faults injected (errors answered to the playbook's calls)
    unfired: list[str] = field(default_factory=list)  # injected faults no call ever met: a hole in the matrix
    started: list[str] = field(default_factory=list)  # names of the executions the stack started in the run
    problems: list[str] = field(default_factory=list)
    touched: list[tuple[str, str, str]] = field(default_factory=list)  # (principal, IAM action, resource) authorized
    grants: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # role's inline statements as deployed
    unreported: list[str] = field(default_factory=list)  # executions that took their lock and sent no report
    small_pages: bool = False  # the account answered every paginated call with an empty first page, then one item a page


def task_call(name: str, state: dict[str, Any], machine: str) -> Fault | None:
    """The fault that hits the one call Task state `name` makes (None for states that make no AWS call of their own).
    It is aimed at the state, not only at its API or function: several states may call the same one (a brake check
    before the approval and before the change), and a fault on the first must not stand in for the others."""
    resource = str(state.get("Resource", ""))
    parameters = state.get("Parameters") or {}
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        # deployed names are "<stack>-<LogicalId>-<suffix>": the logical id picks out this state's function
        logical = validate.function_of(machine, str(parameters.get("FunctionName", "")))
        return Fault(api="lambda:Invoke", error="", principal=machine, state=name, match={"FunctionName": f"-{logical}-"})
    if resource.startswith(validate.SDK_PREFIX):
        service, action = resource.removeprefix(validate.SDK_PREFIX).split(":")[:2]
        api = f"{validate.IAM_PREFIX.get(service, service)}:{action[0].upper()}{action[1:]}"
        return Fault(api=api, error="", principal=machine, state=name)
    if resource.startswith("arn:aws:states:::dynamodb:"):
        action = resource.rsplit(":", 1)[-1]
        return Fault(api=f"dynamodb:{action[0].upper()}{action[1:]}", error="", principal=machine, state=name)
    return None


def _with_error(fault: Fault, times: int) -> Fault:
    code, status = TRANSIENT.get(fault.api.split(":")[0], DEFAULT_TRANSIENT)
    return Fault(
        api=fault.api,
        error=code,
        status=status,
        times=times,
        principal=fault.principal,
        state=fault.state,
        match=dict(fault.match),
        message="Injected by the fault matrix",
    )


UNDO = "undo"


def undo_scenarios() -> list[str]:
    """ "<playbook>/<scenario>" of every scenario that runs the undo after its playbook: undo's scenarios."""
    return [f"{p}/{s.name}" for p in project.playbooks() for s in scenario.scenarios(p) if "undo" in s.data]


def _execute(job: tuple[str, str, str, str | None, list[Fault]]) -> Run:
    """One scenario run; for undo (scenario "<playbook>/<name>") the run judged is the undo's, after its playbook's."""
    playbook_id, scenario_name, kind, state_name, faults = job
    kind, paged_faults, _ = kind.partition(SMALL_PAGES)
    small_pages = kind == "pagination" or bool(paged_faults)
    warnings.filterwarnings("ignore")
    undoing = playbook_id == UNDO
    owner, name = scenario_name.split("/", 1) if undoing else (playbook_id, scenario_name)
    loaded = scenario.load(owner, name)
    if kind == LARGE_PAYLOAD:
        loaded = with_large_inputs(loaded)
    captured: dict[str, Any] = {}

    def inspect(account: LocalAccount, result: simulate.Result) -> None:
        from .local.recorder import RECORDER

        captured["calls"] = [(c.principal, c.iam_action, c.error) for c in RECORDER.calls]
        # executions the stack started (a playbook's retry), not the world's or the simulator's: those keep their names
        stack = set(account.state_machines) | {f.logical_id for f in account.functions.values()}
        captured["started"] = sorted(
            {
                c.params["name"]
                for c in RECORDER.calls
                if c.iam_action == "states:StartExecution" and c.error is None and c.params.get("name") and c.principal in stack
            }
        )
        captured["touched"] = sorted({(c.principal, action, arn) for c in RECORDER.calls for action, arn in c.authorized})
        captured["grants"] = deployed_grants(account)
        captured["logs"] = list(account.logs.lines)
        dynamodb = account.client("dynamodb")
        approvals = dynamodb.scan(TableName=account.resources["ApprovalsTable"])["Items"]
        captured["secrets"] = [i["taskToken"]["S"] for i in approvals if "taskToken" in i] + [
            i["id"]["S"] for i in approvals if i.get("kind", {}).get("S") == "approval"
        ]
        captured["locks"] = dynamodb.scan(TableName=account.resources["LocksTable"])["Items"]
        outputs = [account.describe(arn).get("output", "") for arn in result.executions]
        captured["outputs"] = [o for o in outputs if o]
        captured["deployed"] = sorted(account.resources)
        captured["history"] = [
            e["stateEnteredEventDetails"]["name"]
            for arn in (result.executions[-1:] if undoing else result.executions[:1])
            for e in account.history(arn)
            if "stateEnteredEventDetails" in e
        ]
        captured["unreported"] = [arn for arn in result.executions if not reported(account, arn)]

    result = simulate.run(loaded, extra_faults=faults, inspect=inspect, small_pages=small_pages)
    names = captured["history"]
    judged: dict[str, Any] = result.undo if undoing and result.undo else {}
    emails = [e["subject"] + "\n" + e["body"] for e in judged.get("emails", result.emails)]
    return Run(
        playbook=playbook_id,
        scenario=scenario_name,
        kind=kind,
        state=state_name,
        status=judged.get("status", result.status),
        outcome=judged.get("outcome", result.outcome),
        mutations=judged.get("mutations", result.mutations),
        edges=list(itertools.pairwise(names)),
        states=names,
        calls=captured["calls"],
        texts=captured["logs"] + emails + captured["outputs"],
        secrets=captured["secrets"],
        # only this run's own lock counts: a scenario may hold another run's lock on purpose
        lock_released=not any(item.get("execution", {}).get("S") in result.executions for item in captured["locks"]),
        emails=emails,
        deployed=captured["deployed"],
        expect_failures=result.expect_failures if kind == "baseline" else [],
        error=result.error,
        cause=result.cause,
        faults=sum(f.fired for f in faults),
        unfired=[
            f"{f.api} {f.match or ''} in {f.state!r}" if f.state else f"{f.api} {f.match or ''}".strip() for f in faults if not f.fired
        ],
        small_pages=small_pages,
        started=captured["started"],
        touched=captured["touched"],
        grants=captured["grants"],
        unreported=captured["unreported"],
    )


LOCK_STATE, LOCK_HELD_STATE, REPORT_STATE, RELEASE_STATE = (
    "Take the playbook lock",
    "Another run holds the lock",
    "Send the report",
    "Release the playbook lock",
)


def reported(account: LocalAccount, execution: str) -> bool:
    """Whether an execution that took its lock sent its report (one that never took it, refused input or found the
    lock held, has nothing to report). An execution that died without reaching the report (States.DataLimitExceeded,
    which no catcher takes) or whose report failed did not."""
    description = account.describe(execution)
    entered = [e["stateEnteredEventDetails"]["name"] for e in account.history(execution) if "stateEnteredEventDetails" in e]
    if LOCK_STATE not in entered or LOCK_HELD_STATE in entered:
        return True
    return REPORT_STATE in entered and description.get("error") != "ReportFailed"


def ended_cleanly(run: Run) -> list[str]:
    """Every run of every pass ends with its report sent and its lock released, except where the fault injected is
    on the report or the release itself (the lock then expires on its own)."""
    problems = []
    if not run.lock_released and not (run.kind == "persistent" and run.state == RELEASE_STATE):
        problems.append("ended holding its lock")
    if not (run.kind == "persistent" and run.state == REPORT_STATE):
        problems += [f"{execution.rsplit(':', 1)[-1]} ended without a report" for execution in run.unreported]
    return problems


LARGE_PAYLOAD = "large-payload"
LARGE_INPUT_KB = 200


def with_large_inputs(loaded: scenario.Scenario) -> scenario.Scenario:
    """The scenario with the pipeline's executions carrying ~200 KB inputs (within Step Functions' 256 KiB quota, as a
    workflow that passes its data between states may)."""
    data = json.loads(json.dumps(loaded.data))
    world = data.get("world", {})
    for execution in world.get("executions", []) + world.get("failedExecutions", []):
        execution["inputPaddingKb"] = LARGE_INPUT_KB
    return scenario.Scenario(loaded.playbook, loaded.name, loaded.path, data)


def large_payload_jobs(jobs: list[tuple[str, str, str, str | None, list[Fault]]]) -> list[tuple[str, str, str, str | None, list[Fault]]]:
    """Every scenario (undo runs included) whose world has pipeline executions a playbook reads, again with large inputs."""
    chosen: list[tuple[str, str, str, str | None, list[Fault]]] = []
    for playbook_id, name, *_ in jobs:
        owner, own_name = name.split("/", 1) if playbook_id == UNDO else (playbook_id, name)
        world = scenario.load(owner, own_name).data.get("world", {})
        if world.get("executions") or world.get("failedExecutions"):
            chosen.append((playbook_id, name, LARGE_PAYLOAD, None, []))
    return chosen


def _timeless(mutations: list[str]) -> list[str]:
    """Changes with the unix times in names (retry-<seconds>-...) masked: a run a few seconds later names them anew."""
    return sorted(re.sub(r"\b\d{10}\b", "<time>", m) for m in mutations)


# A fault job's kind with this suffix runs with small and empty pages: the states that read a next page run only then.
SMALL_PAGES = " with small pages"


def plan_jobs(
    runs: list[Run],
    aimed_before: AbstractSet[tuple[str, str]] = frozenset(),
    kind_suffix: str = "",
) -> list[tuple[str, str, str, str | None, list[Fault]]]:
    """The fault matrix over the Task states `runs` entered, except those (playbook, state) in `aimed_before`: each
    run again with every such call failing once (transient), and each call failing always (persistent; a denial too
    where the ASL tells denials from errors that may pass)."""
    jobs: list[tuple[str, str, str, str | None, list[Fault]]] = []
    for playbook in project.state_machines().values():
        definition = playbook.definition
        tasks: dict[str, Fault] = {}
        for name, state in validate.states_of(definition):
            fault = task_call(name, state, playbook.logical_id) if state.get("Type") == "Task" else None
            if fault is not None:
                tasks[name] = fault
        mine = [r for r in runs if r.playbook == playbook.id and r.status in ("SUCCEEDED", "FAILED")]
        chosen: dict[str, str] = {}
        for run in mine:
            own = scenario_faults(playbook.id, run.scenario)
            aimed = [
                name
                for name in dict.fromkeys(run.states)
                if name in tasks and (playbook.id, name) not in aimed_before and not answered_by(own, tasks[name])
            ]
            for name in aimed:
                chosen.setdefault(name, run.scenario)
            if aimed:  # a run with nothing to fault would only repeat the run it was planned from
                jobs.append((playbook.id, run.scenario, "transient" + kind_suffix, None, [_with_error(tasks[name], 1) for name in aimed]))
        for name, scenario_name in chosen.items():
            # the error also meets the state's "(retry)" copy, where the ASL runs a call whose error may pass again
            aimed_at = [tasks[n] for n in (name, f"{name}{RETRY_COPY}") if n in tasks]
            jobs.append((playbook.id, scenario_name, "persistent" + kind_suffix, name, [_with_error(fault, 1000) for fault in aimed_at]))
        jobs += [
            (p, s, kind + kind_suffix, state, faults)
            for p, s, kind, state, faults in denial_jobs(playbook.id, dict(validate.states_of(definition)), tasks, chosen)
        ]
    return jobs


def entered_states(runs: list[Run]) -> set[tuple[str, str]]:
    """(playbook, state) of every state the runs entered (plan_jobs skips the states that are not Tasks)."""
    return {(r.playbook, name) for r in runs for name in r.states}


RETRY_COPY, RETRY_CHOICE, KEEP_THE_ERROR = " (retry)", ": retry?", ": keep the error"
DENIAL = "denial"


def denial_jobs(
    playbook_id: str, states: dict[str, Any], tasks: dict[str, Fault], chosen: dict[str, str]
) -> list[tuple[str, str, str, str | None, list[Fault]]]:
    """A persistent denial of each call whose base-class error the ASL sends to a "<state>: retry?" Choice (the
    services whose model names no denial): it must take the denial branch at once, not the "(retry)" copy."""
    jobs: list[tuple[str, str, str, str | None, list[Fault]]] = []
    for name, scenario_name in chosen.items():
        if f"{name}{RETRY_CHOICE}" not in states:
            continue
        fault = tasks[name]
        code, status = DENIAL_ERROR.get(fault.api.split(":")[0], DEFAULT_DENIAL_ERROR)
        message = f"User: {fault.principal} is not authorized to perform: {fault.api} because no identity-based policy allows it"
        denied = Fault(api=fault.api, error=code, status=status, times=1000, principal=fault.principal, state=name, message=message)
        jobs.append((playbook_id, scenario_name, DENIAL, name, [denied]))
    return jobs


def scenario_faults(playbook_id: str, scenario_name: str) -> list[dict[str, Any]]:
    """The faults a scenario injects itself (an undo run's scenario is named "<playbook>/<scenario>")."""
    owner, _, name = scenario_name.rpartition("/")
    return list(scenario.load(owner or playbook_id, name).data.get("faults", []))


def answered_by(own: list[dict[str, Any]], fault: Fault) -> bool:
    """True when the scenario's own faults already answer the state's call: a gate fault there would never meet it."""
    return any(f["api"] == fault.api and f.get("state") in (None, fault.state) for f in own)


STARTED_IN_THE_RUN = "<an execution the run started>"


def comparable(run: Run) -> tuple[str, list[str]]:
    """The run's outcome and changes, in an order and with names that do not depend on when it ran: an execution the
    run started (execution-stuck's retry) is named from the clock, so two runs of one scenario start it under different
    names; a change to it counts as a change to "an execution the run started"."""
    started = set(run.started)

    def named(mutation: str) -> str:
        head, _, name = mutation.rpartition(":")
        return f"{head}:{STARTED_IN_THE_RUN}" if ":execution:" in head and name in started else mutation

    return run.outcome, sorted(named(m) for m in run.mutations)


def judge(runs: list[Run]) -> None:
    baseline = {(r.playbook, r.scenario): r for r in runs if r.kind == "baseline"}
    for run in runs:
        clean = baseline[(run.playbook, run.scenario)]
        if run.kind == "baseline":
            why = f" ({run.error}: {(run.cause or '')[:300]})" if run.error else ""
            run.problems.extend(f"expectation failed: {failure}{why}" for failure in run.expect_failures)
        run.problems.extend(f"the fault on {api} never met a call" for api in run.unfired)
        run.problems.extend(ended_cleanly(run))
        # several executions of one scenario may interleave: compare what changed, not the order across them
        if run.kind == "transient" and comparable(run) != comparable(clean):
            run.problems.append(
                f"transient faults changed the result: {run.outcome} {run.mutations} instead of {clean.outcome} {clean.mutations}"
            )
        if run.kind == "pagination" and comparable(run) != comparable(clean):
            run.problems.append(
                f"small and empty pages changed the result: {run.outcome} {run.mutations} instead of {clean.outcome} {clean.mutations}"
            )
        if run.kind == LARGE_PAYLOAD and (run.outcome, _timeless(run.mutations)) != (clean.outcome, _timeless(clean.mutations)):
            why = f" ({run.error}: {(run.cause or '')[:200]})" if run.error else ""
            run.problems.append(
                f"large inputs changed the result: {run.outcome} {run.mutations} instead of {clean.outcome} {clean.mutations}{why}"
            )
        # each entry of the state (a Map runs it once per item) asks once: a denial is the answer, not an error that may pass
        if run.kind == DENIAL and run.faults != run.states.count(run.state or ""):
            run.problems.append(f"the denial was asked {run.faults} times in {run.states.count(run.state or '')} entries of the state")
        if run.kind not in ("persistent", DENIAL):
            continue
        reporting = run.state in ("Send the report",)
        if run.state == "Release the playbook lock":
            continue  # the lock then expires on its own (expiresAt); nothing else can fail after the report
        # A state whose own Catch handles the error on purpose (a read the playbook can do without, a change
        # recorded as failed while the others go on) may end in any outcome; every other one must end FAILED.
        if not handles_own_errors(run.playbook, run.state, denied=run.kind == DENIAL) and run.status != "FAILED":
            run.problems.append(f"status {run.status}, expected FAILED")
        if not reporting and not any(not e.startswith("[approval needed]") for e in run.emails):
            run.problems.append("no report was sent")
        if run.mutations and not reporting and not any("Applied:" in e for e in run.emails if not e.startswith("[approval needed]")):
            run.problems.append(f"applied {run.mutations} before failing but the report does not say so")


FAILURE_PATHS = {"Playbook failed", "Undo failed"}


def handles_own_errors(playbook_id: str, state_name: str | None, denied: bool = False) -> bool:
    """True when the state's catch-all (for a denial: its "keep the error" branch) leads somewhere other than the
    playbook's failure path."""
    states = dict(validate.states_of(project.playbook(playbook_id).definition))
    if denied:
        return states[f"{state_name}{KEEP_THE_ERROR}"]["Next"] not in FAILURE_PATHS
    catch_all = [c["Next"] for c in states.get(state_name or "", {}).get("Catch", []) if "States.ALL" in c["ErrorEquals"]]
    return bool(catch_all) and catch_all[0] not in FAILURE_PATHS


def deployed_grants(account: LocalAccount) -> dict[str, list[dict[str, Any]]]:
    """Each stack principal's inline statements as deployed (the template's grants, intrinsics resolved)."""
    from .local.aws.authorization import role_statements

    roles = {f.logical_id: f.role_arn for f in account.functions.values()}
    roles |= {logical_id: account.role_of_state_machine(logical_id) for logical_id in account.state_machines}
    return {logical_id: role_statements(account, arn, managed=False) for logical_id, arn in roles.items()}


def wildcard_reason(resource: str, conditioned: bool) -> str | None:
    """Why a grant's resource is a pattern, or None when nothing explains it (a key pattern needs its condition)."""
    for pattern, reason in WILDCARD_RESOURCES:
        if re.search(pattern, resource) and (conditioned or ":kms:" not in resource):
            return reason
    return None


def least_privilege(runs: list[Run]) -> dict[str, dict[str, Any]]:
    """Per role: actions called but not granted (AccessDenied on AWS), actions granted but never called, and grants
    broader than the resources really touched: resources no call touched (reported) and patterns (each needs a reason)."""
    deployed = {logical_id for run in runs for logical_id in run.deployed}
    called: dict[str, set[str]] = defaultdict(set)
    touched: dict[tuple[str, str], set[str]] = defaultdict(set)
    grants: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for principal, action, _ in run.calls:
            called[principal].add(action)
        for principal, action, resource in run.touched:
            called[principal].add(action)
            touched[(principal, action)].add(resource)
        for logical_id, statements in run.grants.items():
            grants.setdefault(logical_id, statements)
    roles: dict[str, dict[str, Any]] = {}
    for logical_id, statements in sorted(grants.items()):
        if logical_id not in deployed:
            continue
        granted: dict[str, list[str]] = defaultdict(list)
        conditions: dict[tuple[str, str], bool] = {}
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                granted[action] += resources
                for resource in resources:
                    conditions[(action, resource)] = "Condition" in statement
        used = called.get(logical_id, set())
        untouched, patterns = [], []
        for action, resources in sorted(granted.items()):
            if action not in used:
                continue
            seen = touched.get((logical_id, action), set())
            for resource in sorted(set(resources)):
                if resource != "*" and not any(fnmatch.fnmatchcase(arn, resource) for arn in seen):
                    untouched.append(f"{action} on {resource}")
                if "*" in resource and resource != "*":
                    reason = wildcard_reason(resource, conditions[(action, resource)])
                    patterns.append({"action": action, "resource": resource, "reason": reason, "touched": sorted(seen)})
        roles[logical_id] = {
            "called": sorted(used),
            "missing": sorted(a for a in used if a not in granted),
            "excess": sorted(a for a in granted if a not in used and a not in SERVICE_SIDE),
            "service_side": sorted(a for a in granted if a not in used and a in SERVICE_SIDE),
            "star": sorted(a for a, r in granted.items() if "*" in r),
            "wildcards": sorted(a for a in granted if "*" in a),
            "untouched": untouched,
            "patterns": patterns,
        }
    return roles


def secrets(runs: list[Run]) -> list[str]:
    # ours and the ones moto's mock puts in the environment
    credentials = [value for key, value in FAKE_ENV.items() if "KEY" in key or "TOKEN" in key] + ["FOOBARKEY", "FOOBARSECRET"]
    found = []
    for run in runs:
        needles = [*run.secrets, *credentials]
        for text in run.texts:
            for needle in needles:
                if needle and needle in text:
                    found.append(f"{run.playbook}/{run.scenario} ({run.kind}): {needle[:6]}... in {text[:60]!r}")
    return found


def coverage(runs: list[Run]) -> dict[str, dict[str, Any]]:
    report = {}
    for playbook in project.state_machines().values():
        states = dict(validate.states_of(playbook.definition))
        edges = {(name, following) for name, state in states.items() for following in validate.successors(state)}
        mine = [r for r in runs if r.playbook == playbook.id]
        seen_states = {s for r in mine for s in r.states}
        seen_edges = {e for r in mine for e in r.edges} & edges
        report[playbook.id] = {
            "states": (len(seen_states & set(states)), len(states)),
            "transitions": (len(seen_edges), len(edges)),
            "untested_states": sorted(set(states) - seen_states),
            "untested_transitions": sorted(f"{a} -> {b}" for a, b in edges - seen_edges),
        }
    return report


# Two triggers for the same resource at once: one main scenario per playbook, its trigger fired twice.
CONCURRENCY_SCENARIO = {
    "lambda-throttling": "throttled",
    "execution-stuck": "lambda-timeout",
    "event-loop": "processed-bucket-loop",
    "cost-spike": "everything",
    "access-denied": "missing-s3-put",
}
CONCURRENCY_DEADLINE_S = 120.0


def concurrency_case(playbook_id: str) -> dict[str, Any]:
    """Fire the trigger twice at once; approve whatever asks; return the outcomes (one run must end already-running)."""
    import time
    from datetime import UTC, datetime

    from .local.approval_web import click
    from .local.recorder import RECORDER

    warnings.filterwarnings("ignore")
    loaded = scenario.load(playbook_id, CONCURRENCY_SCENARIO.get(playbook_id) or scenario.scenarios(playbook_id)[0].name)
    with LocalAccount(settings=loaded.settings()) as account:
        scenario.build_world(account, loaded.data.get("world", {}), datetime.now(UTC))
        scenario.install_reactions(account, [dict(r) for r in loaded.data.get("reactions", [])])
        kind, payload = scenario.trigger_payload(account, loaded, False)
        if kind == "event":
            started = account.put_event(payload) + account.put_event(payload)
        elif kind == "input":
            started = [account.start(playbook_id, payload), account.start(playbook_id, payload)]
        else:  # a notification's starter names runs by message id; start the second like the console would
            started = account.publish(
                payload["topic"], "", json.loads((project.ROOT / payload["event"]).read_text())["Records"][0]["Sns"]["Message"]
            )
            started += [account.start(playbook_id, {})]
        handled: set[str] = set()
        end = time.monotonic() + CONCURRENCY_DEADLINE_S
        while not all(account.describe(arn)["status"] in TERMINAL for arn in started):
            for email in simulate.emails(RECORDER.calls):
                for ticket in simulate.LINK.findall(email.body):
                    if ticket not in handled:
                        handled.add(ticket)
                        click(account, ticket, "approve")
            if time.monotonic() > end:
                break
            time.sleep(0.02)
        outcomes = sorted(simulate.outcome_of(account.describe(arn)) for arn in started)
    return {"playbook": playbook_id, "runs": len(started), "outcomes": outcomes}


# The persisting-loop pass: event-loop's main scenario, but once the fixed rule is re-enabled the loop goes on, starting
# this many executions (a fifth from objects in the processed bucket) for the check that the loop stopped to face.
PERSISTING_LOOP_SCENARIO = "processed-bucket-loop"
PERSISTING_LOOP_STARTS = 5000


def persisting_loop_case(playbook_id: str = "event-loop") -> dict[str, Any]:
    """event-loop's verification under a loop that keeps starting thousands of executions after the fix: whatever the
    check concludes, the run must send its report, release its lock and leave the looping rule disabled."""
    warnings.filterwarnings("ignore")
    loaded = scenario.load(playbook_id, PERSISTING_LOOP_SCENARIO)
    data = json.loads(json.dumps(loaded.data))
    machine = data["world"]["workflows"][0]["name"]
    rule = data["world"]["rules"][0]["name"]
    processed = PERSISTING_LOOP_STARTS // 5
    data["reactions"] = [
        *data.get("reactions", []),
        {
            "after": "events:EnableRule",
            "executions": [
                {
                    "stateMachine": machine,
                    "bucket": "raw-data-bucket",
                    "key": "incoming/new-{n}.csv",
                    "count": PERSISTING_LOOP_STARTS - processed,
                },
                {"stateMachine": machine, "bucket": "processed-data-bucket", "key": "incoming/out-{n}.csv", "count": processed},
            ],
        },
    ]
    data.pop("expect", None)
    seen: dict[str, Any] = {}

    def inspect(account: LocalAccount, result: simulate.Result) -> None:
        seen["rule"] = account.client("events").describe_rule(Name=rule)["State"]
        locks = account.client("dynamodb").scan(TableName=account.resources["LocksTable"])["Items"]
        seen["lock_released"] = not any(item.get("execution", {}).get("S") in result.executions for item in locks)

    result = simulate.run(scenario.Scenario(loaded.playbook, "persisting-loop", loaded.path, data), inspect=inspect)
    return {
        "playbook": playbook_id,
        "starts": PERSISTING_LOOP_STARTS,
        "status": result.status,
        "outcome": result.outcome,
        "states": [
            s for s in result.states if s in ("Check that the loop stopped", "Disable the rule again", "Disable the rule after the failure")
        ],
        "reported": any(e["subject"].startswith(f"[{result.outcome}] {playbook_id}") for e in result.emails),
        "lock_released": seen["lock_released"],
        "rule": seen["rule"],
    }


def persisting_loop_failures(case: dict[str, Any] | None) -> list[str]:
    if case is None:
        return ["event-loop: the persisting-loop pass did not run"]
    where = f"{case['playbook']} under a persisting loop ({case['starts']} starts after the fix, ended {case['outcome']})"
    found = [f"{where}: no report was sent"] if not case["reported"] else []
    found += [f"{where}: the run's lock is still held"] if not case["lock_released"] else []
    found += [f"{where}: the looping rule was left {case['rule']}"] if case["rule"] != "DISABLED" else []
    return found


def persisting_loop_section(case: dict[str, Any] | None) -> list[str]:
    lines = ["", "## Persisting loop", ""]
    if case is None:
        return [*lines, "- not run"]
    lines.append(
        f"- {case['playbook']}: after the fix {case['starts']} executions start, a fifth from objects in the processed bucket; "
        f"the run ended {case['outcome']} through {', '.join(case['states'])}: report "
        f"{'sent' if case['reported'] else 'NOT SENT'}, lock {'released' if case['lock_released'] else 'HELD'}, rule {case['rule']}"
    )
    return lines + [f"  - {problem}" for problem in persisting_loop_failures(case)]


# cfn-lint's one ignored check on the SAM-transformed template, with the reason (the Makefile's `scan` says the same).
CFN_LINT_IGNORED = {"W1028": "SAM wraps a conditional function's API paths in Fn::If even inside an API with the same condition"}
CHECKOV = project.ROOT / ".venv-scan" / "bin" / "checkov"


def scanners() -> dict[str, Any]:
    """cfn-lint on the template and on its SAM transform; checkov on both. Findings are listed; skips come from
    .checkov.yaml, where each says why."""
    import subprocess
    import tempfile
    from pathlib import Path

    from cfnlint.api import ManualArgs, lint_file

    from .local.account import translate

    found: dict[str, Any] = {"cfn-lint": {}, "checkov": {}}
    with tempfile.TemporaryDirectory() as scratch:
        transformed = os.path.join(scratch, "transformed.json")
        with open(transformed, "w") as out:
            json.dump(translate({}), out, indent=1)
        targets = {"template.yaml": str(project.ROOT / "template.yaml"), "SAM-transformed template": transformed}
        for label, path in targets.items():
            ignored = list(CFN_LINT_IGNORED) if path == transformed else []
            matches = lint_file(Path(path), ManualArgs(ignore_checks=ignored, regions=["us-east-1"]))
            found["cfn-lint"][label] = [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches]
        for label, path in targets.items():
            if not CHECKOV.exists():
                found["checkov"][label] = {"error": "checkov is not installed: run `make scan` (it builds .venv-scan)"}
                continue
            done = subprocess.run(  # noqa: S603  # our own pinned checkov, fixed arguments
                [str(CHECKOV), "--config-file", str(project.ROOT / ".checkov.yaml"), "-f", path, "-o", "json"],
                capture_output=True,
                text=True,
                check=False,
            )
            report = json.loads(done.stdout or "{}")
            results = report.get("results", {}) if isinstance(report, dict) else {}
            failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results.get("failed_checks", [])]
            if done.returncode not in (0, 1) or not isinstance(report, (dict, list)):
                failed.append(f"checkov did not run (exit {done.returncode}): {done.stderr.strip()[-300:]}")
            found["checkov"][label] = {"failed": failed}
    found["checkov_skips"] = checkov_skips()
    return found


def checkov_skips() -> dict[str, str]:
    """Each check .checkov.yaml skips, with the comment above it that says why (empty when there is none)."""
    skips: dict[str, str] = {}
    comment: list[str] = []
    for line in (project.ROOT / ".checkov.yaml").read_text().splitlines():
        text = line.strip()
        if text.startswith("#"):
            comment.append(text.lstrip("# "))
        elif text.startswith("- CKV"):
            skips[text[2:].split()[0]] = " ".join(comment)
            comment = []
        else:
            comment = []
    return skips


Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _fan_out(pool: ProcessPoolExecutor, work: Callable[[Any], Any], jobs: list[Any], stage: str, progress: Progress) -> list[Any]:
    """Run `work` over `jobs` in the pool; results in the jobs' order, progress as each one ends."""
    return _collect(_submit(pool, work, jobs), stage, progress)


def _submit(pool: ProcessPoolExecutor, work: Callable[[Any], Any], jobs: list[Any]) -> list[Future[Any]]:
    return [pool.submit(work, job) for job in jobs]


def _collect(futures: list[Future[Any]], stage: str, progress: Progress) -> list[Any]:
    progress(stage, 0, len(futures))
    for done, _ in enumerate(as_completed(futures), start=1):
        progress(stage, done, len(futures))
    return [future.result() for future in futures]


def brake_case(job: tuple[str, str]) -> dict[str, Any]:
    """One scenario with the brake engaged before its trigger: nothing may change and nothing may be asked."""
    warnings.filterwarnings("ignore")
    playbook_id, name = job
    loaded = scenario.load(playbook_id, name)
    data = json.loads(json.dumps(loaded.data))
    data.setdefault("world", {})["brake"] = "engaged"
    result = simulate.run(scenario.Scenario(loaded.playbook, loaded.name, loaded.path, data))
    outcomes = [result.outcome] + ([result.undo["outcome"]] if result.undo else [])
    return {"playbook": playbook_id, "scenario": name, "outcomes": outcomes, "mutations": result.mutations, "approvals": result.approvals}


def run_all(workers: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    say = progress or (lambda stage, done, total: None)
    every = [(p.id, s.name) for p in project.playbooks().values() for s in scenario.scenarios(p.id)]
    base_jobs: list[tuple[str, str, str, str | None, list[Fault]]] = [(p, s, "baseline", None, []) for p, s in every]
    base_jobs += [(UNDO, name, "baseline", None, []) for name in undo_scenarios()]
    playbooks = list(project.playbooks())
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        # Only the fault matrix waits for a stage (the baseline runs it is planned from). Everything else is queued at
        # once, the scanners and the long bad-input jobs behind the baseline, so no core idles at the barrier.
        scanning = pool.submit(scanners)
        baseline_runs = _submit(pool, _execute, base_jobs)
        paged_jobs: list[tuple[str, str, str, str | None, list[Fault]]] = [(job[0], job[1], "pagination", None, []) for job in base_jobs]
        paged_runs = _submit(pool, _execute, paged_jobs)
        large_runs = _submit(pool, _execute, large_payload_jobs(base_jobs))
        concurrency_runs = _submit(pool, concurrency_case, playbooks)
        bad_input_runs = _submit(pool, badinput.run, list(project.state_machines()))
        brake_runs = _submit(pool, brake_case, every)
        persisting_loop_run = _submit(pool, persisting_loop_case, ["event-loop"])
        baseline = _collect(baseline_runs, "every scenario", say)
        matrix = _fan_out(pool, _execute, plan_jobs(baseline), "transient and persistent faults", say)
        paged = _collect(paged_runs, "every scenario with small and empty pages", say)
        # the states that read a next page run only with small pages: their faults are planned from those runs
        matrix += _fan_out(
            pool,
            _execute,
            plan_jobs(paged, entered_states(baseline), SMALL_PAGES),
            "faults in the states that read a next page",
            say,
        )
        large = _collect(large_runs, "the pipeline's executions with large inputs", say)
        concurrency = _collect(concurrency_runs, "two triggers at once", say)
        bad_input = _collect(bad_input_runs, "bad input and unrelated alarms", say)
        brake = _collect(brake_runs, "every scenario with the brake engaged", say)
        persisting_loop = _collect(persisting_loop_run, "event-loop under a persisting loop", say)[0]
        scans = _collect([scanning], "scanners", say)[0]
    runs = baseline + paged + matrix + large
    judge(runs)
    return {
        "runs": runs,
        "least_privilege": least_privilege(runs),
        "secrets": secrets(runs),
        "coverage": coverage(runs),
        "concurrency": concurrency,
        "bad_input": bad_input,
        "brake": brake,
        "persisting_loop": persisting_loop,
        "scanners": scans,
    }


def write(results: dict[str, Any]) -> None:
    REPORT.write_text(render(results))


def concurrency_passed(case: dict[str, Any]) -> bool:
    """Two triggers at once: exactly one run goes on and the other ends already-running."""
    others = [o for o in case["outcomes"] if o != "already-running"]
    return case["runs"] == 2 and case["outcomes"].count("already-running") == 1 and len(others) == 1 and others[0] != "failed"


def failures(results: dict[str, Any]) -> list[str]:
    """Everything that makes `make test` fail: problems, privilege gaps, secrets, coverage below the target."""
    found = [f"{r.playbook}/{r.scenario} {r.kind} {r.state or ''}: {p}" for r in results["runs"] for p in r.problems]
    for role, row in results["least_privilege"].items():
        found += [f"{role} calls {a} but is not granted it" for a in row["missing"]]
        found += [f"{role} is granted {a} but never calls it" for a in row["excess"]]
        found += [
            f'{role} is granted {a} on Resource "*" with no reason in NO_RESOURCE_LEVEL' for a in row["star"] if a not in NO_RESOURCE_LEVEL
        ]
        found += [f"{role} is granted the wildcard action {a}" for a in row["wildcards"]]
        found += [
            f"{role} is granted {p['action']} on the pattern {p['resource']} with no reason in WILDCARD_RESOURCES"
            for p in row.get("patterns", [])
            if not p["reason"]
        ]
    found += [f"secret exposed: {s}" for s in results["secrets"]]
    for case in results.get("bad_input", []):
        found += [f"{case['playbook']} bad input: {p}" for p in case["problems"]]
        if not case["tried"]:
            found.append(f"{case['playbook']}: no bad input was tried")
    for case in results.get("brake", []):
        if case["mutations"] or case["approvals"]:
            found.append(
                f"{case['playbook']}/{case['scenario']} with the brake engaged changed {case['mutations']} "
                f"and asked for {case['approvals']} approvals"
            )
    found += persisting_loop_failures(results.get("persisting_loop"))
    stale = {r.playbook: r for r in results["runs"] if r.kind == "baseline" and r.scenario == "stale-lock"}
    found += [f"{p}: no stale-lock scenario (a lock left by a crashed run must expire)" for p in project.playbooks() if p not in stale]
    scans = results.get("scanners", {})
    for target, findings in scans.get("cfn-lint", {}).items():
        found += [f"cfn-lint on {target}: {f}" for f in findings]
    for target, outcome in scans.get("checkov", {}).items():
        found += [f"checkov on {target}: {f}" for f in outcome.get("failed", [])]
        if "error" in outcome:
            found.append(f"checkov on {target}: {outcome['error']}")
    found += [
        f"checkov skips {check} without saying why in .checkov.yaml" for check, why in scans.get("checkov_skips", {}).items() if not why
    ]
    for case in results.get("concurrency", []):
        if not concurrency_passed(case):
            found.append(f"{case['playbook']}: two triggers at once ended {case['outcomes']}, expected one run and one already-running")
    for playbook_id, cover in results["coverage"].items():
        for kind in ("states", "transitions"):
            covered, total = cover[kind]
            if covered / total < COVERAGE_TARGET:
                found.append(f"{playbook_id}: {kind} coverage {covered}/{total} is below {COVERAGE_TARGET:.0%}")
    return found


def _share(covered: int, total: int) -> str:
    return f"{covered}/{total} ({covered / total:.0%})"


def large_payload_lines(runs: list[Run]) -> list[str]:
    """The large-payload pass, per playbook: runs with the baseline's result, reported and unlocked."""
    large = [r for r in runs if r.kind == LARGE_PAYLOAD]
    lines = []
    for playbook_id in dict.fromkeys(r.playbook for r in large):
        mine = [r for r in large if r.playbook == playbook_id]
        lines.append(
            f"- {playbook_id}: {len(mine)} scenarios with ~{LARGE_INPUT_KB} KB pipeline inputs, "
            f"{sum(1 for r in mine if not r.problems)} with the baseline's outcome and changes, reported, lock released"
        )
        lines += [f"  - {r.scenario}: {p}" for r in mine for p in r.problems]
    return lines


def render(results: dict[str, Any]) -> str:
    """docs/assurance.md: only figures that are the same on every run (counts, never timings)."""
    runs: list[Run] = results["runs"]
    bad_input = {case["playbook"]: case for case in results.get("bad_input", [])}
    concurrency = {case["playbook"]: case for case in results.get("concurrency", [])}
    stale = {r.playbook: r for r in runs if r.kind == "baseline" and r.scenario == "stale-lock"}
    lines = [
        "# Assurance",
        "",
        "<!-- generated by `playbooks assure`; `make test` fails when any figure here regresses -->",
        "",
        "Can the playbooks be let loose in production? Evidence gathered in the local account, regenerated by",
        "`playbooks assure` (`make assure`); the same checks run in `make test`, which fails when any of them regresses.",
        "",
        "- **Faults**: every scenario once; then every scenario again with a transient error (throttling, 5xx) on the",
        "  first call of every Task state it visits, which must be retried to the same outcome and changes; then a",
        "  persistent error on each Task state in turn, which must end `failed` with a report, the lock released and",
        "  anything applied before the failure listed with its rollback. The Task states come from the ASL.",
        "- **Pagination**: every scenario again with every paginated API answering an empty first page and then one",
        "  item per page (AWS may answer partially full or empty pages with a next token); the outcome and the changes",
        "  must be the baseline's.",
        "- **Bad input**: every single-field break of each playbook's input schema, started as an execution, must be",
        "  refused at the first state with `InvalidInput` naming the field and change nothing; alarm events of other",
        "  alarms, or of the playbook's alarm going back to OK, must start nothing.",
        "- **Concurrency**: the trigger fired twice at once gives one run and one `already-running`; a lock left by a",
        "  crashed run (the stale-lock scenario) has expired and is taken.",
        "- **Undo**: the `undo` state machine is judged like a playbook: its runs are the undo runs of every scenario",
        "  that undoes its playbook's run (`<playbook>/<scenario>`), with the same fault matrix, bad input and coverage.",
        "- **The brake**: every scenario of every playbook again with the brake engaged before its trigger: none may",
        "  change anything (the undo runs included) or ask for an approval.",
        "- **Persisting loop**: event-loop's main scenario with a loop that goes on after the fix, thousands of starts for",
        "  the check that the loop stopped to face: the run must send its report, release its lock and leave the rule disabled.",
        "- **Large payloads**: every scenario whose pipeline executions a playbook reads, again with those executions",
        f"  carrying ~{LARGE_INPUT_KB} KB inputs (within Step Functions' 256 KiB quota, which is also each playbook state's): the",
        "  outcome and the changes must be the baseline's. A state over the quota fails with States.DataLimitExceeded,",
        "  which States.ALL does not catch.",
        "- **Every run of every pass** must end with its report sent and its lock released (unless the fault injected is",
        "  on the report or the release itself).",
        "",
        "## Per playbook",
        "",
        "| playbook | scenarios | same result with small pages | transient faults survived | persistent faults handled | "
        "bad inputs refused | unrelated alarm events ignored | concurrency cases passed | states covered | transitions covered |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for playbook_id, cover in results["coverage"].items():
        mine = [r for r in runs if r.playbook == playbook_id]
        transient = [r for r in mine if r.kind == "transient"]
        persistent = [r for r in mine if r.kind in ("persistent", DENIAL)]
        paged = [r for r in mine if r.kind == "pagination"]
        bad = bad_input.get(playbook_id, {"tried": 0, "refused": 0, "unrelated_events": 0, "unrelated_ignored": 0})
        cases = [concurrency_passed(concurrency[playbook_id])] if playbook_id in concurrency else []
        cases += [not stale[playbook_id].problems] if playbook_id in stale else []
        lines.append(
            f"| {playbook_id} | {sum(1 for r in mine if r.kind == 'baseline')} | "
            f"{sum(1 for r in paged if not r.problems)}/{len(paged)} | "
            f"{sum(r.faults for r in transient if not r.problems)}/{sum(r.faults for r in transient)} in {len(transient)} runs | "
            f"{sum(1 for r in persistent if not r.problems)}/{len(persistent)} states | "
            f"{bad['refused']}/{bad['tried']} | "
            f"{bad['unrelated_ignored']}/{bad['unrelated_events']} | "
            f"{sum(cases)}/{len(cases)} | "
            f"{_share(*cover['states'])} | {_share(*cover['transitions'])} |"
        )
    lines += ["", "## Concurrency", ""]
    for playbook_id in results["coverage"]:
        if playbook_id in concurrency:
            case = concurrency[playbook_id]
            lines.append(f"- {playbook_id}: two triggers at once started {case['runs']} runs: {', '.join(case['outcomes'])}")
        if playbook_id in stale:
            run = stale[playbook_id]
            lines.append(f"- {playbook_id}: a lock left by a crashed run, expired: the new run took it and ended {run.outcome}")
    braked = results.get("brake", [])
    lines += ["", "## The brake", ""]
    if braked:
        changed = [c for c in braked if c["mutations"] or c["approvals"]]
        tally: dict[str, int] = defaultdict(int)
        for case in braked:
            for outcome in case["outcomes"]:
                tally[outcome] += 1
        lines.append(
            f"- {len(braked)} scenarios run with the brake engaged; {len(changed)} changed something or asked for approval. "
            f"Outcomes: {', '.join(f'{o} {n}' for o, n in sorted(tally.items()))}."
        )
        lines += [f"  - {c['playbook']}/{c['scenario']}: changed {c['mutations']}, {c['approvals']} approvals" for c in changed]
    lines += persisting_loop_section(results.get("persisting_loop"))
    lines += ["", "## Large payloads", ""]
    lines += large_payload_lines(runs)
    lines += ["", "## Bad input", ""]
    for playbook_id, bad in bad_input.items():
        lines.append(
            f"- {playbook_id}: {bad['tried']} schema-breaking inputs started, {bad['refused']} refused with `InvalidInput` "
            f"naming the field, none changed anything, at most {bad['most_states']} states entered; "
            f"{bad['unrelated_events']} events of other alarms or other alarm states started nothing"
        )
        lines += [f"  - {problem}" for problem in bad["problems"]]
    lines += ["", "## Untested", ""]
    for playbook_id, cover in results["coverage"].items():
        rest = cover["untested_states"] + cover["untested_transitions"]
        lines.append(f"- {playbook_id}: " + ("; ".join(rest) if rest else "nothing"))
    lines += ["", "## Problems found by the fault matrix", ""]
    problems = [f"- {r.playbook}/{r.scenario} {r.kind} {r.state or ''}: {p}" for r in runs for p in r.problems]
    lines += problems or ["none"]
    lines += [
        "",
        "## Least privilege (calls recorded across all runs vs grants, by action and by resource)",
        "",
        "Each call of a stack role is authorized in the local account on the resources it touches. A granted resource",
        "that no call touched is listed (broader than the scenarios need: a resource they do not exercise, or an",
        "alternative such as a role path); a granted pattern with no reason below fails `make test`.",
        "",
        '| role | actions called | not granted | granted, never called | granted on resources never touched | `Resource: "*"` |',
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for role, row in sorted(results["least_privilege"].items()):
        lines.append(
            f"| {role} | {len(row['called'])} | {', '.join(row['missing']) or '-'} | {', '.join(row['excess']) or '-'} | "
            f"{', '.join(row.get('untouched', [])) or '-'} | {', '.join(row['star']) or '-'} |"
        )
    patterns = sorted(
        {(p["resource"], p["reason"] or "NO REASON GIVEN") for row in results["least_privilege"].values() for p in row.get("patterns", [])}
    )
    stars = sorted({a for row in results["least_privilege"].values() for a in row["star"]})
    wildcards = sorted({a for row in results["least_privilege"].values() for a in row["wildcards"]})
    lines += ["", "Granted resources that are patterns, and why:", ""]
    lines += [f"- `{resource}`: {reason}" for resource, reason in patterns] or ["- none"]
    lines += ["", f"Wildcard actions granted: {', '.join(wildcards) or 'none'}.", "", 'Why each `Resource: "*"` grant is on "*":', ""]
    lines += [f"- `{action}`: {NO_RESOURCE_LEVEL.get(action, 'NO REASON GIVEN')}" for action in stars]
    lines += ["", "Granted for the service's own use (never called by our code):", ""]
    for action, reason in sorted(SERVICE_SIDE.items()):
        lines.append(f"- `{action}`: {reason}")
    scans = results.get("scanners", {})
    lines += ["", "## Scanners", ""]
    for target, findings in scans.get("cfn-lint", {}).items():
        ignored = "" if target == "template.yaml" else f" ({', '.join(f'{k} ignored: {v}' for k, v in CFN_LINT_IGNORED.items())})"
        lines.append(f"- cfn-lint on {target}: {len(findings)} findings{ignored}")
        lines += [f"  - {f}" for f in findings]
    for target, outcome in scans.get("checkov", {}).items():
        lines.append(f"- checkov on {target}: " + (outcome["error"] if "error" in outcome else f"{len(outcome['failed'])} failed checks"))
        lines += [f"  - {f}" for f in outcome.get("failed", [])]
    lines += ["", "Checks checkov skips, with the reason `.checkov.yaml` gives:", ""]
    lines += [f"- {check}: {why or 'NO REASON GIVEN'}" for check, why in scans.get("checkov_skips", {}).items()]
    lines += [
        "",
        "## Secrets",
        "",
        f"Task tokens, approval ids and credentials found in logs, e-mails or outputs: {len(results['secrets'])}",
        "",
    ]
    lines += [f"- {s}" for s in results["secrets"]]
    return "\n".join(lines) + "\n"
