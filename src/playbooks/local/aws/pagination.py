"""Pagination as AWS may answer it: small pages, and empty pages that still carry a next token.

AWS documents that a page can hold fewer items than asked for, or none, with more to come (FilterLogEvents:
"Partially full or empty pages don't necessarily mean that pagination is finished"; most List/Describe APIs: "the
actual number of results returned might be fewer than the specified maximum"). moto always fills its pages, so a
client that stops at the first short or empty page passes. With the account's `small_pages` setting on (the
pagination pass of `playbooks assure` turns it on for every scenario), every call the stack makes (its functions' and
its state machines' aws-sdk tasks) to an API botocore knows as paginated is answered with an empty first page and then
one item per page, each with a next token until the last.
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
from boto3.dynamodb.conditions import ConditionBase
from boto3.dynamodb.transform import TransformationInjector
from botocore import xform_name

from ..recorder import Call, response
from .runtime import Gap, Source, active

GAPS = [
    Gap(
        "paginated APIs (logs:FilterLogEvents, states:ListExecutions, iam:ListRolePolicies, ...)",
        "may answer with partially full or empty pages that carry a next token; only a page without a token ends the "
        "listing. Sources: CloudWatch Logs API reference, FilterLogEvents ('Partially full or empty pages don't "
        "necessarily mean that pagination is finished'); IAM API reference, SimulatePrincipalPolicy (IsTruncated: "
        "'IAM might return fewer than the MaxItems number of results even when there are more results available'); the "
        "maxResults/MaxItems notes of the other APIs",
        "always fills its pages: with the account's small-pages setting on (the pagination pass of `playbooks assure`) "
        "every paginated call the stack makes, a function's or a state machine's aws-sdk task's, gets an empty first "
        "page and then one item per page. The state machines follow IsTruncated/Marker or NextToken with a Choice "
        "loop: iam:SimulatePrincipalPolicy and cloudtrail:LookupEvents (access-denied), states:GetExecutionHistory "
        "(execution-stuck, keeping all other arguments unchanged as its API reference asks), cloudwatch:DescribeAlarms "
        "(event-loop). A listing kept page by page stops once a page's worth is kept, so a state holds at most 39 "
        "CloudTrail events (20 asked) and 19 history events (10 asked); the one-item reads stop at their item",
        sources=(
            Source(
                "AWS SDK for .NET API reference, CloudWatch Logs FilterLogEvents (the API reference's description: partially full or empty pages)",
                "https://docs.aws.amazon.com/sdkfornet/v3/apidocs/items/CloudWatchLogs/MCloudWatchLogsFilterLogEventsFilterLogEventsRequest.html",
            ),
            Source(
                "AWS Tools for PowerShell help, Get-SFNExecutionList (the ListExecutions API description)",
                "https://www.powershellgallery.com/packages/AWS.Tools.StepFunctions/4.1.335/Content/AWS.Tools.StepFunctions.dll-Help.xml",
            ),
            Source(
                "AWS Step Functions API reference, GetExecutionHistory",
                "https://docs.aws.amazon.com/goto/WebAPI/states-2016-11-23/GetExecutionHistory",
            ),
        ),
    ),
]

TOKEN_PREFIX = "local-page-"  # noqa: S105 - a page number, not a secret
# DynamoDB's token (LastEvaluatedKey / ExclusiveStartKey) is a key: a map of attribute values, never a string.
KEY_PAGE_ATTRIBUTE = "local-page"
# Result keys that count a page's items rather than list them (DynamoDB's Query and Scan).
COUNTS = {"Count", "ScannedCount"}
# Set while the account lists everything itself to cut it into pages: those calls are not the playbook's own.
INNER: contextvars.ContextVar[bool] = contextvars.ContextVar("inner_listing", default=False)


_LISTINGS: dict[str, dict[str, Any]] = {}


def reset() -> None:
    _LISTINGS.clear()


@contextmanager
def listing_everything() -> Iterator[None]:
    token = INNER.set(True)
    try:
        yield
    finally:
        INNER.reset(token)


@functools.cache
def _paginator_config(service: str, operation: str) -> dict[str, Any] | None:
    """botocore's paginator for the operation, when it pages by one token (the shape of every API here)."""
    try:
        config = dict(botocore.session.get_session().get_paginator_model(service).get_paginator(operation))
    except Exception:  # noqa: BLE001 - botocore raises a plain ValueError, or DataNotFoundError for a service without paginators
        return None
    if not all(isinstance(config.get(key), str) for key in ("input_token", "output_token")):
        return None
    keys = config["result_key"] if isinstance(config["result_key"], list) else [config["result_key"]]
    if any("." in key for key in [*keys, config["output_token"]]):
        return None
    return config | {"result_keys": keys}


