"""Simulated time: the seconds Wait states, retries and pacing handlers would have spent, never slept."""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

from .runtime import Account, Gap

GAPS = [
    Gap(
        "time inside handlers",
        "a Lambda that paces its calls sleeps in real time",
        "would sleep too: handlers pace through `shared.clock.monotonic/sleep`, which the local account runs on its simulated clock",
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


_HANDLER_CLOCK: dict[str, Any] = {}


def use_account_clock_in_handlers(account: Account) -> None:
    from ... import project

    shared_clock: Any = project.import_function_module("shared.clock")
    _HANDLER_CLOCK.setdefault("monotonic", shared_clock.monotonic)
    _HANDLER_CLOCK.setdefault("sleep", shared_clock.sleep)
    shared_clock.monotonic = account.clock.now
    shared_clock.sleep = account.clock.advance


def restore_handler_clock() -> None:
    if _HANDLER_CLOCK:
        shared_clock: Any = importlib.import_module("shared.clock")
        shared_clock.monotonic = _HANDLER_CLOCK["monotonic"]
        shared_clock.sleep = _HANDLER_CLOCK["sleep"]
