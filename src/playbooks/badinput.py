"""Bad console input for every playbook, derived from its input schema, and what the deployed playbook does with it.

Every way one field can break the schema (a value of another type, null, out of range, too short or too long, off
its pattern or enum, an unknown field, a required field left out, input that is not an object) is started as an
execution in the local account. Each must end FAILED with `InvalidInput` at the first state, with a cause that
names the field, and change nothing. The candidates are kept only when the schema itself rejects them, so the list
follows the schemas as they change; they are deterministic, so the counts in docs/assurance.md are stable.
(The hypothesis test in tests/unit/test_bad_input.py explores the same ground at random, in-process.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from . import project, scenario, simulate
from .local.account import TERMINAL, LocalAccount
from .local.recorder import RECORDER

# What a field must not accept, per JSON type it expects: one value of every other kind.
OTHER_KINDS: list[Any] = [None, True, 7, 1.5, "text", [], {}]
# Strings that break most patterns: empty, whitespace and path/shell characters, and far too long.
BAD_STRINGS = ["", "has space", "../../etc/passwd", "a:b/c*?", "x" * 10_000]
DEADLINE_S = 30.0


@dataclass
class Case:
    label: str  # e.g. "config.verifyWaitSeconds = -1"
    names: str  # the field the cause must name ("input" for the document as a whole)
    document: Any


@cache
def _schema(name: str) -> dict[str, Any]:  # read-only: callers build new documents, never change a schema
    return dict(json.loads((project.FUNCTIONS / "schemas" / name).read_text()))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    return _schema(node["$ref"]) if "$ref" in node else node


def _broken_values(node: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Values one field of schema `node` should refuse (the schema filters out those it accepts after all)."""
    for value in OTHER_KINDS:
        yield json.dumps(value), value
    if "minimum" in node:
        yield f"{node['minimum']} - 1", node["minimum"] - 1
    if "maximum" in node:
        yield f"{node['maximum']} + 1", node["maximum"] + 1
    if "minLength" in node:
        yield "too short", "x" * max(node["minLength"] - 1, 0)
    if "maxLength" in node:
        yield "too long", "x" * (node["maxLength"] + 1)
    if "enum" in node or "const" in node:
        yield '"not-a-choice"', "not-a-choice"
    if node.get("type") == "string" or "pattern" in node or "anyOf" in node:
        for text in BAD_STRINGS:
            yield repr(text if len(text) < 20 else text[:8] + "..."), text


