"""EventBridge: delivery to Step Functions and Lambda targets, TestEventPattern."""

from __future__ import annotations

import json
from typing import Any

from ..recorder import response
from .runtime import Gap, Handler, Source

GAPS = [
    Gap(
        "events:PutEvents",
        "delivers matching events to Step Functions targets",
        "does not start executions: we match the rules' patterns and start the target state machines",
        sources=(
            Source(
                "Amazon EventBridge user guide, Step Functions state machine target",
                "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-target-sfn.html",
            ),
        ),
    ),
    Gap(
        "events:TestEventPattern",
        "says whether an event pattern matches an event",
        "not implemented: we answer with moto's own EventBridge pattern matcher (the one its delivery uses)",
        sources=(
            Source(
                "Amazon EventBridge API reference, TestEventPattern",
                "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_TestEventPattern.html",
            ),
        ),
    ),
    Gap(
        "events:PutEvents to Lambda",
        "delivers matching events to Lambda targets",
        "does not invoke them: the account invokes the target function (in-process, like every function) and reports the playbook executions it started",
        sources=(
            Source(
                "Amazon EventBridge user guide, Lambda function target",
                "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-target-lambda.html",
            ),
        ),
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
