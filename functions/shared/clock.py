"""Time helpers: one place that reads the clock, ISO-8601 in UTC everywhere.

`monotonic` and `sleep` are the only way deployed code measures or spends time while pacing API calls, so the local
account can run them on simulated time (it replaces both; nothing else changes).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Step Functions' own timestamp format, so strings compare in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def monotonic() -> float:
    return time.monotonic()


def sleep(seconds: float) -> None:
    time.sleep(max(seconds, 0.0))
