"""Cost Explorer: the scenario's daily cost per service."""

from __future__ import annotations

import datetime
from typing import Any

from ..recorder import response
from .runtime import Gap, Handler, Source, active

GAPS = [
    Gap(
        "ce:GetCostAndUsage",
        "returns the account's cost per day and group (e.g. BlendedCost by SERVICE), in pages",
        "tracks no cost and answers from a queue of canned results: we aggregate the scenario's daily cost per service over the requested period",
        sources=(
            Source(
                "AWS Billing and Cost Management API reference, GetCostAndUsage",
                "https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_GetCostAndUsage.html",
            ),
        ),
    ),
]


def _get_cost_and_usage(params: dict[str, Any]) -> Any:
    """Daily cost per service from the scenario (`account.costs`: date -> service -> USD), as Cost Explorer answers."""
    period = params["TimePeriod"]
    metrics = params.get("Metrics") or ["BlendedCost"]
    grouped = any(group.get("Key") == "SERVICE" for group in params.get("GroupBy", []))
    day = datetime.date.fromisoformat(period["Start"])
    end = datetime.date.fromisoformat(period["End"])
    results = []
    while day < end:
        services = active().costs.get(day.isoformat(), {})
        amounts = {metric: {"Amount": f"{sum(services.values()):.10f}", "Unit": "USD"} for metric in metrics}
        results.append(
            {
                "TimePeriod": {"Start": day.isoformat(), "End": (day + datetime.timedelta(days=1)).isoformat()},
                "Total": {} if grouped else amounts,
                "Groups": [
                    {"Keys": [service], "Metrics": {metric: {"Amount": f"{amount:.10f}", "Unit": "USD"} for metric in metrics}}
                    for service, amount in sorted(services.items())
                ]
                if grouped
                else [],
                "Estimated": day >= datetime.date.today() - datetime.timedelta(days=1),
            }
        )
        day += datetime.timedelta(days=1)
    return response({"ResultsByTime": results, "DimensionValueAttributes": [], "GroupDefinitions": params.get("GroupBy", [])})


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "ce:GetCostAndUsage": _get_cost_and_usage,
}
