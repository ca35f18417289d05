"""CloudTrail: management events from the scenario."""

from __future__ import annotations

from typing import Any

from ..recorder import response
from .runtime import Gap, Handler, Source, active

GAPS = [
    Gap(
        "cloudtrail:LookupEvents",
        "returns the account's management events of the last 90 days",
        "not implemented: we answer from the scenario's `cloudtrail` events (none if it declares none)",
        sources=(Source("AWS CloudTrail API reference, LookupEvents", "https://docs.aws.amazon.com/goto/WebAPI/cloudtrail/LookupEvents"),),
    ),
]


def _lookup_events(params: dict[str, Any]) -> Any:
    import datetime

    wanted = {a["AttributeKey"]: a["AttributeValue"] for a in params.get("LookupAttributes", [])}
    start = params.get("StartTime")
    if isinstance(start, str):
        start = datetime.datetime.fromisoformat(start.replace("Z", "+00:00"))
    events = []
    for event in sorted(active().cloudtrail_events, key=lambda e: e["EventTime"], reverse=True):
        if wanted.get("EventName") not in (None, event["EventName"]):
            continue
        if isinstance(start, datetime.datetime) and event["EventTime"] < start:
            continue
        events.append(event)
    return response({"Events": events[: int(params.get("MaxResults", 50))]})


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "cloudtrail:LookupEvents": _lookup_events,
}
