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


def page_items(pages: Any) -> list[Any]:
    """The items a state machine kept while it read a listing page by page, in reading order. JSONPath cannot join two
    lists, so each page is kept beside the list so far (States.Array): [[[], page 1], page 2]. A flat list reads as is."""
    if not isinstance(pages, list):
        return []
    return [item for value in pages for item in (page_items(value) if isinstance(value, list) else [value])]
