"""An in-memory AWS account (moto) that deploys the project's own `template.yaml` and runs the real ASL.

The template goes through SAM's own translator, moto's CloudFormation creates the stack, and the account then
does what moto's CloudFormation does not (see the `aws` package): it resolves `DefinitionSubstitutions` from the
stack and registers each state machine with moto's ASL executor. Lambda tasks run the real handlers in-process.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import os
import threading
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from moto import mock_aws
from moto.moto_api._internal import mock_random

from .. import prerequisites, project
from . import recorder
from .aws import authorization, emf, patches
from .aws import clock as aws_clock
from .aws import lambda_ as aws_lambda
from .recorder import PRINCIPAL, RECORDER

REGION = "us-east-1"
STACK = "etl-playbooks"
ARTIFACTS = "local-artifacts"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIALOCALACCOUNT0000",
    "AWS_SECRET_ACCESS_KEY": "local-account-fake-secret-000000000000000",
    "AWS_SESSION_TOKEN": "local-account-fake-session-token",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
EXECUTOR_SHUTDOWN_S = 10.0


@dataclass
class Settings:
    concurrency_limit: int = 1000
    # Paginated APIs answer an empty first page, then one item per page (aws.pagination): AWS may page like that.
    small_pages: bool = False
    # After PutRolePolicy/DeleteRolePolicy: when the change governs authorization, and when the simulator shows it.
    iam_propagation_s: float = 60.0
    iam_simulator_delay_s: float = 0.0


@dataclass
class Function:
    logical_id: str
    name: str
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int
    principal: str  # who its calls are recorded as: the logical id, "<stack>/<logical id>" in a second stack
    role_arn: str = ""


@dataclass
class Stack:
    """One deployment of the template (one pipeline's playbooks): what `sam deploy --stack-name` creates."""

    name: str
    parameters: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN


@dataclass
class Invocation:
    """One in-process run of a function's handler: what Lambda would bill (duration at its memory size)."""

    logical_id: str
    seconds: float
    memory_mb: int

    @property
    def gb_seconds(self) -> float:
        billed_ms = max(1, int(self.seconds * 1000 + 0.999))  # Lambda bills whole milliseconds
        return billed_ms / 1000 * self.memory_mb / 1024


@dataclass
class Rule:
    name: str
    pattern: dict[str, Any]
    targets: list[dict[str, Any]]


@dataclass
class FakeContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    # The invocation's clock (real time plus the simulated time it spent), on which its timeout runs.
    now: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._deadline = self.now() + self.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - self.now()) * 1000), 0)

    def timed_out(self) -> bool:
        return self.now() > self._deadline


