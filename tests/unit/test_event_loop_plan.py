"""event-loop's plan is what the two approvals cover and the state machine applies: the containment (disable the rule,
stop what runs), the fix (restrict the pattern to the raw bucket's incoming/ prefix, re-enable, the alarm), each with
the before-state its rollback restores, and nothing at all when there is no loop.

The fix's change states read `$.plan.rule` and `$.plan.alarm`; the approval page shows each action's description and
before -> after; the undo reads the rollbacks.
"""

from __future__ import annotations

import json
from typing import Any

import event_loop
import pytest
from test_event_loop_logic import CONFIG, LOOSE, PIPELINE, TARGET, findings, ids

FIXED = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": ["raw-data-bucket"]}, "object": {"key": [{"prefix": "incoming/"}]}},
}


def loop_plan(**kwargs: Any) -> dict[str, Any]:
    return event_loop.plan(TARGET, findings(**kwargs), CONFIG, PIPELINE)


def test_the_fixed_pattern_admits_only_new_objects_under_incoming_in_the_raw_bucket() -> None:
    assert event_loop.fixed_pattern("raw-data-bucket") == FIXED


def test_the_containment_disables_the_rule_and_stops_what_runs() -> None:
    plan = loop_plan(pattern=LOOSE, alarm=False)
    assert plan["containment"]["actions"] == [
        {
            "id": "disable_rule",
            "api": "events:DisableRule",
            "target": "etl-s3-events",
            "description": "Disable the EventBridge rule etl-s3-events (breaks the event chain), then wait 300 s for in-flight executions.",
            "before": {"state": "ENABLED"},
            "after": {"state": "DISABLED"},
            "rollback": {"api": "events:EnableRule", "parameters": {"Name": "etl-s3-events"}},
        },
        {
            "id": "stop_running_executions",
            "api": "states:StopExecution",
            "target": "etl-workflow",
            "description": "Stop every RUNNING execution of etl-workflow (now 2000) with the cause 'Event loop mitigation', "
            "paced to the StopExecution quota.",
            "before": {"running": 2000},
            "after": {"running": 0, "cause": "Event loop mitigation"},
            "rollback": None,
        },
    ]
    summary = "An event loop on etl-workflow: the rule admits the processed bucket; 2000 executions are RUNNING."
    assert plan["summary"] == summary
    assert plan["containment"]["summary"] == "Step 1 of 2, contain the loop: " + summary
    assert plan["containment"]["case"] == "event-loop-containment"
    assert plan["containment"]["evidence"] == plan["evidence"]
    assert plan["containment"]["recommendations"] == []


def test_the_fix_restricts_the_pattern_re_enables_and_creates_the_alarm() -> None:
    plan = loop_plan(pattern=LOOSE, alarm=False)
    assert plan["fix"]["actions"] == [
        {
            "id": "restrict_rule_pattern",
            "api": "events:PutRule",
            "target": "etl-s3-events",
            "description": "Restrict etl-s3-events to raw-data-bucket objects under incoming/ (the rule stays disabled until re-enabled).",
            "before": {"eventPattern": LOOSE},
            "after": {"eventPattern": FIXED, "state": "DISABLED"},
            # PutRule without State enables the rule: the rollback names the state the rule had before the run
            "rollback": {
                "api": "events:PutRule",
                "parameters": {"Name": "etl-s3-events", "EventPattern": json.dumps(LOOSE), "State": "ENABLED"},
            },
        },
        {
            "id": "enable_rule",
            "api": "events:EnableRule",
            "target": "etl-s3-events",
            "description": "Re-enable etl-s3-events with the fixed pattern.",
            "before": {"state": "DISABLED"},
            "after": {"state": "ENABLED"},
            "rollback": {"api": "events:DisableRule", "parameters": {"Name": "etl-s3-events"}},
        },
        {
            "id": "create_execution_rate_alarm",
            "api": "cloudwatch:PutMetricAlarm",
            "target": "etl-execution-rate-spike",
            "description": "Create the alarm etl-execution-rate-spike: ExecutionsStarted > 200 per minute for 2 minutes.",
            "before": {"exists": False},
            "after": {"exists": True, "threshold": 200, "periodSeconds": 60, "evaluationPeriods": 2},
            "rollback": {"api": "cloudwatch:DeleteAlarms", "parameters": {"AlarmNames": ["etl-execution-rate-spike"]}},
        },
    ]
    assert plan["actions"] == plan["containment"]["actions"] + plan["fix"]["actions"]
    assert plan["fix"]["case"] == "event-loop-fix"
    assert plan["fix"]["summary"] == (
        "Step 2 of 2, fix the rule etl-s3-events and re-enable it. The loop is contained; the pattern changes as the diff shows."
    )
    diff = [f"Pattern diff: {line}" for line in event_loop.pattern_diff(LOOSE, FIXED)]
    assert diff and plan["fix"]["evidence"] == diff + plan["evidence"]
    # What the fix's change states read: the pattern and description PutRule writes, the alarm's name, machine, threshold.
    assert plan["rule"] == {"fixedPattern": json.dumps(FIXED), "description": ""}
    assert plan["alarm"] == {"name": "etl-execution-rate-spike", "stateMachineArn": PIPELINE["stateMachineArn"], "threshold": 200}
    assert plan["recommendations"] == event_loop.RECOMMENDATIONS


