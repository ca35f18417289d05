"""Static checks of the project: template, ASL (fidelity rules), schemas, the approval-gate proof, policies."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from . import project, safety
from .local.recorder import IAM_ACTION

APPROVAL_RESOURCE = "arn:aws:states:::lambda:invoke.waitForTaskToken"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SDK_PREFIX = "arn:aws:states:::aws-sdk:"
# Optimized integrations' writes that are the playbook's own bookkeeping when aimed at its own tables.
BOOKKEEPING_TABLES = {"${LocksTableName}", "${ApprovalsTableName}"}
LITERAL_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


@dataclass
class Check:
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def inner_definitions(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The definitions a state runs inside it: a Parallel state's Branches, a Map state's ItemProcessor (Iterator)."""
    processor = state.get("ItemProcessor") or state.get("Iterator")
    return [*state.get("Branches", []), *([processor] if processor else [])]


def states_of(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, including those inside Map and Parallel states."""
    for name, state in definition.get("States", {}).items():
        yield name, state
        for inner in inner_definitions(state):
            yield from states_of(inner)


def successors(state: dict[str, Any]) -> list[str]:
    nexts = [state["Next"]] if "Next" in state else []
    # A Map or Parallel state runs its inner states before moving on: they are reachable from it.
    nexts += [inner["StartAt"] for inner in inner_definitions(state)]
    nexts += [choice["Next"] for choice in state.get("Choices", [])]
    nexts += [state["Default"]] if "Default" in state else []
    nexts += [catcher["Next"] for catcher in state.get("Catch", [])]
    return nexts


def is_approval(state: dict[str, Any]) -> bool:
    return state.get("Type") == "Task" and state.get("Resource") == APPROVAL_RESOURCE


# The actions of the SAM policy templates the template uses (SAM's policy_templates.json).
SAM_POLICY_ACTIONS = {"SNSPublishMessagePolicy": ["sns:Publish"], "StepFunctionsExecutionPolicy": ["states:StartExecution"]}
# A function writes its own logs; Lambda, not the playbook, creates the group and streams.
OWN_LOG_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _references(value: Any) -> set[str]:
    """The template names (resources or parameters) a policy's Resource value refers to."""
    if isinstance(value, str):
        return set(REFERENCE.findall(value))
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value)) if value else set()
    if isinstance(value, dict):
        if "Ref" in value:
            return {str(value["Ref"])}
        if "Fn::GetAtt" in value:
            return {str(_listed(value["Fn::GetAtt"])[0]).split(".")[0]}
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            return _references(text[0] if isinstance(text, list) else text)
        return set().union(*(_references(item) for item in value.values())) if value else set()
    return set()


def function_changes(function_logical_id: str) -> list[str]:
    """The actions a function's role may call that change something outside the playbooks' own resources.

    Read-only actions, the playbooks' bookkeeping (safety.BOOKKEEPING_APIS) and the function's own logs are not
    changes; nor is a grant whose every resource is one of this stack's (its lock and approval tables, its topics).
    What remains is what the function *may* change by its grants, whatever its code does today.
    """
    resources = project.template()["Resources"]
    changes = set()
    for policy in resources[function_logical_id]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            grants = [
                (_listed(statement.get("Action", [])), statement.get("Resource", "*"))
                for statement in _listed(policy["Statement"])
                if statement.get("Effect") == "Allow"
            ]
        elif isinstance(policy, dict):
            grants = [(SAM_POLICY_ACTIONS.get(name, [f"{name} (a SAM policy template)"]), value) for name, value in policy.items()]
        else:
            grants = [([f"{policy} (a managed policy)"], "*")]
        for actions, target in grants:
            names = _references(target)
            if names and names <= set(resources):
                continue  # only this stack's own resources
            for action in actions:
                operation = str(action).split(":", 1)[-1]
                if not (safety.is_read_only(operation) or action in safety.BOOKKEEPING_APIS or action in OWN_LOG_ACTIONS):
                    changes.add(str(action))
    return sorted(changes)


def function_of(machine: str, placeholder: str) -> str:
    """The logical id of the function a `${...Arn}` placeholder of the state machine stands for."""
    substitutions = project.template()["Resources"][machine]["Properties"].get("DefinitionSubstitutions", {})
    value = substitutions.get(placeholder.strip("${}"), {})
    return str(value["Fn::GetAtt"][0]) if isinstance(value, dict) and "Fn::GetAtt" in value else placeholder.strip("${}")


