"""DynamoDB: conditional writes are atomic; UpdateTable takes minutes and switches to on demand are limited."""

from __future__ import annotations

import datetime
import functools
import threading
from typing import Any

from ..recorder import error_response
from .runtime import Gap, Handler, Source, active

# How long an UpdateTable keeps the table UPDATING on the account's clock ("several minutes" for a mode switch).
UPDATE_SECONDS = 300.0
ON_DEMAND_SWITCHES_PER_DAY = 4

GAPS: list[Gap] = [
    Gap(
        "dynamodb:UpdateTable",
        "is asynchronous: the table is UPDATING while the change is made (a capacity-mode switch 'can take several "
        "minutes') and 'while it's UPDATING, you can't issue another UpdateTable request' (ResourceInUseException). "
        "Sources: DynamoDB API Reference, 'UpdateTable' (description; Errors); DynamoDB developer guide, "
        "'Considerations when switching capacity modes in DynamoDB'; botocore's TableExists waiter (ACTIVE)",
        f"applies it at once and says ACTIVE: on the account's clock the table is UPDATING for {int(UPDATE_SECONDS)} s "
        "after each UpdateTable, and a second one meanwhile is refused",
        sources=(
            Source(
                "AWS SDK for .NET API reference, DynamoDB UpdateTable (the API reference's description: asynchronous, UPDATING)",
                "https://docs.aws.amazon.com/sdkfornet/v4/apidocs/items/DynamoDBv2/MIDynamoDBUpdateTableStringProvisionedThroughput.html",
            ),
            Source(
                "Botocore reference, DynamoDB ResourceInUseException",
                "https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/ResourceInUseException.html",
            ),
        ),
    ),
    Gap(
        "dynamodb:UpdateTable capacity mode",
        "a table may switch from provisioned to on-demand up to four times in a 24-hour rolling window, and from "
        "on-demand back to provisioned at any time (developer guide, 'Considerations when switching capacity modes in "
        "DynamoDB'); switching to provisioned, 'initial provisioned capacity values must be set' (API Reference, "
        "'UpdateTable', BillingMode) - we take the stricter reading that each global secondary index needs its own "
        "ProvisionedThroughput in GlobalSecondaryIndexUpdates",
        "switches without limit and without the indexes' throughput: we refuse a fifth switch to on-demand within 24 "
        "hours (LimitExceededException) and a switch to provisioned that leaves an index without throughput "
        "(ValidationException)",
        sources=(
            Source(
                "Amazon DynamoDB developer guide, Considerations when switching capacity modes in DynamoDB",
                "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/switching.capacitymode.html",
            ),
        ),
    ),
]


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


def _table(name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    account = active()
    return dynamodb_backends[account.account_id][account.region].tables.get(name.rsplit("/", 1)[-1])


def _updating_until(table: Any) -> float:
    return float(getattr(table, "local_updating_until", 0.0))


def _update_table(params: dict[str, Any]) -> Any:
    table = _table(str(params.get("TableName", "")))
    if table is None:
        return None  # moto answers ResourceNotFoundException
    account = active()
    now = account.clock.now()
    if _updating_until(table) > now:
        return error_response(
            "ResourceInUseException", f"Attempt to change a resource which is still in use: Table is being updated: {table.name}"
        )
    mode = params.get("BillingMode")
    if mode == "PAY_PER_REQUEST" and table.billing_mode != "PAY_PER_REQUEST":
        day_ago = account.clock.utc_now() - datetime.timedelta(hours=24)
        switches = [moment for moment in getattr(table, "local_on_demand_switches", []) if moment > day_ago]
        if len(switches) >= ON_DEMAND_SWITCHES_PER_DAY:
            return error_response(
                "LimitExceededException",
                f"Subscriber limit exceeded: Update to PayPerRequest mode are limited to {ON_DEMAND_SWITCHES_PER_DAY} times "
                f"in 1 day(s) for table: {table.name}",
            )
        table.local_on_demand_switches = [*switches, account.clock.utc_now()]
    if mode == "PROVISIONED" and table.billing_mode != "PROVISIONED":
        given = {
            update["Update"]["IndexName"]
            for update in params.get("GlobalSecondaryIndexUpdates") or []
            if "ProvisionedThroughput" in update.get("Update", {})
        }
        missing = [index.name for index in table.global_indexes if index.name not in given]
        if missing:
            return error_response(
                "ValidationException",
                f"One or more parameter values were invalid: ProvisionedThroughput must be specified for index: {missing[0]}",
            )
    table.local_updating_until = now + UPDATE_SECONDS
    return None  # moto applies it; the table reads UPDATING until the update ends


def _patch_table_status() -> None:
    from moto.dynamodb.models.table import Table

    original = Table.describe

    def describe(self: Any, base_key: str = "TableDescription") -> dict[str, Any]:
        described = original(self, base_key)
        until = _updating_until(self)  # set only by an UpdateTable in a running local account
        if until and until > active().clock.now():
            described[base_key]["TableStatus"] = "UPDATING"
        return described

    Table.describe = describe  # type: ignore[method-assign]


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {"dynamodb:UpdateTable": _update_table}


def patch_moto() -> None:
    _patch_atomic_dynamodb_writes()
    _patch_table_status()
