"""Simulated time: the seconds Wait states, retries and pacing handlers would have spent, never slept."""

from __future__ import annotations

import datetime
import importlib
import threading
import time
from typing import Any

from .runtime import Account, Gap

GAPS = [
    Gap(
        "time inside handlers",
        "a Lambda that paces its calls sleeps in real time, and one that runs after a Wait state sees the time the wait took",
        "would sleep too, and a handler after a simulated wait would see the time before it: handlers read and spend "
        "time through `shared.clock.now/monotonic/sleep`, which the local account runs on its simulated clock (real "
        "time plus every simulated wait)",
    ),
]


class VirtualClock:
    """Seconds that Wait states and retry backoffs would have spent; nothing actually sleeps."""

    def __init__(self) -> None:
        self.waited = 0.0
        self.expire_requested: set[str] = set()
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.waited += max(seconds, 0.0)

    def now(self) -> float:
        """The account's time in seconds: real time plus every simulated wait so far."""
        return time.monotonic() + self.waited

    def utc_now(self) -> datetime.datetime:
        """The account's wall-clock time: real UTC time plus every simulated wait so far."""
        return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.waited)


_HANDLER_CLOCK: dict[str, Any] = {}


def use_account_clock_in_handlers(account: Account) -> None:
    from ... import project

    shared_clock: Any = project.import_function_module("shared.clock")
    _HANDLER_CLOCK.setdefault("monotonic", shared_clock.monotonic)
    _HANDLER_CLOCK.setdefault("sleep", shared_clock.sleep)
    _HANDLER_CLOCK.setdefault("now", shared_clock.now)
    shared_clock.monotonic = account.clock.now
    shared_clock.sleep = account.clock.advance
    shared_clock.now = account.clock.utc_now


def restore_handler_clock() -> None:
    if _HANDLER_CLOCK:
        shared_clock: Any = importlib.import_module("shared.clock")
        shared_clock.monotonic = _HANDLER_CLOCK["monotonic"]
        shared_clock.sleep = _HANDLER_CLOCK["sleep"]
        shared_clock.now = _HANDLER_CLOCK["now"]
