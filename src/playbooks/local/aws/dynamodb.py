"""DynamoDB: conditional writes are atomic."""

from __future__ import annotations

import functools
import threading
from typing import Any

from .runtime import Gap

GAPS: list[Gap] = []


_DYNAMODB_WRITE_LOCK = threading.RLock()


def _patch_atomic_dynamodb_writes() -> None:
    """A conditional write is atomic on DynamoDB; moto checks and writes in two steps that threads can interleave."""
    from moto.dynamodb.models import DynamoDBBackend

    def atomic(method: Any) -> Any:
        @functools.wraps(method)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with _DYNAMODB_WRITE_LOCK:
                return method(*args, **kwargs)

        return locked

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))


def patch_moto() -> None:
    _patch_atomic_dynamodb_writes()