class LocalAccount:
    """Use as a context manager: `with LocalAccount() as account: account.start(...)`.

    The account deploys the template once as `stack_name`; `deploy_stack` deploys it again (another pipeline's
    playbooks, other parameters) into the same account. `outputs`, `resources` and `state_machines` are the first
    stack's; `stacks` has every stack's.
    """

    def __init__(self, parameters: dict[str, str] | None = None, settings: Settings | None = None, stack_name: str = STACK):
        self.parameters = parameters or {}
        self.stack_name = stack_name
        self.stacks: dict[str, Stack] = {}
        self.settings = settings or Settings()
        self.region = REGION
        self.account_id = "123456789012"
        self.clock = aws_clock.VirtualClock()
        self.quota_requests: list[dict[str, Any]] = []
        self.costs: dict[str, dict[str, float]] = {}  # day -> service -> USD (Cost Explorer)
        self.cloudtrail_events: list[dict[str, Any]] = []  # what cloudtrail:LookupEvents answers (scenario data)
        self.functions: dict[str, Function] = {}  # by physical name
        self.state_machines: dict[str, str] = {}  # logical id -> ARN
        self.resources: dict[str, str] = {}  # logical id -> physical id
        self.outputs: dict[str, str] = {}
        self.rules: list[Rule] = []
        self.schedules: list[Rule] = []
        self._sm_logical: dict[str, str] = {}  # name -> logical id
        self._handler_lock = threading.RLock()
        self._mock: Any = None
        self.logs = LogCapture()
        self.invocations: list[Invocation] = []
        self._env_before: dict[str, str | None] = {}
        # Scripted behaviour of pipeline functions a scenario creates (by name): event -> result.
        self.scripts: dict[str, Callable[[Any], Any]] = {}
        # Pipeline state machines a scenario creates whose calls are authorized like the stack's (name -> role ARN).
        self.pipeline_principals: dict[str, str] = {}

    # -------------------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalAccount:
        # moto's ASL executor logs every failed state with a full dump; the execution history says it better.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        logging.getLogger("moto").setLevel(logging.ERROR)  # e.g. "No Moto CloudFormation support for ..."
        self._env_before = {key: os.environ.get(key) for key in FAKE_ENV}
        os.environ.update(FAKE_ENV)
        recorder.install()
        emf.install()
        RECORDER.reset()
        self._mock = mock_aws(config=MOTO_CONFIG)  # type: ignore[call-overload]
        self._mock.start()
        boto3.DEFAULT_SESSION = _session()
        patches.install(self)
        project.import_function_module("shared.aws").reset_clients()
        RECORDER.enabled = True
        try:
            self.deploy()
            RECORDER.authorize = authorization.Authorizer(self)  # from now on the stack's roles are as strict as AWS
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        RECORDER.enabled = False
        RECORDER.authorize = None
        self.stop_executions()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        patches.uninstall()
        emf.uninstall()
        for key, value in self._env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def client(self, service: str) -> Any:
        """One client per service for the process's life (creating one costs far more than a call); a client holds no
        account state, and every account of the process is the same mocked region with the same fake credentials."""
        if service not in _CLIENTS:
            _CLIENTS[service] = _session().client(service, region_name=self.region)  # type: ignore[call-overload]
        return _CLIENTS[service]

    # -------------------------------------------------------------------------------------- deploy
    def deploy(self) -> None:
        first = self.deploy_stack(self.stack_name, self.parameters)
        self.outputs, self.resources, self.state_machines = first.outputs, first.resources, first.state_machines

    def deploy_stack(self, name: str, parameters: dict[str, str]) -> Stack:
        """Create a stack from the template with these parameters, as `sam deploy --stack-name <name>` does."""
        token = PRINCIPAL.set("deployer")
        try:
            s3 = self.client("s3")
            if not self.stacks:
                s3.create_bucket(Bucket=ARTIFACTS)
                s3.put_object(Bucket=ARTIFACTS, Key="functions.zip", Body=_placeholder_zip())
            translated = translate(parameters)
            # The deploy's prerequisite (prerequisites.py): the pipeline functions have run, so their log groups exist.
            logs = self.client("logs")
            for group in prerequisites.filtered_log_groups(parameters):
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):  # another stack's pipeline
                    logs.create_log_group(logGroupName=group)
            cfn = self.client("cloudformation")
            # The same physical names on every deploy (a real stack keeps its names too): the state machines'
            # definitions are then the same text each time, and each is parsed once per process (aws.asl). The seed
            # is the stack's own: moto keys roles by their random id, so two stacks with one seed overwrote each other.
            mock_random.seed(zlib.crc32(name.encode()))
            cfn.create_stack(
                StackName=name,
                TemplateBody=json.dumps(translated),
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
            stack = Stack(name, dict(parameters))
            described = cfn.describe_stacks(StackName=name)["Stacks"][0]
            stack.outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
                for summary in page["StackResourceSummaries"]:
                    stack.resources[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
            self.stacks[name] = stack
            self._register_functions(translated, stack)
            self._register_state_machines(stack)
            self._register_rules()
            return stack
        finally:
            mock_random.seed()  # ids made while the playbooks run are random again
            PRINCIPAL.reset(token)

    def _principal(self, stack: Stack, logical_id: str) -> str:
        return logical_id if stack.name == self.stack_name else f"{stack.name}/{logical_id}"

    def _register_functions(self, translated: dict[str, Any], stack: Stack) -> None:
        lam = self.client("lambda")
        for logical_id, resource in translated["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function" or logical_id not in stack.resources:
                continue  # not a function, or its condition is false in this deployment
            name = stack.resources[logical_id]
            config = lam.get_function_configuration(FunctionName=name)
            self.functions[name] = Function(
                logical_id=logical_id,
                name=name,
                handler=resource["Properties"]["Handler"],
                environment={k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()},
                timeout=int(config.get("Timeout", 3)),
                memory=int(config.get("MemorySize", 128)),
                principal=self._principal(stack, logical_id),
                role_arn=str(config.get("Role", "")),
            )

    def _register_state_machines(self, stack: Stack) -> None:
        sfn = self.client("stepfunctions")
        for playbook in project.state_machines().values():
            logical_id = playbook.logical_id
            arn = stack.resources[logical_id]
            name = arn.rsplit(":", 1)[-1]
            definition = playbook.asl_path.read_text()
            prefix = _subst_output(logical_id, "")
            for output, value in stack.outputs.items():
                if output.startswith(prefix):
                    definition = definition.replace("${" + output.removeprefix(prefix) + "}", value)
            created = sfn.create_state_machine(
                name=name, definition=definition, roleArn=stack.outputs[_role_output(logical_id)], type="STANDARD"
            )
            stack.state_machines[logical_id] = created["stateMachineArn"]
            self._sm_logical[name] = self._principal(stack, logical_id)

    def _register_rules(self) -> None:
        events = self.client("events")
        self.rules, self.schedules = [], []
        for page in events.get_paginator("list_rules").paginate():
            for rule in page["Rules"]:
                if rule.get("State") != "ENABLED":
                    continue
                targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
                if "ScheduleExpression" in rule:
                    self.schedules.append(Rule(rule["Name"], {"schedule": rule["ScheduleExpression"], "arn": rule["Arn"]}, targets))
                elif "EventPattern" in rule:
                    self.rules.append(Rule(rule["Name"], json.loads(rule["EventPattern"]), targets))

    def run_schedule(self, logical_id: str, at: datetime | None = None) -> Any:
        """Deliver one 'Scheduled Event' to the function `logical_id`, as its EventBridge schedule does every period;
        `at` is the time the event says (a period that falls later than now, e.g. halfway through an approval)."""
        function = next((f for f in self.functions.values() if f.logical_id == logical_id), None)
        rule = next(
            (r for r in self.schedules if function and any(t["Arn"].endswith(f":function:{function.name}") for t in r.targets)), None
        )
        if function is None or rule is None:
            raise ValueError(f"{logical_id} is not a function the template runs on a schedule")
        now = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account_id,
            "time": now,
            "region": self.region,
            "resources": [rule.pattern["arn"]],
            "detail": {},
        }
        return self.invoke_handler(logical_id, event)

    def function_principals(self) -> set[str]:
        """The principals the stack's functions' calls are recorded under."""
        return {function.principal for function in self.functions.values()}

    def role_of_state_machine(self, logical_id: str) -> str:
        return self.outputs[_role_output(logical_id)]

    def state_machine_of_principal(self, principal: str) -> tuple[str, str] | None:
        """(role ARN, state machine ARN) of a state machine's principal in any stack ("<stack>/<logical id>" in a second
        one, as `_principal` names it); None for any other principal."""
        stack_name, _, logical_id = principal.rpartition("/")
        stack = self.stacks.get(stack_name or self.stack_name)
        if stack is None or logical_id not in stack.state_machines:
            return None
        return stack.outputs[_role_output(logical_id)], stack.state_machines[logical_id]

    def logical_id_of_state_machine(self, name: str) -> str:
        return self._sm_logical.get(name, name)

    def state_machine_arn(self, playbook_id: str, stack: str | None = None) -> str:
        return self.stacks[stack or self.stack_name].state_machines[project.playbook(playbook_id).logical_id]

    def _all_state_machines(self) -> list[str]:
        return [arn for stack in self.stacks.values() for arn in stack.state_machines.values()]

    # -------------------------------------------------------------------------------------- Lambda dispatch
    def dispatch(self, function_name: str, body: Any) -> tuple[bytes, bool]:
        """Run the function's real handler in-process; returns (payload, errored)."""
        name = function_name.rsplit(":function:", 1)[-1].split(":")[0]
        function = self.functions.get(name)
        if function is None and name in self.scripts:
            # A pipeline function whose behaviour the scenario scripts; its calls are its own role's.
            token = PRINCIPAL.set(name)
            try:
                return json.dumps(self.scripts[name](aws_lambda.decode_payload(body)), default=str).encode(), False
            except Exception as error:  # noqa: BLE001 - a scripted failure is the function's error payload
                return aws_lambda.lambda_error_payload(error), True
            finally:
                PRINCIPAL.reset(token)
        if function is None:
            # A pipeline function that the scenario created: it has no code of ours; answer as a no-op handler.
            return json.dumps({"status": "ok"}).encode(), False
        event = aws_lambda.decode_payload(body)
        module_name, handler_name = function.handler.rsplit(".", 1)
        with self._handler_lock:
            saved = {key: os.environ.get(key) for key in function.environment}
            os.environ.update(function.environment)
            token = PRINCIPAL.set(function.principal)
            try:
                handler = getattr(importlib.import_module(module_name), handler_name)
                self.logs.attach()
                spent = [0.0]  # simulated seconds this invocation spends (its own time runs on the account's clock)
                context = FakeContext(
                    function_name=name,
                    memory_limit_in_mb=function.memory,
                    invoked_function_arn=f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}",
                    timeout=function.timeout,
                    now=lambda: time.monotonic() + spent[0],
                )
                began = time.perf_counter()
                spending = aws_clock.INVOCATION_SPENT.set(spent)
                try:
                    with emf.capture() as printed:
                        result = handler(event, context)
                finally:
                    aws_clock.INVOCATION_SPENT.reset(spending)
                    self.invocations.append(Invocation(function.logical_id, time.perf_counter() - began, function.memory))
                    emf.land(self.client("cloudwatch"), printed.getvalue())
                if context.timed_out():
                    return aws_lambda.timeout_payload(function.timeout, context.aws_request_id), True
                return json.dumps(result, default=str).encode(), False
            except Exception as error:  # noqa: BLE001 - every handler error becomes a FunctionError payload
                return aws_lambda.lambda_error_payload(error), True
            finally:
                PRINCIPAL.reset(token)
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def invoke_handler(self, logical_id: str, event: dict[str, Any], stack: str | None = None) -> Any:
        """Call a function's handler directly (as API Gateway would), returning its result."""
        name = self.stacks[stack or self.stack_name].resources[logical_id]
        function = self.functions[name]
        payload, errored = self.dispatch(function.name, json.dumps(event))
        result = json.loads(payload)
        if errored:
            raise RuntimeError(f"{logical_id} failed: {result['errorType']}: {result['errorMessage']}")
        return result

    # -------------------------------------------------------------------------------------- events and executions
    def start(self, playbook_id: str, payload: dict[str, Any], name: str | None = None, stack: str | None = None) -> str:
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn(playbook_id, stack),
                name=name or f"local-{uuid.uuid4().hex[:12]}",
                input=json.dumps(payload),
            )["executionArn"]
        )

    def put_event(self, event: dict[str, Any]) -> list[str]:
        """Deliver a service event (an alarm's state change, say) as EventBridge does: to every rule whose pattern
        matches, starting the target state machines. moto's own delivery cannot start executions."""
        from moto.events.models import EventPattern

        delivered = {"account": self.account_id, "region": self.region, "id": str(uuid.uuid4()), "version": "0"} | event
        started = []
        for rule in self.rules:
            if not EventPattern(json.dumps(rule.pattern), rule.pattern).matches_event(delivered):  # type: ignore[arg-type]
                continue
            for target in rule.targets:
                if ":lambda:" in target["Arn"]:
                    started += self._deliver_to_function(target, delivered)
                    continue
                if ":states:" not in target["Arn"]:
                    continue
                payload = json.loads(target["Input"]) if "Input" in target else delivered
                started.append(
                    str(
                        # EventBridge names each execution with a fresh UUID; moto would name them all "None".
                        self.client("stepfunctions").start_execution(
                            stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=json.dumps(payload, default=str)
                        )["executionArn"]
                    )
                )
        return started

    def _deliver_to_function(self, target: dict[str, Any], event: dict[str, Any]) -> list[str]:
        """Invoke a Lambda target (asynchronously on AWS; here to completion) and return the playbook executions it
        started, so that a function fanning an event out to playbooks is followed like a direct target."""
        before = set(self.playbook_executions())
        payload = target["Input"] if "Input" in target else json.dumps(event, default=str)
        self.client("lambda").invoke(FunctionName=target["Arn"], InvocationType="Event", Payload=payload.encode())
        return [arn for arn in self.playbook_executions() if arn not in before]

    def playbook_executions(self) -> list[str]:
        """ARNs of the playbooks' executions, oldest first."""
        sfn = self.client("stepfunctions")
        found: list[tuple[Any, str]] = []
        for arn in self._all_state_machines():
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                found += [(e["startDate"], e["executionArn"]) for e in page["executions"]]
        return [arn for _, arn in sorted(found)]

    def publish(self, topic_logical_id: str, subject: str, message: str) -> list[str]:
        """Publish a notification (a budget alert, say) to one of the template's topics as the sending service does;
        returns the executions its subscribers started."""
        sfn = self.client("stepfunctions")

        def executions() -> set[str]:
            return {
                execution["executionArn"]
                for arn in self._all_state_machines()
                for execution in sfn.list_executions(stateMachineArn=arn)["executions"]
            }

        before = executions()
        token = PRINCIPAL.set("notifier")
        try:
            # A notification without a subject leaves Subject out: SNS refuses an empty one.
            self.client("sns").publish(
                TopicArn=self.resources[topic_logical_id], Message=message, **({"Subject": subject} if subject else {})
            )
        finally:
            PRINCIPAL.reset(token)
        return sorted(executions() - before)

    def alarm_event(self, alarm_name: str, state: str = "ALARM", reason: str = "Threshold Crossed") -> dict[str, Any]:
        """The 'CloudWatch Alarm State Change' event AWS emits when `alarm_name` changes state."""
        alarm = self.client("cloudwatch").describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": self.account_id,
            "time": now,
            "region": self.region,
            "resources": [alarm["AlarmArn"]],
            "detail": {
                "alarmName": alarm_name,
                "state": {"value": state, "reason": reason, "timestamp": now},
                "previousState": {"value": "OK", "reason": "", "timestamp": now},
                "configuration": {
                    "description": alarm.get("AlarmDescription", ""),
                    "metrics": [
                        {
                            "id": "m1",
                            "metricStat": {
                                "metric": {
                                    "namespace": alarm["Namespace"],
                                    "name": alarm["MetricName"],
                                    "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
                                },
                                "period": alarm["Period"],
                                "stat": alarm.get("Statistic", "Sum"),
                            },
                            "returnData": True,
                        }
                    ],
                },
            },
        }

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return dict(self.client("stepfunctions").describe_execution(executionArn=execution_arn))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def stop_executions(self) -> None:
        """Stop whatever is still running so no executor thread outlives the account."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        if self._mock is None:
            return
        backend = stepfunctions_parser_backends[self.account_id][self.region]
        for machine in backend.state_machines:
            for execution in machine.executions:
                if execution.status == "RUNNING":
                    with contextlib.suppress(Exception):  # best effort at shutdown
                        execution.stop(stop_date=None, cause="local account closed", error=None)
                        # release tasks still waiting for a token, so their threads can end
                        for endpoint in list(execution.exec_worker.env.callback_pool_manager._pool.values()):  # type: ignore[attr-defined]
                            endpoint.interrupt_all()
        # A stopped execution's thread may still be inside a task: let it end here, or its last calls would land
        # in the next account's recorder.
        from moto.stepfunctions.parser.utils import TMP_THREADS

        deadline = time.monotonic() + EXECUTOR_SHUTDOWN_S
        for thread in list(TMP_THREADS):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        TMP_THREADS[:] = [thread for thread in TMP_THREADS if thread.is_alive()]

    def task_tokens_waiting(self) -> list[str]:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[self.account_id][self.region]
        tokens = []
        for machine in backend.state_machines:
            for execution in machine.executions:
                worker = getattr(execution, "exec_worker", None)
                if execution.status == "RUNNING" and worker and worker.env:
                    tokens.extend(worker.env.callback_pool_manager._pool.keys())
        return tokens

    def expire_waiting_tasks(self) -> None:
        """Let the approval timeout elapse for every waiting task (simulated time; nothing sleeps)."""
        self.clock.expire_requested.update(self.task_tokens_waiting())


class LogCapture(io.TextIOBase):
    """Collects the handlers' structured log lines (so tests can search them) instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.extend(line for line in text.splitlines() if line.strip())
        return len(text)

    def attach(self) -> None:
        """Point every Powertools log handler here, whatever service name its module was imported under."""
        from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter

        for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
            for handler in getattr(logger, "handlers", []):
                if (
                    isinstance(handler, logging.StreamHandler)
                    and isinstance(handler.formatter, BasePowertoolsFormatter)
                    and handler.stream is not self
                ):
                    handler.setStream(self)


