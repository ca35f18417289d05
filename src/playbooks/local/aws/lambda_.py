"""Lambda: the real handlers run in-process, account concurrency settings and the unreserved minimum."""

from __future__ import annotations

import base64
import json
import traceback
from typing import Any

from ..recorder import error_response, response
from .runtime import Gap, Handler, Source, active

# How long a configuration update stays InProgress on the account's clock.
UPDATE_SECONDS = 30.0

GAPS = [
    Gap(
        "lambda:Invoke",
        "runs the function's code",
        "returns the payload unchanged (no Docker): we dispatch to the real handler in-process, with its environment, and map exceptions to FunctionError payloads",
        sources=(
            Source(
                "AWS SDK for .NET API reference, Lambda InvokeResponse (FunctionError Handled or Unhandled, Payload)",
                "https://docs.aws.amazon.com/sdkfornet/latest/apidocs/items/TLambdaInvokeResponseNET45.html",
            ),
        ),
    ),
    Gap(
        "lambda:GetAccountSettings",
        "returns AccountLimit.ConcurrentExecutions and UnreservedConcurrentExecutions",
        "not implemented: we compute both from the scenario's account limit and the functions' reservations",
        sources=(
            Source(
                "AWS Lambda API reference, PutFunctionConcurrency (at least 100 unreserved; GetAccountSettings for the Regional limit)",
                "https://docs.aws.amazon.com/goto/WebAPI/lambda/PutFunctionConcurrency",
            ),
        ),
    ),
    Gap(
        "function timeout",
        "ends an invocation that runs longer than the function's Timeout: the caller gets FunctionError Unhandled with "
        "errorType Sandbox.Timedout and 'Task timed out after N seconds', and whatever the code would have done "
        "afterwards never happens. Sources: Lambda's timeout setting (1 s to 15 minutes; the invocation is stopped at "
        "the limit) and its error as Lambda reports it (Sandbox.Timedout, 'Task timed out after N.NN seconds'), "
        "quoted from AWS's troubleshooting pages by public error guides; Step Functions API reference, "
        "LambdaFunctionTimedOutEventDetails",
        "runs in-process without Docker and never times out: we measure each invocation on the account's clock (real "
        "time plus the simulated time its calls spent pacing, backing off and retrying) and, past the Timeout, answer "
        "the timeout error instead of the handler's result; the context's remaining time runs on the same clock",
        sources=(
            Source(
                "AWS Lambda developer guide, Configure Lambda function timeout",
                "https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html",
            ),
            Source(
                "AWS SDK for .NET API reference, Lambda InvokeResponse (FunctionError Handled or Unhandled, Payload)",
                "https://docs.aws.amazon.com/sdkfornet/latest/apidocs/items/TLambdaInvokeResponseNET45.html",
            ),
        ),
    ),
    Gap(
        "lambda:PutFunctionConcurrency",
        "refuses to leave less than 100 unreserved concurrency",
        "enforces it only with an environment variable: we enforce it against the scenario's account limit",
        sources=(
            Source(
                "AWS Lambda API reference, PutFunctionConcurrency (at least 100 unreserved; GetAccountSettings for the Regional limit)",
                "https://docs.aws.amazon.com/goto/WebAPI/lambda/PutFunctionConcurrency",
            ),
        ),
    ),
    Gap(
        "lambda:UpdateFunctionConfiguration",
        "returns at once with LastUpdateStatus InProgress; the update finishes later (Successful or Failed), and "
        "meanwhile another UpdateFunctionConfiguration fails with ResourceConflictException ('The operation cannot be "
        "performed at this time. An update is in progress for resource: <arn>'). Sources: Lambda developer guide, "
        "'Lambda function states' (function states during updates); botocore's FunctionUpdatedV2 waiter (polls "
        "GetFunction until LastUpdateStatus is Successful)",
        f"applies it at once and always says Successful: on the account's clock LastUpdateStatus is InProgress for "
        f"{int(UPDATE_SECONDS)} s after each update, and a second update meanwhile is refused",
        sources=(
            Source(
                "AWS Lambda developer guide, Lambda function states (LastUpdateStatus)",
                "https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html",
            ),
        ),
    ),
]


MIN_UNRESERVED = 100


def _lambda_backend() -> Any:
    from moto.awslambda.utils import get_backend

    account = active()
    return get_backend(account.account_id, account.region)


def _reserved_total(exclude: str | None = None) -> int:
    total = 0
    for function in _lambda_backend().list_functions():
        if function.reserved_concurrency and function.function_name != exclude:
            total += int(function.reserved_concurrency)
    return total


def _get_account_settings(params: dict[str, Any]) -> Any:
    limit = active().settings.concurrency_limit
    return response(
        {
            "AccountLimit": {
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": limit - _reserved_total(),
            },
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(_lambda_backend().list_functions())},
        }
    )


def _put_function_concurrency(params: dict[str, Any]) -> Any:
    name = str(params.get("FunctionName", "")).rsplit(":", 1)[-1]
    wanted = int(params.get("ReservedConcurrentExecutions", 0))
    unreserved = active().settings.concurrency_limit - _reserved_total(exclude=name) - wanted
    if unreserved < MIN_UNRESERVED:
        return error_response(
            "InvalidParameterValueException",
            "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
            f"below its minimum value of [{MIN_UNRESERVED}].",
        )
    return None  # moto applies it


def _update_in_progress_until(function: Any) -> float:
    return float(getattr(function, "local_update_until", 0.0))


def _update_function_configuration(params: dict[str, Any]) -> Any:
    name = str(params.get("FunctionName", "")).rsplit(":", 1)[-1]
    try:
        function = _lambda_backend().get_function(name)
    except Exception:  # noqa: BLE001 - an unknown function: moto answers with its own error
        return None
    now = active().clock.now()
    if _update_in_progress_until(function) > now:
        return error_response(
            "ResourceConflictException",
            f"The operation cannot be performed at this time. An update is in progress for resource: {function.function_arn}",
            409,
        )
    function.local_update_until = now + UPDATE_SECONDS
    return None  # moto applies it; its configuration reads InProgress until the update ends


def _patch_last_update_status() -> None:
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.get_configuration

    def get_configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config = original(self, on_create)
        until = _update_in_progress_until(self)  # set only by an update in a running local account
        if "LastUpdateStatus" in config and until and until > active().clock.now():
            config["LastUpdateStatus"] = "InProgress"
            config["LastUpdateStatusReason"] = "The function is being updated."
            config["LastUpdateStatusReasonCode"] = "Updating"
        return config

    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]


def _patch_lambda_invoke() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
        payload, error = active().dispatch(function_name, body)
        if error:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def lambda_error_payload(error: BaseException) -> bytes:
    return json.dumps(
        {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": "",
            "stackTrace": traceback.format_tb(error.__traceback__)[-5:],
        }
    ).encode()


def timeout_payload(seconds: float, request_id: str) -> bytes:
    """What Lambda answers for an invocation that ran out of time."""
    return json.dumps(
        {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds"}
    ).encode()


def decode_payload(body: Any) -> Any:
    if body in (None, "", b""):
        return {}
    if isinstance(body, bytes | bytearray):
        body = body.decode()
    try:
        return json.loads(body)
    except ValueError:
        return base64.b64decode(body)


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "lambda:GetAccountSettings": _get_account_settings,
    "lambda:PutFunctionConcurrency": _put_function_concurrency,
    "lambda:UpdateFunctionConfiguration": _update_function_configuration,
}


def patch_moto() -> None:
    _patch_lambda_invoke()
    _patch_last_update_status()
