"""Lazily created boto3 clients with the SDK's adaptive retries for transient errors and throttling."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    """One client per service per process; created on first use so tests can start their mocks first."""
    return boto3.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (the local account does this when it starts a new in-memory account)."""
    client.cache_clear()
    table.cache_clear()


@cache
def table(name: str) -> Any:
    """A DynamoDB table resource (native Python values in and out)."""
    return boto3.resource("dynamodb", config=RETRY_CONFIG).Table(name)


def kept_items(listing: Any, key: str) -> list[Any]:
    """The items a state machine kept while it read a listing page by page, in reading order: the last page read
    (`page`, the API's answer) after the earlier pages' items (`events`, nested by States.Array: JSONPath cannot join
    two lists, so each page is kept beside the list so far: [[[], page 1], page 2])."""
    if not isinstance(listing, dict):
        return []
    return _flatten(listing.get("events")) + list((listing.get("page") or {}).get(key) or [])


def _flatten(nested: Any) -> list[Any]:
    if not isinstance(nested, list):
        return []
    return [item for value in nested for item in (_flatten(value) if isinstance(value, list) else [value])]
