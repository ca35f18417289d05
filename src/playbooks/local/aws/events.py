"""EventBridge: delivery to Step Functions and Lambda targets, TestEventPattern."""

from __future__ import annotations

import json
from typing import Any

from ..recorder import response
from .runtime import Gap, Handler

GAPS = [
    Gap(
        "events:PutEvents",
        "delivers matching events to Step Functions targets",
        "does not start executions: we match the rules' patterns and start the target state machines",
    ),
    Gap(
        "events:TestEventPattern",
        "says whether an event pattern matches an event",
        "not implemented: we answer with moto's own EventBridge pattern matcher (the one its delivery uses)",
    ),
    Gap(
        "events:PutEvents to Lambda",
        "delivers matching events to Lambda targets",
        "does not invoke them: the account invokes the target function (in-process, like every function) and reports the playbook executions it started",
    ),
]


def _test_event_pattern(params: dict[str, Any]) -> Any:
    from moto.events.models import EventPattern

    raw = str(params["EventPattern"])
    matched = EventPattern(raw, json.loads(raw)).matches_event(json.loads(str(params["Event"])))
    return response({"Result": bool(matched)})


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "events:TestEventPattern": _test_event_pattern,
}
