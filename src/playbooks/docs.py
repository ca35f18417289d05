"""Documentation generated from the ASL, the template and the schemas: Mermaid diagrams and one page per playbook."""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any

from . import project, validate

RUNBOOK_SECTIONS = {
    "lambda-throttling": "Runbook: Lambda Throttling (Error Rate Spike)",
    "execution-stuck": "Runbook: Step Functions Execution Stuck (Timeout)",
    "event-loop": "Runbook: S3 Event Loop (Infinite Triggering)",
    "cost-spike": "Runbook: Cost Spike (Budget Alert)",
    "access-denied": "Runbook: IAM Permission Errors (Access Denied)",
}
OUTCOMES = {"remediated", "no-action", "rejected", "expired", "dry-run", "already-running", "paused", "escalated", "undone", "failed"}
PAGES = project.ROOT / "docs" / "playbooks"
OPERATORS = {
    "StringEquals": "==", "NumericEquals": "==", "BooleanEquals": "==", "NumericGreaterThan": ">", "NumericLessThan": "<",
    "NumericGreaterThanEquals": ">=", "NumericLessThanEquals": "<=", "IsPresent": "is present:", "StringMatches": "matches",
}  # fmt: skip


def outcome_of_state(state: dict[str, Any]) -> str | None:
    """The outcome a Pass state records ("Result" into $.outcome), or a Pass/End state's literal outcome."""
    if state.get("Type") != "Pass":
        return None
    if state.get("ResultPath") == "$.outcome" and state.get("Result") in OUTCOMES:
        return str(state["Result"])
    parameters = state.get("Parameters") or {}
    return str(parameters["outcome"]) if parameters.get("outcome") in OUTCOMES else None


def describe_rule(rule: dict[str, Any]) -> str:
    if "And" in rule or "Or" in rule:
        joiner = " and " if "And" in rule else " or "
        return joiner.join(describe_rule(part) for part in rule.get("And") or rule.get("Or") or [])
    if "Not" in rule:
        return f"not ({describe_rule(rule['Not'])})"
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        operator = OPERATORS.get(key.removesuffix("Path"), key)
        return f"{rule.get('Variable', '')} {operator} {json.dumps(value)}"
    return rule.get("Variable", "")


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def mermaid(definition: dict[str, Any], machine: str) -> str:
    """A flowchart: approval states, mutating tasks and outcomes visibly distinct (classes approval/mutating/outcome)."""
    states = dict(validate.states_of(definition))
    ids = {name: f"s{index}" for index, name in enumerate(states)}
    lines = ["flowchart TD", f"  start((start)) --> {ids[definition['StartAt']]}"]
    classes: dict[str, list[str]] = {"approval": [], "mutating": [], "outcome": [], "failure": []}
    for name, state in states.items():
        node = ids[name]
        kind = state.get("Type")
        outcome = outcome_of_state(state)
        if kind == "Choice":
            lines.append(f"  {node}{{{_label(name)}}}")
        elif validate.is_approval(state):
            lines.append(f"  {node}{{{{{_label(name)}}}}}")
            classes["approval"].append(node)
        elif outcome or kind in ("Succeed", "Fail"):
            text = f"{name} ({outcome})" if outcome else name
            lines.append(f"  {node}([{_label(text)}])")
            classes["failure" if kind == "Fail" or outcome == "failed" else "outcome"].append(node)
        else:
            lines.append(f"  {node}[{_label(name)}]")
            if validate.mutating_reason(state, machine):
                classes["mutating"].append(node)
    for name, state in states.items():
        node = ids[name]
        if "Next" in state:
            lines.append(f"  {node} --> {ids[state['Next']]}")
        for rule in state.get("Choices", []):
            lines.append(f"  {node} -->|{_label(describe_rule(rule))}| {ids[rule['Next']]}")
        if "Default" in state:
            lines.append(f'  {node} -->|"otherwise"| {ids[state["Default"]]}')
        for catcher in state.get("Catch", []):
            lines.append(f"  {node} -.->|{_label(', '.join(catcher['ErrorEquals']))}| {ids[catcher['Next']]}")
    lines += [
        "  classDef approval fill:#fff3cd,stroke:#b58900,stroke-width:2px",
        "  classDef mutating fill:#f8d7da,stroke:#c0392b,stroke-width:2px",
        "  classDef outcome fill:#d4edda,stroke:#2e7d32",
        "  classDef failure fill:#eeeeee,stroke:#555555",
    ]
    lines += [f"  class {','.join(nodes)} {kind}" for kind, nodes in classes.items() if nodes]
    return "\n".join(lines) + "\n"


