"""Step Functions' ASL executor (moto's): definitions parsed once, definite JSONPaths, simulated waits, the
state machine's role as the caller of its tasks, and a stopped execution that stays stopped."""

from __future__ import annotations

import importlib
import re
import threading
import time
from typing import Any

from ..recorder import PRINCIPAL, STATE
from .runtime import NO_AWS_BEHAVIOUR, Gap, Source, active
from .sfn import IDLE

GAPS = [
    Gap(
        "JSONPath",
        "a definite path with an index ($.actions[0].target) selects one value",
        "returns a one-element list: we return the value",
        sources=(
            Source(
                "AWS Step Functions developer guide, Using JSONPath paths",
                "https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html",
            ),
        ),
    ),
    Gap(
        "Wait state and Retry interval",
        "wait in real time",
        "sleep in real time: we advance a virtual clock instead, recording the seconds that would have passed",
        sources=(
            Source(
                "AWS Step Functions developer guide, Wait workflow state",
                "https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-wait-state.html",
            ),
            Source(
                "AWS Step Functions developer guide, Handling errors in Step Functions workflows",
                "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html",
            ),
        ),
    ),
    Gap(
        "waitForTaskToken timeout",
        "ends the task with States.Timeout after TimeoutSeconds",
        "waits in real time: the simulator can make the timeout elapse at once ('expire')",
        sources=(
            Source(
                "AWS Step Functions developer guide, Discover service integration patterns in Step Functions (wait for a callback with a task token)",
                "https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html",
            ),
        ),
    ),
    Gap(
        "Wait state while other executions run",
        "lets the rest of the account run while a state waits",
        "advances the virtual clock at once: before the waiting execution resumes, the account lets every other running execution reach a wait, a task token or its end (bounded)",
        sources=(
            Source(
                "AWS Step Functions developer guide, Wait workflow state",
                "https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-wait-state.html",
            ),
        ),
    ),
    Gap(
        "Step Functions executions (speed only)",
        "a state machine's definition is parsed once, when it is created or updated",
        "parses the definition again with ANTLR at the start of every execution (about 0.3 s each): we keep each "
        "definition's parse tree and build fresh evaluation components from it per execution; the stack's physical "
        "names are the same on every deploy (moto's random generator is seeded while it deploys), so a definition "
        "is parsed once per process",
        sources=NO_AWS_BEHAVIOUR,
    ),
    Gap(
        "States.DataLimitExceeded (the 256 KiB payload quota)",
        "limits a task's result, a state's input after Parameters and a state's output to 262,144 bytes of UTF-8 "
        "(Step Functions developer guide, 'Step Functions service quotas', quotas related to task executions: "
        "'Maximum input or output size for a task, state, or execution'); beyond it the state fails with "
        "`States.DataLimitExceeded`, 'a terminal error that can't be caught by the States.ALL error type' "
        "('Error handling in Step Functions workflows', Error names: States.ALL and States.DataLimitExceeded). "
        "A catcher or retrier naming States.DataLimitExceeded itself still matches. Cause as recorded against AWS in "
        "LocalStack's tests/aws/services/stepfunctions/v2/error_handling/test_states_errors.snapshot.json: "
        "`The state/task '<resource type>' returned a result with a size exceeding the maximum number of bytes service "
        "limit.`",
        "checks results and outputs but lets a `States.ALL` catcher or retrier take the error, and never checks a "
        "task's input after Parameters: States.ALL no longer matches it (the stricter reading: that recording shows "
        "a States.ALL catcher taking an oversized lambda:invoke result, the guide says it cannot), and a task whose "
        "Parameters exceed the quota fails before its call",
        sources=(
            Source(
                "AWS Step Functions developer guide, Step Functions service quotas",
                "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
            ),
            Source(
                "AWS Step Functions developer guide, Handling errors in Step Functions workflows",
                "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html",
            ),
        ),
    ),
    Gap(
        "States.Runtime",
        "an execution fails with `States.Runtime` on an error it cannot process at run time (e.g. a JSONPath in "
        "Parameters or ResultSelector that selects nothing in its input, InputPath or OutputPath on a null payload); "
        "States.ALL 'can't catch the States.DataLimitExceeded terminal error type and runtime error types', and a "
        "States.Runtime error 'isn't retriable, and will always cause the execution to fail' (Step Functions "
        "developer guide, 'Error handling in Step Functions workflows', Error names: States.ALL and States.Runtime)",
        "lets a States.ALL catcher or retrier take a States.Runtime error: we let no catcher or retrier take it, not "
        "even one that names States.Runtime (the stricter reading of 'will always cause the execution to fail')",
        sources=(
            Source(
                "AWS Step Functions developer guide, Handling errors in Step Functions workflows",
                "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html",
            ),
        ),
    ),
]


# Parse trees by definition text. A tree is only read after parsing; each execution still gets fresh evaluation
# components from it (the Preprocessor), so no state is shared between executions.
PARSE_TREES: dict[str, Any] = {}