def _variants(node: dict[str, Any], base: dict[str, Any], path: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(label, field named, document) for every single-field break of the object `node` within `base`."""
    node = _resolve(node)
    properties = node.get("properties", {})
    for key in node.get("required", []):
        if key in base:
            yield f"{path}{key} left out", key, {k: v for k, v in base.items() if k != key}
    if node.get("additionalProperties") is False:
        yield f"{path}unexpected field", "unexpected", base | {"unexpected": 1}
    for key, child in properties.items():
        child = _resolve(child)
        for label, value in _broken_values(child):
            yield f"{path}{key} = {label}", key, base | {key: value}
        if child.get("type") == "object" or "$ref" in properties[key]:
            given = base.get(key)
            inner_base = given if isinstance(given, dict) else _minimal(child)
            for label, named, inner in _variants(child, inner_base, f"{path}{key}."):
                yield label, named, base | {key: inner}


def _minimal(node: dict[str, Any]) -> dict[str, Any]:
    """The smallest object `node` accepts: its required fields, from their examples, enums or consts."""
    found: dict[str, Any] = {}
    for key in node.get("required", []):
        child = _resolve(node["properties"][key])
        found[key] = child["const"] if "const" in child else (child.get("enum") or child.get("examples") or ["x"])[0]
    return found


def base_input(playbook_id: str) -> dict[str, Any]:
    """A valid console input from the playbook's own scenarios (the first started from the console), as a dry run;
    for a state machine without scenarios of its own (undo), the schema's smallest example."""
    validator = _validator(playbook_id)
    if playbook_id in project.SAFETY_STATE_MACHINES:
        example = _minimal(_schema(f"{playbook_id}.input.json")) | {"dryRun": True}
        if validator.is_valid(example):
            return example
    for loaded in scenario.scenarios(playbook_id):
        document = loaded.data.get("trigger", {}).get("input")
        if isinstance(document, dict) and validator.is_valid(document | {"dryRun": True}):
            return dict(document) | {"dryRun": True}
    raise project.ProjectError(f"{playbook_id}: no scenario starts it from valid console input")


def _validator(playbook_id: str) -> Any:
    return project.import_function_module("shared.schemas").validator(f"{playbook_id}.input.json")


def cases(playbook_id: str) -> list[Case]:
    """Every single-field break of the playbook's console input that its schema rejects, plus non-object input."""
    validator = _validator(playbook_id)
    base = base_input(playbook_id)
    found = [Case(f"input = {label}", "input", value) for label, value in ((json.dumps(v), v) for v in OTHER_KINDS if v != {})]
    seen = {json.dumps(c.document, sort_keys=True) for c in found}
    for label, named, document in _variants(_schema(f"{playbook_id}.input.json"), base, ""):
        key = json.dumps(document, sort_keys=True)
        if key not in seen and not validator.is_valid(document):
            seen.add(key)
            found.append(Case(label, named, document))
    return found


def run(playbook_id: str) -> dict[str, Any]:
    """Start every case in one local account; return the counts and every case that was not refused cleanly."""
    import warnings

    warnings.filterwarnings("ignore")
    tried = cases(playbook_id)
    problems: list[str] = []
    refused = 0
    slowest_s, most_states = 0.0, 0
    with LocalAccount() as account:
        for case in tried:
            before = len(RECORDER.calls)
            started = time.perf_counter()
            arn = account.start(playbook_id, case.document)  # type: ignore[arg-type]  # bad input is the point
            end = time.monotonic() + DEADLINE_S
            while (description := account.describe(arn))["status"] not in TERMINAL and time.monotonic() < end:
                time.sleep(0.005)
            slowest_s = max(slowest_s, time.perf_counter() - started)
            states = [e["stateEnteredEventDetails"]["name"] for e in account.history(arn) if "stateEnteredEventDetails" in e]
            most_states = max(most_states, len(states))
            changed = simulate.playbook_mutations(account, playbook_id, RECORDER.calls[before:])
            if description["status"] != "FAILED" or description.get("error") != "InvalidInput":
                problems.append(f"{case.label}: ended {description['status']} {description.get('error')}, not refused")
            elif case.names not in (description.get("cause") or ""):
                problems.append(f"{case.label}: the cause does not name {case.names!r}: {description.get('cause')!r}")
            elif not changed:
                refused += 1
            if changed:
                problems.append(f"{case.label}: changed {changed}")
        unrelated, wrongly_started = unrelated_alarm_events(account, playbook_id)
        started_wrongly = {label: arns for label, arns in wrongly_started.items() if arns}
        problems += [f"{label} started {arns}" for label, arns in started_wrongly.items()]
        account.stop_executions()
    return {
        "playbook": playbook_id,
        "unrelated_events": unrelated,
        "unrelated_ignored": unrelated - len(started_wrongly),
        "tried": len(tried),
        "refused": refused,
        "most_states": most_states,
        "slowest_s": round(slowest_s, 3),
        "problems": problems,
    }


def unrelated_alarm_events(account: LocalAccount, playbook_id: str) -> tuple[int, dict[str, list[str]]]:
    """For each alarm whose rule starts the playbook (directly, or through a function that names it): the alarm
    going back to OK or to INSUFFICIENT_DATA, and another alarm in ALARM, must start nothing. Where the rule starts
    the playbook directly, the alarm itself in ALARM must start exactly one run (else the zeros prove nothing).
    Returns (events tried, {event label: executions it wrongly started})."""
    machine = account.state_machine_arn(playbook_id)
    # functions that start the playbook on an alarm's behalf (execution-stuck's fan-out): their environment names it
    starters = {f.name for f in account.functions.values() if machine in f.environment.values()}
    alarms: dict[str, bool] = {}  # alarm name -> does its rule start the playbook directly?
    for rule in account.rules:
        direct = any(t["Arn"] == machine for t in rule.targets)
        via_function = any(t["Arn"].rsplit(":", 1)[-1] in starters for t in rule.targets)
        if rule.pattern.get("source") != ["aws.cloudwatch"] or not (direct or via_function):
            continue
        names = [arn.rsplit(":", 1)[-1] for arn in rule.pattern.get("resources", [])]
        names += rule.pattern.get("detail", {}).get("alarmName", [])
        alarms |= dict.fromkeys(names, direct)
    found: dict[str, list[str]] = {}
    tried = 0
    for alarm, direct in alarms.items():
        event = account.alarm_event(alarm)
        other = dict(event, resources=[event["resources"][0].replace(alarm, "SomeoneElsesAlarm")])
        other["detail"] = dict(event["detail"], alarmName="SomeoneElsesAlarm")
        for label, variant in (
            (f"{alarm} back to OK", account.alarm_event(alarm, "OK")),
            (f"{alarm} to INSUFFICIENT_DATA", account.alarm_event(alarm, "INSUFFICIENT_DATA")),
            (f"another alarm than {alarm}", other),
        ):
            found[label] = account.put_event(variant)
            tried += 1
        # A fan-out function starts one run per stuck execution, and there are none here: only a direct rule
        # shows on its own that the alarm itself gets through.
        started = account.put_event(event) if direct else ["skipped"]
        if direct and len(started) != 1:
            found[f"{alarm} in ALARM (should start one run)"] = started or ["nothing"]
    # and every other alarm of the template, in ALARM, starts other playbooks but never this one
    name = machine.rsplit(":", 1)[-1]
    for other_alarm in account.client("cloudwatch").describe_alarms()["MetricAlarms"]:
        if other_alarm["AlarmName"] in alarms:
            continue
        started = account.put_event(account.alarm_event(other_alarm["AlarmName"]))
        found[f"{other_alarm['AlarmName']} in ALARM"] = [arn for arn in started if arn.split(":")[6] == name]
        tried += 1
    return tried, found