def gates(definition: dict[str, Any], machine: str) -> dict[str, list[str]]:
    """For each mutating state, the approval states that stand on every path to it."""
    states = dict(validate.states_of(definition))
    result = {}
    for name, state in states.items():
        if not validate.mutating_reason(state, machine):
            continue
        needed = []
        for approval, approval_state in states.items():
            if validate.is_approval(approval_state) and not _reachable_avoiding(definition, states, name, approval):
                needed.append(approval)
        result[name] = needed
    return result


def _reachable_avoiding(definition: dict[str, Any], states: dict[str, Any], target: str, avoid: str) -> bool:
    seen = {definition["StartAt"]}
    queue = deque([definition["StartAt"]])
    while queue:
        name = queue.popleft()
        if name == target:
            return True
        if name == avoid:
            continue
        for following in validate.successors(states[name]):
            if following not in seen:
                seen.add(following)
                queue.append(following)
    return False


def _resource_text(state: dict[str, Any], functions: dict[str, str]) -> str:
    resource = str(state.get("Resource", ""))
    if resource.startswith(validate.SDK_PREFIX):
        return "AWS SDK `" + ":".join(resource.removeprefix(validate.SDK_PREFIX).split(":")[:2]) + "`"
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        placeholder = str((state.get("Parameters") or {}).get("FunctionName", ""))
        key = placeholder.strip("${}").removesuffix("Arn")
        return f"Lambda ({functions.get(key, key)})"
    return f"`{resource.removeprefix('arn:aws:states:::')}`"


def page(playbook: project.Playbook) -> str:
    """docs/playbooks/<id>.md."""
    template = project.template()
    resources = template["Resources"]
    machine = resources[playbook.logical_id]["Properties"]
    definition = playbook.definition
    states = dict(validate.states_of(definition))
    substitutions = machine.get("DefinitionSubstitutions", {})
    functions = {}
    for key, value in substitutions.items():
        target = value.get("Fn::GetAtt", [None])[0] if isinstance(value, dict) else None
        if target in resources:
            functions[key.removesuffix("Arn")] = f"`{target}`: {resources[target]['Properties'].get('Description', '')}".strip()
    schema = json.loads(playbook.input_schema.read_text())
    example_path = project.EVENTS / f"{playbook.id}-console.json"
    example = (
        example_path.read_text().strip()
        if example_path.exists()
        else json.dumps(
            {k: (v.get("examples") or [""])[0] for k, v in schema.get("properties", {}).items() if k in schema.get("required", [])},
            indent=2,
        )
    )
    first_approval = next((n for n, s in states.items() if validate.is_approval(s)), None)
    lines = [
        f"# Playbook `{playbook.id}`",
        "",
        "<!-- generated by `make docs` from the ASL, template.yaml and the schemas; do not edit -->",
        "",
        definition.get("Comment", ""),
        "",
        f"Implements [{RUNBOOK_SECTIONS.get(playbook.id, playbook.id)}](../runbooks.md#{_anchor(RUNBOOK_SECTIONS.get(playbook.id, ''))}). "
        f"State machine: `{playbook.logical_id}` (`statemachines/{playbook.asl_path.name}`).",
        "",
        "## Triggers",
        "",
    ]
    lines += triggers(playbook, template)
    lines += [
        f"- Console: start the state machine with input that follows `schemas/{playbook.input_schema.name}`, e.g.",
        "",
        "```json",
        example,
        "```",
        "",
        "| field | type | meaning |",
        "| --- | --- | --- |",
    ]
    for field, spec in schema.get("properties", {}).items():
        kind = spec.get("type", "object (see `schemas/" + str(spec.get("$ref", "")) + "`)")
        required = " (required)" if field in schema.get("required", []) else ""
        lines.append(f"| `{field}`{required} | {kind} | {field_meaning(spec)} |")
    lines += ["", "## Flow", "", f"Also drawn as [{playbook.id}.svg]({playbook.id}.svg) (`make diagrams`).", ""]
    lines += ["```mermaid", mermaid(definition, playbook.logical_id).rstrip(), "```", "", "## Diagnosis", ""]
    for name, state in states.items():
        if name == first_approval:
            break
        if state.get("Type") == "Task" and not validate.mutating_reason(state, playbook.logical_id):
            lines.append(f"1. **{name}**: {_resource_text(state, functions)}")
    lines += ["", "## Branches", ""]
    for name, state in states.items():
        if state.get("Type") == "Choice":
            options = "; ".join(f"{describe_rule(rule)} → *{rule['Next']}*" for rule in state["Choices"])
            lines.append(f"- **{name}** {options}; otherwise → *{state.get('Default', '(none)')}*")
    lines += ["", "## Changes and the approvals that gate them", "", "| change | call | gated by |", "| --- | --- | --- |"]
    for name, approvals in gates(definition, playbook.logical_id).items():
        lines.append(f"| {name} | {validate.mutating_reason(states[name], playbook.logical_id)} | {', '.join(approvals) or '**none**'} |")
    lines += ["", "## Outcomes", ""]
    for name, state in states.items():
        outcome = outcome_of_state(state)
        if outcome:
            lines.append(f"- `{outcome}`: {name}")
        elif state.get("Type") == "Fail":
            error = f"`{state['Error']}`" if "Error" in state else f"the caught error's name (`{state.get('ErrorPath', '?')}`)"
            lines.append(f"- `failed` (execution FAILED, error {error}): {name}")
    lines += ["", "## Permissions", "", f"State machine role (`{playbook.logical_id}Role`):", ""]
    lines += _policies(machine)
    for text in functions.values():
        function = resources.get(text.split("`")[1], {})
        policies = function.get("Properties", {}).get("Policies")
        lines += ["", f"Function {text.split(':')[0]}:", ""] + (
            _policies(function["Properties"]) if policies else ["- no AWS permissions (logic only)"]
        )
    return "\n".join(lines) + "\n"


