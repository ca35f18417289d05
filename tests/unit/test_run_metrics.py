"""Each run's outcome and timings reach CloudWatch (EMF), and the template's dashboard graphs exactly them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from playbooks import dashboard, project, scenario, simulate
from playbooks.local.account import LocalAccount
from playbooks.local.aws import emf

run_metrics = project.import_function_module("shared.run_metrics")


def test_timings_measure_decision_from_the_start_and_remediation_from_the_alarm() -> None:
    state = {
        "outcome": "remediated",
        "lock": {"now": "2026-12-01T10:00:00.000Z"},
        "trigger": {"kind": "alarm", "time": "2026-12-01T09:59:00Z"},
        "approval": {"decidedAt": "2026-12-01T10:04:30.000Z"},
    }
    now = datetime(2026, 12, 1, 10, 10, tzinfo=UTC)
    assert run_metrics.timings(state, now) == {"TimeToDecision": 270.0, "TimeToRemediated": 660.0}
    # no decision (expired) and not remediated: neither time
    assert run_metrics.timings({"outcome": "expired", "lock": {"now": "2026-12-01T10:00:00.000Z"}}, now) == {}


def test_an_emf_document_becomes_one_datum_per_metric_and_dimension_set() -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1796000000000,
                "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["Playbook"]], "Metrics": [{"Name": "Runs", "Unit": "Count"}]}],
            },
            "Playbook": "undo",
            "Runs": [1, 2],
        }
    )
    data = emf.metric_data(line)
    assert [(ns, d["MetricName"], d["Value"], d["Dimensions"]) for ns, d in data] == [
        ("N", "Runs", 1.0, [{"Name": "Playbook", "Value": "undo"}]),
        ("N", "Runs", 2.0, [{"Name": "Playbook", "Value": "undo"}]),
    ]


def test_a_document_that_breaks_the_specification_is_dropped() -> None:
    base: dict[str, Any] = {
        "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["Playbook"]], "Metrics": [{"Name": "Runs"}]}]}
    }
    assert emf.metric_data(json.dumps(base | {"Playbook": 7, "Runs": 1})) == []  # a dimension value must be a string
    assert emf.metric_data(json.dumps(base | {"Playbook": "x", "Runs": "one"})) == []  # a value must be a number
    assert emf.metric_data(json.dumps({"Playbook": "x", "Runs": 1})) == []  # no _aws: an ordinary log line
    assert emf.metric_data("not json") == []


def test_a_run_publishes_its_outcome_and_timings_to_cloudwatch() -> None:
    stats: dict[str, float] = {}

    def read(account: LocalAccount, _: simulate.Result) -> None:
        cloudwatch = account.client("cloudwatch")
        base = [{"Name": "Playbook", "Value": "lambda-throttling"}, {"Name": "service", "Value": "etl-playbooks"}]
        for name, dimensions in (
            ("Runs", [*base, {"Name": "Outcome", "Value": "remediated"}]),
            ("TimeToDecision", base),
            ("TimeToRemediated", base),
        ):
            points = cloudwatch.get_metric_statistics(
                Namespace="EtlPlaybooks",
                MetricName=name,
                Dimensions=dimensions,
                StartTime=datetime(2000, 1, 1, tzinfo=UTC),
                EndTime=datetime(2100, 1, 1, tzinfo=UTC),
                Period=86400 * 365,
                Statistics=["SampleCount"],
            )["Datapoints"]
            stats[name] = sum(p["SampleCount"] for p in points)

    result = simulate.run(scenario.load("lambda-throttling", "throttled"), inspect=read)
    assert result.outcome == "remediated"
    assert stats == {"Runs": 1, "TimeToDecision": 1, "TimeToRemediated": 1}


def test_the_dashboard_has_a_row_for_every_state_machine_with_every_outcome() -> None:
    body = json.loads(project.template()["Resources"]["PlaybooksDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    found = dashboard.widgets(body)
    outcomes = {w.title.split(":")[0]: {s.label for s in w.series} for w in found if w.title.endswith("runs by outcome")}
    assert set(outcomes) == set(project.state_machines())
    for machine, labels in outcomes.items():
        expected = {"undone" if machine == "undo" else "remediated"} | {
            "no-action", "rejected", "expired", "dry-run", "already-running", "paused", "escalated", "failed"
        }  # fmt: skip
        assert labels == expected, machine
    names = {(w.title.split(":")[0], s.name) for w in found for s in w.series}
    assert all((m, "TimeToDecision") in names for m in project.state_machines())
    assert all((m, "TimeToRemediated") in names for m in project.playbooks())


def test_the_picture_has_a_row_per_state_machine_with_its_outcome_counts() -> None:
    body = json.loads(project.template()["Resources"]["PlaybooksDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    found = dashboard.widgets(body)
    for widget in found:
        for series in widget.series:
            if series.label == "paused":
                series.total, series.count = 2, 2
    picture = dashboard.svg(found, "made-up totals")
    assert all(f">{machine}</text>" in picture for machine in project.state_machines())
    assert picture.count("<title>paused: 2</title>") == len(project.state_machines())
