"""Simulated time: the seconds Wait states, retries and pacing handlers would have spent, never slept."""

from __future__ import annotations

import contextvars
import datetime
import importlib
import threading
import time
from typing import Any

from .runtime import Account, Gap, Source

GAPS = [
    Gap(
        "time inside handlers",
        "a Lambda that paces its calls sleeps in real time, and one that runs after a Wait state sees the time the wait took",
        "would sleep too, and a handler after a simulated wait would see the time before it: handlers read and spend "
        "time through `shared.clock.now/monotonic/sleep`, which the local account runs on its simulated clock (real "
        "time plus every simulated wait)",
        sources=(
            Source(
                "AWS Lambda developer guide, Configure Lambda function timeout",
                "https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html",
            ),
            Source(
                "AWS Step Functions developer guide, Wait workflow state",
                "https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-wait-state.html",
            ),
        ),
    ),
    Gap(
        "the SDK's retries (botocore's backoff and adaptive client-side rate limiting)",
        "a throttled call waits between attempts, and that time counts against the function's timeout",
        "would sleep in real time, so a throttled handler made tests slow and its time invisible to its timeout: the "
        "SDK's retry sleeps and its rate limiter's clock run on the account's clock, charged to the invocation that "
        "made the call",
        sources=(
            Source(
                "Boto3 documentation, Retries (legacy, standard and adaptive retry modes)",
                "https://docs.aws.amazon.com/boto3/latest/guide/retries.html",
            ),
            Source(
                "AWS SDKs and Tools reference guide, Retry behavior",
                "https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html",
            ),
        ),
    ),
]

# The simulated seconds the running Lambda invocation has spent (pacing, backoff, retries); None outside one. A list
# so the worker threads an invocation starts (with a copy of its context) add to the same total.
INVOCATION_SPENT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("invocation_spent", default=None)


class VirtualClock:
    """Seconds that Wait states and retry backoffs would have spent; nothing actually sleeps."""

    def __init__(self) -> None:
        self.waited = 0.0
        self.expire_requested: set[str] = set()
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.waited += max(seconds, 0.0)
            spent = INVOCATION_SPENT.get()
            if spent is not None:
                spent[0] += max(seconds, 0.0)

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


def _sdk_sleep(seconds: float) -> None:
    from .runtime import _ACTIVE

    if _ACTIVE:
        _ACTIVE[0].clock.advance(seconds)
    else:
        time.sleep(seconds)


def _sdk_time() -> float:
    """Epoch seconds plus the simulated waits, so a client created before the account started stays consistent."""
    from .runtime import _ACTIVE

    return time.time() + (_ACTIVE[0].clock.now() - time.monotonic() if _ACTIVE else 0.0)


class _SdkTime:
    """Stands in for the `time` module inside botocore's endpoint, whose retry loop sleeps between attempts."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        _sdk_sleep(seconds)


def patch_sdk_retries() -> None:
    from botocore import endpoint
    from botocore.retries import bucket

    endpoint.time = _SdkTime()  # type: ignore[attr-defined]
    bucket.Clock.sleep = lambda self, amount: _sdk_sleep(amount)  # type: ignore[method-assign]
    bucket.Clock.current_time = lambda self: _sdk_time()  # type: ignore[method-assign]
    original_init = bucket.TokenBucket.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # The limiter waits on a condition for the next token: spend that wait on the clock instead.
        self._new_fill_rate_condition.wait = lambda timeout=None: self._clock.sleep(timeout or 0.0)

    bucket.TokenBucket.__init__ = init  # type: ignore[method-assign]