def field_meaning(spec: dict[str, Any]) -> str:
    """An input field's description, or the description of the schema it refers to."""
    if spec.get("description"):
        return str(spec["description"])
    if "$ref" in spec:
        referred = json.loads((project.SCHEMAS / str(spec["$ref"])).read_text())
        return str(referred.get("description", ""))
    return ""


def _refs(value: Any) -> set[str]:
    """Logical ids a template value refers to (Ref, Fn::GetAtt, ${Name} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= set(validate.PLACEHOLDER.findall(str(text)))
            found |= _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _refs(inner)
    return found


def _created_when(resource: dict[str, Any]) -> str:
    return f" (created when the condition `{resource['Condition']}` holds)" if "Condition" in resource else ""


def _alarm_text(logical_id: str, resources: dict[str, Any]) -> str:
    """An alarm, its metric, and what in the template feeds that metric (a scheduled publisher, metric filters)."""
    alarm = resources[logical_id]
    properties = alarm["Properties"]
    name = properties.get("AlarmName", {})
    named = f" (its name is the parameter `{name['Ref']}`)" if isinstance(name, dict) and "Ref" in name else ""
    namespace, metric = properties.get("Namespace"), properties.get("MetricName")
    shown = namespace.get("Fn::Sub", namespace) if isinstance(namespace, dict) else namespace
    text = f"CloudWatch alarm `{logical_id}`{named}{_created_when(alarm)} on `{shown} {metric}` entering ALARM"
    feeders = []
    for feeder_id, feeder in resources.items():
        feeder_properties = feeder.get("Properties", {})
        if feeder["Type"] == "AWS::Logs::MetricFilter":
            transforms = feeder_properties.get("MetricTransformations", [])
            if any(m.get("MetricNamespace") == namespace and m.get("MetricName") == metric for m in transforms):
                feeders.append(f"the metric filter `{feeder_id}`{_created_when(feeder)}")
        elif (
            feeder["Type"] == "AWS::Serverless::Function"
            and isinstance(namespace, str)
            and namespace in json.dumps(feeder_properties.get("Policies", []))
        ):
            schedules = [e["Properties"]["Schedule"] for e in (feeder_properties.get("Events") or {}).values() if e["Type"] == "Schedule"]
            when = f", run on the schedule `{schedules[0]}`" if schedules else ""
            feeders.append(f"the function `{feeder_id}`{when}")
    if feeders:
        text += "; the metric comes from " + ", ".join(feeders)
    return text + "."


def _event_text(event_name: str, event: dict[str, Any], resources: dict[str, Any]) -> str:
    properties = event.get("Properties", {})
    if event["Type"] == "EventBridgeRule":
        pattern = properties.get("Pattern", {})
        alarms = [r for r in _refs(pattern) if resources.get(r, {}).get("Type") == "AWS::CloudWatch::Alarm"]
        by_name = _refs(pattern.get("detail", {}).get("alarmName", []))
        alarms += [
            r
            for r, resource in resources.items()
            if resource["Type"] == "AWS::CloudWatch::Alarm" and _refs(resource["Properties"].get("AlarmName")) & by_name
        ]
        what = " ".join(_alarm_text(alarm, resources) for alarm in sorted(set(alarms))) or "an EventBridge event."
        return f"EventBridge rule `{event_name}`: {what} Pattern: `{json.dumps(pattern, sort_keys=True)}`"
    if event["Type"] == "SNS":
        (topic,) = _refs(properties.get("Topic"))
        publishers = [
            f"`{r}` ({resource['Type']}{_created_when(resource).replace(' (', ', ').rstrip(')')})"
            for r, resource in resources.items()
            if resource["Type"] not in ("AWS::SNS::TopicPolicy", "AWS::Serverless::Function") and topic in _refs(resource.get("Properties"))
        ]
        return (
            f"SNS topic `{topic}` (stack output `{topic}Arn`), published to by "
            + (", ".join(publishers) or "whatever its policy allows")
            + "."
        )
    if event["Type"] == "Schedule":
        return f"the schedule `{properties.get('Schedule')}`."
    return f"`{event_name}` ({event['Type']})."


def triggers(playbook: project.Playbook, template: dict[str, Any]) -> list[str]:
    """Everything the template wires to start this playbook: the state machine's own events, and the events of every
    function allowed to start it (a fan-out or starter function)."""
    resources = template["Resources"]
    machine = resources[playbook.logical_id]["Properties"]
    lines = [f"- {_event_text(name, event, resources)}" for name, event in (machine.get("Events") or {}).items()]
    for function_id, function in resources.items():
        properties = function.get("Properties", {})
        if function["Type"] != "AWS::Serverless::Function" or playbook.logical_id not in _refs(properties.get("Policies")):
            continue
        description = properties.get("Description", "")
        for name, event in (properties.get("Events") or {}).items():
            lines.append(f"- Through the function `{function_id}`: {description} It runs on its {_event_text(name, event, resources)}")
    return lines


def _policies(properties: dict[str, Any]) -> list[str]:
    lines = []
    for policy in properties.get("Policies", []):
        if isinstance(policy, str):
            lines.append(f"- managed policy `{policy}`")
            continue
        for name, value in policy.items():
            if name == "Statement":
                for statement in value:
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    resource = statement.get("Resource")
                    scope = (
                        "`*` (no resource-level permissions)"
                        if resource == "*"
                        else "scoped to the pipeline's or the stack's own resources"
                    )
                    lines.append(f"- {', '.join(f'`{a}`' for a in actions)}: {scope}")
            else:
                lines.append(f"- SAM policy template `{name}` on `{json.dumps(value, sort_keys=True)}`")
    return lines


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


SOURCE_MARK = "<!-- mermaid source sha256: {digest} -->"
ARCHITECTURE = project.ROOT / "docs" / "architecture.mmd"


def _browser() -> str | None:
    import os
    import shutil

    return os.environ.get("PUPPETEER_EXECUTABLE_PATH") or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None
    )


def svg(text: str) -> str:
    """Render Mermaid to SVG with mermaid-cli (`mmdc`), the renderer Mermaid's authors maintain, driving the system's
    Chromium (puppeteer's own browser download is skipped: `make diagrams`). The SVG ends with the source's digest, so
    a test can tell a stale drawing without a browser."""
    import os
    import shutil
    import subprocess
    import tempfile

    mmdc = shutil.which("mmdc") or next((str(p) for p in [project.ROOT / "node_modules" / ".bin" / "mmdc"] if p.exists()), None)
    if mmdc is None:
        raise project.ProjectError("SVG needs mermaid-cli: run `make diagrams` (npm) or use --format mermaid")
    browser = _browser()
    if browser is None:
        raise project.ProjectError("SVG needs Chromium (apt-get install chromium) or PUPPETEER_EXECUTABLE_PATH; or use --format mermaid")
    # Chromium will not start its sandbox as root (containers, CI); elsewhere the sandbox stays on.
    arguments = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with tempfile.TemporaryDirectory() as folder:
        source, target, config = f"{folder}/diagram.mmd", f"{folder}/diagram.svg", f"{folder}/puppeteer.json"
        with open(source, "w") as handle:
            handle.write(text)
        with open(config, "w") as handle:
            json.dump({"executablePath": browser, "args": arguments}, handle)
        command = [mmdc, "-p", config, "-i", source, "-o", target, "--quiet"]
        try:
            subprocess.run(command, check=True, timeout=180, capture_output=True, text=True)  # noqa: S603 - fixed arguments
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            last = ((getattr(error, "stderr", None) or "").strip().splitlines() or ["no output"])[-1]
            raise project.ProjectError(f"mermaid-cli could not draw the diagram: {last}") from None
        with open(target) as handle:
            drawing = handle.read()
    # Coordinates to a hundredth of a pixel: the drawing is the same and a third of the size.
    drawing = re.sub(r"(\d\.\d{2})\d+", r"\1", drawing)
    return drawing.rstrip() + "\n" + source_mark(text) + "\n"


def source_mark(text: str) -> str:
    import hashlib

    return SOURCE_MARK.format(digest=hashlib.sha256(text.encode()).hexdigest())


def diagram_sources() -> dict[str, str]:
    """Every diagram drawn as SVG in docs/ (relative path of the SVG -> its Mermaid source)."""
    sources = {f"docs/playbooks/{p.id}.svg": mermaid(p.definition, p.logical_id) for p in project.playbooks().values()}
    sources["docs/architecture.svg"] = ARCHITECTURE.read_text()
    return sources


def write_svgs() -> list[str]:
    written = []
    for relative, text in diagram_sources().items():
        path = project.ROOT / relative
        if not path.exists() or source_mark(text) not in path.read_text():
            path.write_text(svg(text))
            written.append(relative)
    return written


# The stack's own machinery: a grant on these changes nothing of the account's pipeline.
OWN_RESOURCES = {"LocksTable", "ApprovalsTable", "ApprovalTopic", "NotificationTopic"}
# Step Functions' logging needs these on "*" to deliver to the state machine's own log group.
LOG_DELIVERY = {"logs:CreateLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery", "logs:PutResourcePolicy"}
README = project.ROOT / "README.md"
CHANGES_BEGIN = "<!-- generated by `make docs` from template.yaml's grants: what the stack may change -->"
CHANGES_END = "<!-- end of generated list -->"


def _resource_names(resource: Any) -> list[str]:
    values = resource if isinstance(resource, list) else [resource]
    names = []
    for value in values:
        text = value.get("Fn::Sub", value) if isinstance(value, dict) else value
        text = text[0] if isinstance(text, list) else text
        text = re.sub(r"^arn:\$\{AWS::Partition\}:", "", str(text))
        names.append(text.replace("${AWS::Region}:${AWS::AccountId}:", "").replace("${AWS::AccountId}:", "").replace(":::", ":"))
    return names


def account_changes() -> list[str]:
    """Every change any principal of the stack is granted outside the stack's own bookkeeping, from the template."""
    from . import safety

    resources = project.template()["Resources"]
    rows: dict[str, tuple[set[str], set[str]]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] not in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                if _refs(statement.get("Resource")) & OWN_RESOURCES:
                    continue
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    operation = action.split(":", 1)[1]
                    if safety.is_read_only(operation) or action in safety.BOOKKEEPING_APIS or action in LOG_DELIVERY:
                        continue
                    names, principals = rows.setdefault(action, (set(), set()))
                    scoped = _resource_names(statement.get("Resource"))
                    for operator, condition in (statement.get("Condition") or {}).items():
                        for key, value in condition.items():
                            shown = ", ".join(_resource_names(value))
                            scoped = [f"{name} where {key} {operator.split(':')[-1]} {shown}" for name in scoped]
                    names.update(scoped)
                    principals.add(logical_id)
    lines = ["| action | on (as the template scopes it) | granted to |", "| --- | --- | --- |"]
    for action, (names, principals) in sorted(rows.items()):
        lines.append(f"| `{action}` | {', '.join(f'`{n}`' for n in sorted(names))} | {', '.join(f'`{p}`' for p in sorted(principals))} |")
    return lines


def readme_with_changes(text: str) -> str:
    """README.md with its generated list of what the stack may change brought up to date."""
    if CHANGES_BEGIN not in text:
        return text
    head, rest = text.split(CHANGES_BEGIN, 1)
    _, tail = rest.split(CHANGES_END, 1)
    return head + CHANGES_BEGIN + "\n\n" + "\n".join(account_changes()) + "\n\n" + CHANGES_END + tail


def expected_files() -> dict[str, str]:
    """Every generated documentation file (relative path -> content)."""
    files = {f"docs/playbooks/{p.id}.md": page(p) for p in project.playbooks().values()}
    files["README.md"] = readme_with_changes(README.read_text())
    from .local.aws.catalogue import render_doc

    files["docs/local-account.md"] = render_doc()
    return files


def write() -> list[str]:
    written = []
    for relative, content in expected_files().items():
        path = project.ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            written.append(relative)
    return written