def test_a_rule_disabled_before_the_run_is_rolled_back_disabled() -> None:
    plan = loop_plan(pattern=LOOSE, state="DISABLED")
    assert ids(plan["containment"]["actions"]) == ["stop_running_executions"]
    restrict = next(action for action in plan["fix"]["actions"] if action["id"] == "restrict_rule_pattern")
    assert restrict["rollback"] == {
        "api": "events:PutRule",
        "parameters": {"Name": "etl-s3-events", "EventPattern": json.dumps(LOOSE), "State": "DISABLED"},
    }


def test_put_rule_keeps_the_rules_own_description() -> None:
    measured = findings(pattern=LOOSE)
    measured["rule"]["described"] = {"Description": "raw files to the workflow"}
    plan = event_loop.plan(TARGET, measured, CONFIG, PIPELINE)
    assert plan["rule"]["description"] == "raw files to the workflow"


def test_repeating_keys_alone_are_a_loop_and_say_so() -> None:
    plan = loop_plan(pattern=LOOSE, admits=False)
    assert plan["case"] == "event-loop"
    assert plan["summary"] == "An event loop on etl-workflow: object keys repeat; 2000 executions are RUNNING."


def test_an_admitted_processed_bucket_alone_is_a_loop() -> None:
    plan = loop_plan(pattern=LOOSE, repeating=False)
    assert plan["case"] == "event-loop"
    assert ids(plan["actions"]) == ["disable_rule", "stop_running_executions", "restrict_rule_pattern", "enable_rule"]


def test_the_evidence_shows_the_rate_the_keys_the_pattern_and_the_notifications() -> None:
    measured = findings(pattern=LOOSE)
    measured["measured"]["eventBridgeNotifications"] = {"raw-data-bucket": True, "processed-data-bucket": False, "other": None}
    measured["measured"]["admitsRawOutsideIncoming"] = ["probe.csv", "tmp/probe.csv"]
    measured["measured"]["admitsProcessedBucket"] = ["probe.csv", "incoming/probe.csv"]
    measured["measured"]["startedPerMinute"] = [{"minute": "m1", "started": 880}, {"minute": "m2", "started": 900}]
    measured["measured"]["repeatingKeys"] = [
        {"object": "processed-data-bucket/incoming/a.csv", "executions": 50},
        {"object": "processed-data-bucket/incoming/b.csv", "executions": 7},
    ]
    plan = event_loop.plan(TARGET, measured, CONFIG, PIPELINE)
    assert plan["evidence"] == [
        "Executions started per minute (last 10 minutes): 880, 900; peak 900 (threshold 200).",
        "RUNNING executions of etl-workflow: 2000.",
        "Of the 100 most recent executions, 100 were started by objects in processed-data-bucket.",
        "Repeating object keys: processed-data-bucket/incoming/a.csv x50, processed-data-bucket/incoming/b.csv x7 (a key counts from 3 executions).",
        f"Rule etl-s3-events (ENABLED) pattern: {json.dumps(LOOSE, sort_keys=True)}.",
        "The pattern admits processed-data-bucket: yes (probe.csv, incoming/probe.csv).",
        "EventBridge notifications: raw-data-bucket: on, processed-data-bucket: off, other: unknown.",
        "Execution-rate alarm etl-execution-rate-spike: exists.",
        "The pattern also admits raw-bucket keys outside incoming/: probe.csv, tmp/probe.csv.",
    ]


def test_the_evidence_of_a_quiet_rule_says_none_and_no() -> None:
    measured = findings(pattern=FIXED, repeating=False, admits=False, alarm=False)
    measured["measured"]["startedPerMinute"] = []
    evidence = event_loop.plan(TARGET, measured, CONFIG, PIPELINE)["evidence"]
    assert evidence[0] == "Executions started per minute (last 10 minutes): no datapoints; peak 900 (threshold 200)."
    assert "Repeating object keys: none (a key counts from 3 executions)." in evidence
    assert "The pattern admits processed-data-bucket: no." in evidence
    assert "Execution-rate alarm etl-execution-rate-spike: missing." in evidence
    assert len(evidence) == 8


@pytest.mark.parametrize(("peak", "case"), [(200, "no-spike"), (201, "traffic-spike")])
def test_without_a_loop_nothing_is_proposed_whatever_the_rate(peak: int, case: str) -> None:
    measured = findings(pattern=FIXED, repeating=False, admits=False, alarm=False)
    measured["measured"]["peakPerMinute"] = peak
    plan = event_loop.plan(TARGET, measured, CONFIG, PIPELINE)
    summary = (
        f"No loop and no spike: at most {peak} executions per minute (threshold 200)."
        if case == "no-spike"
        else f"A genuine traffic spike: {peak} executions per minute for distinct objects, and the rule admits only "
        "raw-data-bucket; nothing to contain."
    )
    assert plan == {
        "case": case,
        "summary": summary,
        "actions": [],
        "containment": None,
        "fix": None,
        "rule": None,
        "alarm": None,
        "evidence": plan["evidence"],
        "recommendations": [],
    }


def test_a_disabled_rule_is_not_disabled_again_and_a_fixed_pattern_not_rewritten() -> None:
    plan = loop_plan(pattern=FIXED, state="DISABLED")
    assert ids(plan["actions"]) == ["stop_running_executions", "enable_rule"]
    assert plan["fix"]["evidence"] == plan["evidence"]
