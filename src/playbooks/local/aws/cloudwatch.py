"""CloudWatch: alarms and metrics."""

from __future__ import annotations

from .runtime import Gap

GAPS = [
    Gap(
        "cloudwatch alarm state",
        "emits a 'CloudWatch Alarm State Change' event to EventBridge",
        "emits nothing: the local account builds the real-shaped event and delivers it",
    ),
]