def mutating_reason(state: dict[str, Any], machine: str) -> str | None:
    """Why a Task state may change the account (None when it only reads or keeps the playbook's own books).

    The one definition the approval-gate proof, the playbook pages and the diagrams use: an aws-sdk or optimized
    integration by its operation; a Lambda task by what its function's role may change (`function_changes`), which
    needs the state machine's logical id `machine` to resolve the function.
    """
    if state.get("Type") != "Task":
        return None
    resource = str(state.get("Resource", ""))
    parameters = state.get("Parameters", {})
    if resource == LAMBDA_INVOKE:
        function = function_of(machine, str(parameters.get("FunctionName", "")))
        changes = function_changes(function)
        return f"lambda {function} may call {', '.join(changes)}" if changes else None
    if resource.startswith(SDK_PREFIX):
        service, action = resource.removeprefix(SDK_PREFIX).split(":")[:2]
        operation = action[0].upper() + action[1:]
        return None if safety.is_read_only(operation) else f"aws-sdk {service}:{operation}"
    if resource.startswith("arn:aws:states:::dynamodb:"):
        table = parameters.get("TableName", "")
        action = resource.rsplit(":", 1)[-1]
        if action in ("getItem", "query", "scan") or table in BOOKKEEPING_TABLES:
            return None
        return f"dynamodb:{action} on {table}"
    if resource.startswith("arn:aws:states:::states:startExecution"):
        return "states:StartExecution"
    return None


def approval_gate(definition: dict[str, Any], machine: str) -> list[str]:
    """Paths from StartAt to a mutating task that pass no approval state (each problem names the path)."""
    states = dict(states_of(definition))
    problems = []
    start = definition["StartAt"]
    parents: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        name = queue.popleft()
        state = states[name]
        if is_approval(state):
            continue  # everything after this point is gated
        reason = mutating_reason(state, machine)
        if reason:
            path = [name]
            while parents[path[-1]] is not None:
                path.append(parents[path[-1]])  # type: ignore[arg-type]
            problems.append(f"{name!r} ({reason}) is reachable without approval: {' -> '.join(reversed(path))}")
        for following in successors(state):
            if following not in parents:
                parents[following] = name
                queue.append(following)
    return problems


BRAKE_FUNCTION = "SafetyControlsFunction"


def is_brake_check(state: dict[str, Any], machine: str) -> bool:
    """A Task that asks the safety controls, in phase before-change, whether the brake still lets it change anything."""
    parameters = state.get("Parameters") or {}
    payload = parameters.get("Payload") or {}
    return (
        state.get("Type") == "Task"
        and state.get("Resource") == LAMBDA_INVOKE
        and function_of(machine, str(parameters.get("FunctionName", ""))) == BRAKE_FUNCTION
        and isinstance(payload, dict)
        and payload.get("phase") == "before-change"
    )


def brake_gate(definition: dict[str, Any], machine: str) -> list[str]:
    """Paths from an approval state to a mutating task that pass no before-change brake check: an approval given
    before the brake was engaged must not be usable. A check that fails (its Catch) lets nothing through."""
    states = dict(states_of(definition))
    problems: dict[str, str] = {}
    for approval in [name for name, state in states.items() if is_approval(state)]:
        parents: dict[str, str | None] = {approval: None}
        queue = deque([approval])
        while queue:
            name = queue.popleft()
            state = states[name]
            following = successors(state)
            if name != approval and is_brake_check(state, machine):
                following = [catcher["Next"] for catcher in state.get("Catch", [])]
            elif name != approval and (reason := mutating_reason(state, machine)):
                path = [name]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])  # type: ignore[arg-type]
                problems.setdefault(
                    name, f"{name!r} ({reason}) is reachable from an approval without a brake check: {' -> '.join(reversed(path))}"
                )
            for next_name in following:
                if next_name not in parents:
                    parents[next_name] = name
                    queue.append(next_name)
    return list(problems.values())


