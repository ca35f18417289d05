"""The template's CloudWatch dashboard, drawn from the local account's own metrics (the README's picture).

Scenarios run in the local account; after each, every metric the deployed dashboard graphs is read back from the
account's CloudWatch (where the report functions' EMF lines landed) and added up. The picture is an SVG with one
row per dashboard row: the outcome counts as a stacked bar, and the time widgets' average and maximum.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from . import scenario, simulate
from .local.account import LocalAccount
from .local.recorder import PRINCIPAL

COLOURS = {
    "remediated": "#2e7d32",
    "undone": "#2e7d32",
    "no-action": "#90a4ae",
    "dry-run": "#b0bec5",
    "rejected": "#f9a825",
    "expired": "#ffb300",
    "already-running": "#8d6e63",
    "paused": "#1565c0",
    "escalated": "#ef6c00",
    "failed": "#c62828",
}


@dataclass
class Series:
    """One line of a widget: its metric, statistic and label, and what the runs added up to."""

    namespace: str
    name: str
    dimensions: dict[str, str]
    stat: str
    label: str
    total: float = 0.0
    count: float = 0.0
    maximum: float = 0.0

    @property
    def value(self) -> float:
        if self.stat == "Sum":
            return self.total
        if self.stat == "Maximum":
            return self.maximum
        return self.total / self.count if self.count else 0.0


@dataclass
class Widget:
    title: str
    series: list[Series] = field(default_factory=list)


def widgets(body: dict[str, Any]) -> list[Widget]:
    """The metric widgets of a dashboard body, with CloudWatch's "..." (repeat the previous metric) expanded."""
    found = []
    for widget in body.get("widgets", []):
        if widget.get("type") != "metric":
            continue
        properties = widget["properties"]
        parsed = Widget(properties.get("title", ""))
        previous: list[Any] = []
        for row in properties.get("metrics", []):
            options = row[-1] if row and isinstance(row[-1], dict) else {}
            parts = [part for part in row if not isinstance(part, dict)]
            if parts == ["..."]:
                parts = previous
            previous = parts
            namespace, name, *pairs = parts
            parsed.series.append(
                Series(
                    namespace=namespace,
                    name=name,
                    dimensions=dict(zip(pairs[::2], pairs[1::2], strict=True)),
                    stat=options.get("stat", properties.get("stat", "Average")),
                    label=options.get("label", name),
                )
            )
        found.append(parsed)
    return found


def read(account: LocalAccount, found: list[Widget]) -> None:
    """Add what the account's CloudWatch holds for each series to its totals."""
    cloudwatch = account.client("cloudwatch")
    end = datetime.now(UTC) + timedelta(hours=1)
    token = PRINCIPAL.set("dashboard")
    try:
        for widget in found:
            for series in widget.series:
                points = cloudwatch.get_metric_statistics(
                    Namespace=series.namespace,
                    MetricName=series.name,
                    Dimensions=[{"Name": k, "Value": v} for k, v in series.dimensions.items()],
                    StartTime=end - timedelta(days=1),
                    EndTime=end,
                    Period=86400,
                    Statistics=["Sum", "SampleCount", "Maximum"],
                )["Datapoints"]
                series.total += sum(p["Sum"] for p in points)
                series.count += sum(p["SampleCount"] for p in points)
                series.maximum = max([series.maximum, *(p["Maximum"] for p in points)])
    finally:
        PRINCIPAL.reset(token)


# The README's picture: for each playbook its undo scenarios and the brake, circuit, rejected, expired and dry runs.
PICTURE_SCENARIOS = ("brake-engaged", "circuit-open", "rejected", "expired", "dry-run")


def picture_runs() -> list[tuple[str, str]]:
    from . import project

    return [
        (playbook, item.name)
        for playbook in project.playbooks()
        for item in scenario.scenarios(playbook)
        if item.name.endswith("-undo") or item.name in PICTURE_SCENARIOS
    ]


def collect(runs: Iterable[tuple[str, str]], on_progress: Callable[[str], None] | None = None) -> list[Widget]:
    """Run each (playbook, scenario) and add its metrics up across the runs, per the deployed dashboard."""
    found: list[Widget] = []

    def add(account: LocalAccount, _: simulate.Result) -> None:
        if not found:
            name = account.outputs.get("PlaybooksDashboardName") or account.resources["PlaybooksDashboard"]
            found.extend(widgets(json.loads(account.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])))
        read(account, found)

    for playbook, name in runs:
        if on_progress:
            on_progress(f"{playbook} {name}")
        simulate.run(scenario.load(playbook, name), inspect=add)
    return found


def svg(found: list[Widget], caption: str) -> str:
    """Rows of three panels: outcome counts as a stacked bar, then each time widget's average and maximum."""
    rows: dict[str, list[Widget]] = {}
    for widget in found:
        rows.setdefault(widget.title.split(":", 1)[0], []).append(widget)
    width, row_height, top = 960, 64, 56
    height = top + row_height * len(rows) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        '<text x="16" y="24" font-size="16" font-weight="bold">ETL playbooks dashboard (local account)</text>',
        f'<text x="16" y="42" fill="#555">{escape(caption)}</text>',
    ]
    for index, (playbook, panels) in enumerate(rows.items()):
        y = top + index * row_height
        out.append(f'<text x="16" y="{y + 22}" font-weight="bold">{escape(playbook)}</text>')
        counts = [s for s in panels[0].series if s.value]
        runs = sum(s.value for s in counts)
        x = 150.0
        for series in counts:
            span = 300 * series.value / runs
            colour = COLOURS.get(series.label, "#777")
            out.append(
                f'<rect x="{x:.1f}" y="{y + 8}" width="{span:.1f}" height="20" fill="{colour}"><title>{escape(series.label)}: {series.value:g}</title></rect>'
            )
            if span > 40:
                out.append(f'<text x="{x + 4:.1f}" y="{y + 22}" fill="#fff">{escape(series.label)} {series.value:g}</text>')
            x += span
        out.append(f'<text x="150" y="{y + 44}" fill="#555">{runs:g} runs</text>')
        for column, widget in enumerate(panels[1:]):
            label = widget.title.split(":", 1)[1].strip()
            values = ", ".join(f"{s.label} {s.value:,.1f}" for s in widget.series) if any(s.count for s in widget.series) else "no data"
            out.append(f'<text x="{480 + column * 240}" y="{y + 22}">{escape(label)}</text>')
            out.append(f'<text x="{480 + column * 240}" y="{y + 40}" fill="#555">{escape(values)}</text>')
    legend_y = height - 16
    for number, (outcome, colour) in enumerate(COLOURS.items()):
        out.append(f'<rect x="{16 + number * 94}" y="{legend_y - 10}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{30 + number * 94}" y="{legend_y}">{outcome}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
