"""What every service module shares: the `Gap` record and the running account, seen through what they need of it.

The service modules never import the account (`..account` assembles them); they reach the one running account
through `active()`, typed by the `Account` protocol below, so there is no import cycle.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Source:
    """A page that says what AWS does: its title (guide or reference, then the page) and its address. AWS's own
    documentation where it says so; otherwise a recording of AWS's answers (a public project's test snapshot)."""

    title: str
    url: str


@dataclass(frozen=True)
class Gap:
    """One place where moto differs from AWS: what AWS does, what moto does and what the local account does, and the
    pages that say what AWS does. A row that only changes speed or builds a scenario's world emulates nothing AWS
    does: its `sources` is `NO_AWS_BEHAVIOUR`, and its api says "(speed only)" or its moto text starts "(world
    building)"."""

    api: str
    aws: str
    moto: str
    sources: tuple[Source, ...]


NO_AWS_BEHAVIOUR: tuple[Source, ...] = ()


def cite(sources: tuple[Source, ...]) -> str:
    """The sources as docs/local-account.md shows them: Markdown links, or why there is nothing to cite."""
    if not sources:
        return "none: nothing AWS does is emulated (speed or world building only)"
    return "; ".join(f"[{source.title}]({source.url})" for source in sources)


class Clock(Protocol):
    expire_requested: set[str]

    def now(self) -> float: ...

    def utc_now(self) -> datetime.datetime: ...

    def advance(self, seconds: float) -> None: ...


class Settings(Protocol):
    @property
    def concurrency_limit(self) -> int: ...

    @property
    def small_pages(self) -> bool: ...

    @property
    def iam_propagation_s(self) -> float: ...

    @property
    def iam_simulator_delay_s(self) -> float: ...


class Account(Protocol):
    """The parts of the local account that the service modules read or call."""

    account_id: str
    region: str
    quota_requests: list[dict[str, Any]]
    costs: dict[str, dict[str, float]]
    cloudtrail_events: list[dict[str, Any]]

    @property
    def clock(self) -> Clock: ...

    @property
    def settings(self) -> Settings: ...

    def client(self, service: str) -> Any: ...

    def dispatch(self, function_name: str, body: Any) -> tuple[bytes, bool]: ...

    def logical_id_of_state_machine(self, name: str) -> str: ...

    def function_principals(self) -> set[str]: ...

    def state_machine_of_principal(self, principal: str) -> tuple[str, str] | None: ...


_ACTIVE: list[Account] = []
# A service module's answer to one API call instead of moto's (None: let moto answer).
Handler = Callable[[dict[str, Any]], Any]


def active() -> Account:
    if not _ACTIVE:
        raise RuntimeError("no local account is running")
    return _ACTIVE[0]


def activate(account: Account | None) -> None:
    _ACTIVE[:] = [account] if account is not None else []