_PARSE_LOCK = threading.Lock()


def _parse_each_definition_once() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = AmazonStateLanguageParser.parse

    def parse(definition: str) -> tuple[Any, Any]:
        tree = PARSE_TREES.get(definition)
        if tree is None:
            program, tree = original(definition)  # raises on a bad definition, so only good ones are kept
            with _PARSE_LOCK:
                PARSE_TREES[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]


def _patch_principal_of_tasks() -> None:
    """Calls a Task state makes are the state machine role's calls: attribute them to its logical id, and to the state."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService

    original = StateTaskService._eval_execution

    def eval_execution(self: Any, env: Any) -> None:
        context = env.states.context_object.context_object_data
        token = PRINCIPAL.set(active().logical_id_of_state_machine(context["StateMachine"]["Name"]))
        state = STATE.set(context["State"]["Name"])
        try:
            original(self, env)
        finally:
            STATE.reset(state)
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
        with IDLE.waiting(execution=execution):
            IDLE.settle(except_execution=execution)

    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]

    def callback_wait(self: Any, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with IDLE.waiting(callback=self.callback_id):
            while not self._notify_event.wait(0.02):
                if self.callback_id in active().clock.expire_requested:
                    active().clock.advance(timeout or 0)
                    break
                if self.callback_id in IDLE.abandoned:
                    break  # its execution was stopped
                if deadline is not None and time.monotonic() >= deadline:
                    break
        return self._outcome

    CallbackEndpoint.wait = callback_wait  # type: ignore[method-assign]
    _patch_stopped_stays_stopped()


_INDEFINITE_PATH = re.compile(r"\[\s*(\*|\?|-?\d*\s*:)|\.\.|\.\*|\[\s*'[^']*'\s*,|\[\s*\d+\s*,")


def _patch_definite_json_paths() -> None:
    """A definite path such as `$.plan.actions[0].target` selects one value on AWS; moto wraps it in a list."""

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


def _patch_payload_limit() -> None:
    """States.DataLimitExceeded is terminal for States.ALL, States.Runtime for every catcher and retrier, and a task's
    input after Parameters counts towards the payload quota too."""
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService
    from moto.stepfunctions.parser.quotas import is_within_size_quota

    matches = ErrorEqualsDecl._eval_body

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        unnamed_data_limit = _is_data_limit(error_name) and not any(_is_data_limit(name) for name in self.error_names)
        if unnamed_data_limit or _is_states_error(error_name, "StatesRuntime"):
            env.stack.pop()
            env.stack.append(False)  # DataLimitExceeded: only a catcher or retrier naming it matches; Runtime: none
            return
        matches(self, env)

    ErrorEqualsDecl._eval_body = eval_body  # type: ignore[method-assign]

    before = StateTaskService._before_eval_execution

    def before_eval_execution(self: Any, env: Any, resource_runtime_part: Any, raw_parameters: Any, state_credentials: Any) -> None:
        if not is_within_size_quota(raw_parameters):
            raise _data_limit_exceeded(self, env, "was given an input")
        before(self, env, resource_runtime_part, raw_parameters, state_credentials)

    StateTaskService._before_eval_execution = before_eval_execution  # type: ignore[method-assign]
    _keep_failure_events(StateTaskService)


def _keep_failure_events(base: type) -> None:
    """An integration's own error mapping (DynamoDB's turns any exception into AmazonDynamoDBException) must leave
    a States error such as DataLimitExceeded as it is."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException

    subclass: type
    for subclass in base.__subclasses__():
        _keep_failure_events(subclass)
        if "_from_error" not in vars(subclass):
            continue
        original = vars(subclass)["_from_error"]

        def from_error(self: Any, env: Any, ex: Exception, original: Any = original) -> Any:
            return ex.failure_event if isinstance(ex, FailureEventException) else original(self, env, ex)

        subclass._from_error = from_error  # type: ignore[attr-defined]


def _is_states_error(error_name: Any, kind: str) -> bool:
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType

    return isinstance(error_name, StatesErrorName) and error_name.typ == getattr(StatesErrorNameType, kind)


def _is_data_limit(error_name: Any) -> bool:
    return _is_states_error(error_name, "StatesStatesDataLimitExceeded")


def _data_limit_exceeded(task: Any, env: Any, what: str) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent, FailureEventException
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    kind = StatesErrorNameType.StatesStatesDataLimitExceeded
    details = TaskFailedEventDetails(
        error=kind.to_name(),
        cause=f"The state/task '{task._get_sfn_resource_type()}' {what} with a size exceeding the maximum number of bytes service limit.",
        resource=task._get_sfn_resource(),
        resourceType=task._get_sfn_resource_type(),
    )
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=kind),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=details),  # type: ignore[typeddict-item]
        )
    )


def patch_moto() -> None:
    _parse_each_definition_once()
    _patch_principal_of_tasks()
    _patch_time()
    _patch_definite_json_paths()
    _patch_payload_limit()
