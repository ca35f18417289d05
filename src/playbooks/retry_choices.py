"""A denial is an answer, never retried: rewrite the Retry of the aws-sdk Tasks whose retried error can be a denial.

Step Functions names an aws-sdk error `<Service>.<Shape>Exception` when the service's API model declares it and
`<Service>.<Service>Exception` (the base class) otherwise. Where the model names no denial, a denial comes as the
base class (`denial_names`), and a retrier on the base class waits and asks again for an answer already given.

For each aws-sdk Task (also inside Map and Parallel states) whose first attempt retries a denial's name:
- a denial name the model declares (`S3.AccessDeniedException`) leaves its retriers;
- the service models its throttling (Lambda, DynamoDB): the base class leaves the Retry, the modelled throttling and
  server-error names stay (a retrier left empty gets the model's throttling names);
- otherwise (IAM, S3, KMS, Step Functions, CloudWatch, ...) throttling too arrives only as the base class, and Retry
  matches error names only, so the Cause decides. The Task no longer retries the base class; a first Catch keeps the
  error in `$.retrying` and goes to the Choice "<state>: retry?": a denial ("is not authorized to perform",
  ", Status Code: 403,") or a 404 goes to "<state>: keep the error" (a Pass that puts the error where the Task's
  Catch put it, then on to that catcher's Next); anything else goes to "<state> (retry)", a copy of the Task with its
  original Retry and Catch.

Idempotent: a Task already rewritten is known by its Choice, and its "(retry)" copy is re-synced from the Task
(Resource, Parameters, selectors, Next/End), so an edit of the Task reaches the copy on the next run.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import project, validate
from .local.aws import authorization, integrations

RETRYING = "$.retrying"
RETRY_SUFFIX = " (retry)"
DENIED_OR_MISSING = ["*is not authorized to perform*", "*, Status Code: 403,*", "*, Status Code: 404,*"]
# The service's own throttling, not another's it passes on (Step Functions' KmsThrottlingException).
THROTTLING_SHAPE = re.compile(r"^(Throttling|TooManyRequests|RequestLimitExceeded|ProvisionedThroughputExceeded)")
# Fields of the "(retry)" copy that are its own; the rest follows the Task.
OWN_FIELDS = ("Retry", "Catch", "Comment")
STATE_MACHINES = project.ROOT / "statemachines"


def sdk_service(state: dict[str, Any]) -> str | None:
    """The aws-sdk service name a Task calls (`iam` for `arn:aws:states:::aws-sdk:iam:getRole`), else None."""
    resource = str(state.get("Resource", ""))
    if state.get("Type") != "Task" or not resource.startswith(validate.SDK_PREFIX):
        return None
    return resource.removeprefix(validate.SDK_PREFIX).split(":")[0]


def base_class(service: str) -> str:
    """The error an aws-sdk call fails with when the service's model does not name the error."""
    prefix = integrations.error_prefix(service)
    return f"{prefix}.{prefix}Exception"