_SESSION: boto3.Session | None = None
_CLIENTS: dict[str, Any] = {}


def _session() -> boto3.Session:
    """One boto3 session for every account of this process: a session loads each service's model once, and a fresh
    session per account reloaded them all (a tenth of a second per client). Made here, after moto is imported, so its
    clients go to moto; the account's credentials are the same fake ones every time."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.Session()
    return _SESSION


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "The local account runs the handlers from functions/ in-process.")
    return buffer.getvalue()


def _subst_output(logical_id: str, key: str) -> str:
    return f"LocalSubst{logical_id}{key}"


def _role_output(logical_id: str) -> str:
    return f"LocalRole{logical_id}"


_TRANSLATED: dict[str, dict[str, Any]] = {}


def translate(parameters: dict[str, str]) -> dict[str, Any]:
    """The template as CloudFormation sees it after SAM's transform, plus outputs the account reads back.

    Code and definitions are inlined (as `sam deploy` uploads them); each state machine's substitutions and role
    become stack outputs, so moto's own intrinsic-function resolution computes their values.
    """
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    key = json.dumps([parameters, project.TEMPLATE.stat().st_mtime], sort_keys=True)
    if key in _TRANSLATED:
        return copy.deepcopy(_TRANSLATED[key])
    sam = project.template()
    sam.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = f"s3://{ARTIFACTS}/functions.zip"
    for resource in sam["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = f"s3://{ARTIFACTS}/functions.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["Definition"] = {"StartAt": "Placeholder", "States": {"Placeholder": {"Type": "Pass", "End": True}}}
            del properties["DefinitionUri"]
    session = boto3.Session(region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106 - not a secret: translation reads no AWS
    translated = Translator(None, Parser(), boto_session=session).translate(
        sam, parameter_values=dict(parameters), get_managed_policy_map=lambda: {}
    )
    outputs = translated.setdefault("Outputs", {})
    for logical_id, resource in list(translated["Resources"].items()):
        if resource["Type"] == "AWS::ApiGateway::RestApi":
            # AWS names an API from its OpenAPI body; moto requires the Name property.
            resource["Properties"].setdefault("Name", logical_id)
        if resource["Type"] in ("AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage"):
            # moto cannot deploy an API defined by an OpenAPI body; the account serves the handler directly.
            del translated["Resources"][logical_id]
            continue
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        properties = resource["Properties"]
        for subst_key, value in properties.pop("DefinitionSubstitutions", {}).items():
            outputs[_subst_output(logical_id, subst_key)] = {"Value": value}
        outputs[_role_output(logical_id)] = {"Value": properties["RoleArn"]}
    _TRANSLATED[key] = translated
    return copy.deepcopy(translated)