def asl_fidelity(playbook: project.Playbook, substitutions: set[str]) -> list[str]:
    text = playbook.asl_path.read_text()
    definition = json.loads(text)
    problems = []
    if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
        problems.append("QueryLanguage must be JSONPath")
    if LITERAL_ARN.search(text):
        problems.append("literal ARN with an account id; use a ${Placeholder} from DefinitionSubstitutions")
    for missing in sorted(set(PLACEHOLDER.findall(text)) - substitutions):
        problems.append(f"${{{missing}}} has no DefinitionSubstitutions entry")
    names = dict(states_of(definition))
    for name, state in names.items():
        if state.get("QueryLanguage") == "JSONata" or "Arguments" in state or "Assign" in state:
            problems.append(f"{name!r}: JSONata and Variables are not used (JSONPath only)")
        for following in successors(state):
            if following not in names:
                problems.append(f"{name!r}: next state {following!r} does not exist")
        resource = str(state.get("Resource", ""))
        if resource.startswith("arn:aws:lambda:") or (resource.startswith("${") and state.get("Type") == "Task"):
            problems.append(f"{name!r}: invoke Lambda through arn:aws:states:::lambda:invoke")
        if resource.endswith(".waitForTaskToken") and not ({"TimeoutSeconds", "TimeoutSecondsPath"} & set(state)):
            problems.append(f"{name!r}: a waitForTaskToken state needs TimeoutSeconds")
        if resource.startswith(SDK_PREFIX):
            for key in state.get("Parameters", {}):
                if not key[0].isupper():
                    problems.append(f"{name!r}: aws-sdk parameter {key!r} must be PascalCase")
    try:
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        AmazonStateLanguageParser.parse(PLACEHOLDER.sub("placeholder", text))
    except Exception as error:  # noqa: BLE001 - any parser failure is a finding
        problems.append(f"ASL does not parse: {error}")
    return problems


IAM_PREFIX = {"sfn": "states", "cloudwatchlogs": "logs", "eventbridge": "events", "costexplorer": "ce"}


def task_actions(definition: dict[str, Any]) -> dict[str, str]:
    """IAM action each service-integration Task state needs, by state name."""
    needed = {}
    for name, state in states_of(definition):
        resource = str(state.get("Resource", ""))
        if resource.startswith(SDK_PREFIX):
            service, action = resource.removeprefix(SDK_PREFIX).split(":")[:2]
            api = f"{IAM_PREFIX.get(service, service)}:{action[0].upper()}{action[1:]}"
            needed[name] = IAM_ACTION.get(api, api)
        elif resource.startswith("arn:aws:states:::dynamodb:"):
            action = resource.rsplit(":", 1)[-1]
            needed[name] = f"dynamodb:{action[0].upper()}{action[1:]}"
    return needed


def granted_actions(properties: dict[str, Any]) -> set[str]:
    granted: set[str] = set()
    for policy in properties.get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement.get("Action", [])
            granted.update([actions] if isinstance(actions, str) else actions)
    return granted


def run() -> list[Check]:
    checks = []
    template = project.template()
    resources = template["Resources"]

    check = Check("template translates with SAM")
    try:
        from .local.account import translate

        translate({})
    except Exception as error:  # noqa: BLE001 - reported as a finding
        check.problems.append(str(error))
    checks.append(check)

    for playbook in project.state_machines().values():
        properties = resources[playbook.logical_id]["Properties"]
        substitutions = set(properties.get("DefinitionSubstitutions", {}))
        checks.append(Check(f"{playbook.id}: ASL fidelity", asl_fidelity(playbook, substitutions)))
        checks.append(Check(f"{playbook.id}: approval gate", approval_gate(playbook.definition, playbook.logical_id)))
        checks.append(Check(f"{playbook.id}: brake check before every change", brake_gate(playbook.definition, playbook.logical_id)))
        granted = granted_actions(properties)
        checks.append(
            Check(
                f"{playbook.id}: role grants every SDK task",
                [
                    f"{state!r} calls {action}, which the role does not grant"
                    for state, action in task_actions(playbook.definition).items()
                    if action not in granted
                ],
            )
        )
        schema_check = Check(f"{playbook.id}: input schema")
        if not playbook.input_schema.exists():
            schema_check.problems.append(f"missing {playbook.input_schema.name}")
        else:
            Draft202012Validator.check_schema(json.loads(playbook.input_schema.read_text()))
        checks.append(schema_check)
        if playbook.id in project.SAFETY_STATE_MACHINES:
            continue  # undo runs in the playbooks' own scenarios (`undo:`), after the run it undoes
        scenario_check = Check(f"{playbook.id}: scenarios")
        try:
            from . import scenario

            if not scenario.scenarios(playbook.id):
                scenario_check.problems.append("no scenarios")
        except project.ProjectError as error:
            scenario_check.problems.append(str(error))
        checks.append(scenario_check)

    for path in sorted(project.SCHEMAS.glob("*.json")):
        check = Check(f"schema {path.name}")
        try:
            Draft202012Validator.check_schema(json.loads(path.read_text()))
        except Exception as error:  # noqa: BLE001 - reported as a finding
            check.problems.append(str(error))
        checks.append(check)
    return checks