def small_pages(call: Call) -> Any:
    """The page AWS might answer, or None to let the call through (the setting is off, or the API does not page)."""
    account = active()
    if not account.settings.small_pages:
        return None
    if call.principal not in account.function_principals() and account.state_machine_of_principal(call.principal) is None:
        return None  # the world building's and the operator's calls are not the stack's
    config = _paginator_config(call.service, call.operation)
    if config is None:
        return None
    token = _read_token(call.params.get(config["input_token"]))
    if token is not None and not token.startswith(TOKEN_PREFIX):
        return None  # a token the account did not hand out: not ours to answer
    if token is None:
        return response(_page(config, {}, [], _token(call.service, 0)))
    position = int(token.removeprefix(TOKEN_PREFIX))
    params = {key: value for key, value in call.params.items() if key not in (config["input_token"], config.get("limit_key"))}
    if call.service == "dynamodb" and any(isinstance(value, ConditionBase) for value in params.values()):
        params = _low_level(account.client("dynamodb"), call.operation, params)
    key = json.dumps([call.principal, call.api, params], sort_keys=True, default=str)
    if position == 0 or key not in _LISTINGS:  # one listing per walk through the pages, not one per page
        with listing_everything():
            client = account.client(call.service)
            _LISTINGS[key] = client.get_paginator(xform_name(call.operation)).paginate(**params).build_full_result()
    everything = _LISTINGS[key]
    items = [(key, item) for key in config["result_keys"] if key not in COUNTS for item in everything.get(key, [])]
    more = position + 1 < len(items)
    return response(_page(config, everything, items[position : position + 1], _token(call.service, position + 1) if more else None))


def _low_level(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """A boto3 Table's parameters (conditions and Python values) as the client takes them, as the Table's own
    transformation makes them before the call: the listing is read with a plain client."""
    model = client.meta.service_model.operation_model(operation)
    injector = TransformationInjector()
    plain = dict(params)
    injector.inject_condition_expressions(plain, model)
    injector.inject_attribute_value_input(plain, model)
    return plain


def _token(service: str, position: int) -> Any:
    text = f"{TOKEN_PREFIX}{position}"
    return {KEY_PAGE_ATTRIBUTE: {"S": text}} if service == "dynamodb" else text


def _read_token(token: Any) -> str | None:
    if isinstance(token, dict):
        return str(token.get(KEY_PAGE_ATTRIBUTE, {}).get("S", "")) or "not-ours"
    return None if token is None else str(token)


def _page(config: dict[str, Any], everything: dict[str, Any], items: list[tuple[str, Any]], token: Any) -> dict[str, Any]:
    skipped = {*config["result_keys"], config["output_token"], config.get("more_results")}
    page = {key: value for key, value in everything.items() if key not in skipped}
    for key in config["result_keys"]:
        if key in COUNTS:
            page[key] = len(items)
        else:
            page[key] = [item for item_key, item in items if item_key == key]
    if token is not None:
        page[config["output_token"]] = token
    if config.get("more_results"):
        page[config["more_results"]] = token is not None
    return page