def denial_names(service: str) -> set[str]:
    """What Step Functions names a denial of an aws-sdk call to `service`: the denial code as the account's
    authorization answers it (each service's Common Errors), named by the service's model; for S3 also the base
    class, since a denied HEAD has no body and so no code."""
    boto = integrations.SDK_SERVICE.get(service, service)
    code, status = authorization.DENIAL.get(validate.IAM_PREFIX.get(service, service), authorization.DEFAULT_DENIAL)
    response = {
        "Error": {"Code": code, "Message": "User: r is not authorized to perform: a"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    names = {integrations.sdk_error(service, boto, response)[0]}
    return names | ({base_class(service)} if service == "s3" else set())


def throttling_names(service: str) -> list[str]:
    """The throttling errors the service's model names (empty: throttling comes as the base class)."""
    model = integrations.service_model(integrations.SDK_SERVICE.get(service, service))
    prefix = integrations.error_prefix(service)
    return sorted(f"{prefix}.{integrations.exception_class(s.name)}" for s in model.error_shapes if THROTTLING_SHAPE.search(s.name))


def denials_retried(definition: dict[str, Any]) -> list[str]:
    """Each first attempt of an aws-sdk call that retries the name a denial comes as, as "<state>: <error>". A
    "(retry)" copy is left out: it is reached only after a Choice found the first error was no denial."""
    retried = []
    for name, state in validate.states_of(definition):
        service = sdk_service(state)
        if service is None or name.endswith(RETRY_SUFFIX):
            continue
        denials = denial_names(service)
        retried += [f"{name}: {error}" for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"] if error in denials]
    return retried


def transform(definition: dict[str, Any]) -> list[str]:
    """Rewrite every aws-sdk Task of `definition` (and of its Map and Parallel states) in place; the Tasks rewritten.

    Raises ProjectError, naming the Task, when a Task to rewrite has no Catch for its base class."""
    rewritten = []
    states = definition["States"]
    for name in list(states):
        for inner in validate.inner_definitions(states[name]):
            rewritten += transform(inner)
        service = sdk_service(states[name])
        if service is None or name.endswith(RETRY_SUFFIX):
            continue
        before = _family(states, name)
        _rewrite(states, name, service)
        if _family(states, name) != before:
            rewritten.append(name)
    return rewritten


def _names(name: str) -> tuple[str, str, str]:
    return f"{name}: retry?", f"{name}: keep the error", f"{name}{RETRY_SUFFIX}"


def _family(states: dict[str, Any], name: str) -> list[Any]:
    """The Task and the states the rewrite gives it, as they stand (to tell whether a rewrite changed anything)."""
    return [copy.deepcopy(states.get(member)) for member in (name, *_names(name))]


def _rewrite(states: dict[str, Any], name: str, service: str) -> None:
    task = states[name]
    base = base_class(service)
    denials = denial_names(service)
    _set_retry(task, _without(task.get("Retry", []), denials - {base}))
    if base not in denials:
        return
    throttling = throttling_names(service)
    if throttling:
        _drop_base_class(task, base, throttling)
    else:
        _retry_on_cause(states, name, base)


def _without(retriers: list[dict[str, Any]], names: set[str]) -> list[dict[str, Any]]:
    kept = []
    for retrier in retriers:
        remaining = [n for n in retrier["ErrorEquals"] if n not in names]
        if remaining:
            kept.append({**retrier, "ErrorEquals": remaining})
    return kept


def _set_retry(state: dict[str, Any], retriers: list[dict[str, Any]]) -> None:
    if retriers:
        state["Retry"] = retriers
    else:
        state.pop("Retry", None)


def _drop_base_class(task: dict[str, Any], base: str, throttling: list[str]) -> None:
    """The service models its throttling: retry those names, not the base class a denial comes as."""
    kept = []
    for retrier in task.get("Retry", []):
        names = list(dict.fromkeys(n for n in retrier["ErrorEquals"] if n != base))
        if base in retrier["ErrorEquals"] and not names:
            names = throttling
        if names:
            kept.append({**retrier, "ErrorEquals": names})
    _set_retry(task, kept)


def _retry_copy(task: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """The "(retry)" copy: the Task's fields, with its own Comment, Retry and Catch."""
    return {
        **({"Comment": own["Comment"]} if "Comment" in own else {}),
        **{k: v for k, v in copy.deepcopy(task).items() if k not in OWN_FIELDS},
        **{k: own[k] for k in ("Retry", "Catch") if k in own},
    }


def _catcher_of(task_name: str, catchers: list[dict[str, Any]], base: str) -> dict[str, Any]:
    """The catcher that handles the base class (the first that matches it, as Step Functions picks)."""
    for catcher in catchers:
        if {base, "States.ALL", "States.TaskFailed"} & set(catcher["ErrorEquals"]):
            return catcher
    raise project.ProjectError(
        f"{task_name!r} retries {base}, the error a denial comes as, but no Catch handles it: add a Catch for {base} "
        "(or States.ALL) that says where a denial goes, then run again"
    )


def _retry_on_cause(states: dict[str, Any], name: str, base: str) -> None:
    """Throttling arrives as the base class too: a Choice on the Cause tells a denial from an error that may pass."""
    task = states[name]
    choice, keep, again = _names(name)
    if choice in states:  # already rewritten: keep the copy in step with the Task
        if again not in states:
            raise project.ProjectError(f"{name!r} has its {choice!r} Choice but no {again!r}: remove the Choice, then run again")
        _set_retry(task, _without(task.get("Retry", []), {base}))
        states[again] = _retry_copy(task, states[again])
        return
    if not any(base in retrier["ErrorEquals"] for retrier in task.get("Retry", [])):
        return
    catchers = task.get("Catch", [])
    original = _catcher_of(name, catchers, base)
    retry_copy = _retry_copy(
        task,
        {
            "Comment": f"'{name}' again after an error that may pass (throttling, a server error), with backoff.",
            "Retry": copy.deepcopy(task["Retry"]),
            "Catch": copy.deepcopy(catchers),
        },
    )
    remaining = [{**catcher, "ErrorEquals": names} for catcher in catchers if (names := [n for n in catcher["ErrorEquals"] if n != base])]
    task["Catch"] = [{"ErrorEquals": [base], "ResultPath": RETRYING, "Next": choice}, *remaining]
    _set_retry(task, _without(task["Retry"], {base}))
    keep_state: dict[str, Any] = {
        "Type": "Pass",
        "Comment": "The denial or the 404 is the answer: it goes where the playbook reads this call's errors.",
        "InputPath": RETRYING,
    }
    if "ResultPath" in original:
        keep_state["ResultPath"] = original["ResultPath"]
    keep_state["Next"] = original["Next"]
    service = base.split(".")[0]
    choice_state = {
        "Type": "Choice",
        "Comment": (
            f"{base} is every error {service}'s API model does not name: a denial or a missing resource, but "
            "also throttling and server errors. Retry matches error names only, so the Cause decides: a denial "
            "(403, 'is not authorized to perform') or a 404 is the answer at once, anything else is tried again "
            f"with backoff. The error waits in {RETRYING}, so a call that then succeeds leaves none behind."
        ),
        "Choices": [{"Or": [{"Variable": f"{RETRYING}.Cause", "StringMatches": pattern} for pattern in DENIED_OR_MISSING], "Next": keep}],
        "Default": again,
    }
    # The three new states follow the Task, so the file reads in the order a run takes.
    reordered: dict[str, Any] = {}
    for key, value in states.items():
        reordered[key] = value
        if key == name:
            reordered.update({choice: choice_state, keep: keep_state, again: retry_copy})
    states.clear()
    states.update(reordered)


@dataclass(frozen=True)
class Rewrite:
    """A state machine file that needs rewriting: the Tasks rewritten and the file's new text."""

    path: Path
    states: list[str]
    text: str


def render(definition: dict[str, Any]) -> str:
    """ASL as the project writes it."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def state_machine_files() -> list[Path]:
    """Every statemachines/*.asl.json of the project."""
    found = sorted(STATE_MACHINES.glob("*.asl.json"))
    if not found:
        raise project.ProjectError(f"no *.asl.json in {STATE_MACHINES}")
    return found


def plan(paths: Iterable[Path]) -> list[Rewrite]:
    """The files among `paths` that need rewriting, with their new text; writes nothing. A problem in any file
    raises ProjectError naming the file, before any file is written."""
    rewrites = []
    for path in paths:
        try:
            definition = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise project.ProjectError(f"{path}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise project.ProjectError(f"{path}: not JSON ({error})") from None
        if not isinstance(definition, dict) or not isinstance(definition.get("States"), dict):
            raise project.ProjectError(f"{path}: not a state machine definition (no States)")
        try:
            rewritten = transform(definition)
        except project.ProjectError as error:
            raise project.ProjectError(f"{path}: {error}") from None
        if rewritten:
            rewrites.append(Rewrite(path, rewritten, render(definition)))
    return rewrites


def write(rewrites: Iterable[Rewrite]) -> None:
    for rewrite in rewrites:
        rewrite.path.write_text(rewrite.text, encoding="utf-8")
