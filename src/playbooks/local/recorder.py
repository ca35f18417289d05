"""Every AWS call made in the local account, who made it, and the faults a scenario injects into them.

One botocore hook sees every client's calls (the ASL executor's, the handlers', the simulator's): it records the
call with the principal that made it (a state machine or a function, by logical id) and may answer it with an
injected error or with a response from a module of the `aws` package instead of moto.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.handlers

# Who is calling: the logical id of the state machine or function whose role the call would use on AWS.
PRINCIPAL: contextvars.ContextVar[str] = contextvars.ContextVar("principal", default="operator")
# The Task state being executed when the call was made (its own call, or a call of the function it invoked): several
# states may call the same API or function, and a fault can be aimed at one of them.
STATE: contextvars.ContextVar[str | None] = contextvars.ContextVar("state", default=None)

# botocore service ids whose IAM prefix differs from the hyphenated id.
IAM_PREFIX = {
    "cloudwatch": "cloudwatch",
    "cloudwatch-logs": "logs",
    "sfn": "states",
    "eventbridge": "events",
    "service-quotas": "servicequotas",
    "cost-explorer": "ce",
    "compute-optimizer": "compute-optimizer",
}
# API operations whose IAM action has another name.
IAM_ACTION = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "s3:PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "s3:PutBucketIntelligentTieringConfiguration": "s3:PutIntelligentTieringConfiguration",
    "s3:GetBucketIntelligentTieringConfiguration": "s3:GetIntelligentTieringConfiguration",
    "s3:ListBucketIntelligentTieringConfigurations": "s3:GetIntelligentTieringConfiguration",
    "s3:DeleteBucketIntelligentTieringConfiguration": "s3:PutIntelligentTieringConfiguration",
    "logs:FilterLogEvents": "logs:FilterLogEvents",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "s3:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
}


@dataclass
class Call:
    seq: int
    api: str  # "<service>:<Operation>" with the IAM service prefix, e.g. "lambda:PutFunctionConcurrency"
    params: dict[str, Any]
    principal: str
    at: float
    error: str | None = None
    service: str = ""  # botocore's service name and operation, e.g. "logs", "FilterLogEvents"
    operation: str = ""
    inner: bool = False  # made by the account itself (listing everything to page it): not recorded, never faulted
    state: str | None = None  # the Task state being executed, if any (STATE)
    # (IAM action, resource ARN) pairs the call was authorized for; stack principals only (local/aws/authorization.py)
    authorized: list[tuple[str, str]] = field(default_factory=list)

    @property
    def iam_action(self) -> str:
        return IAM_ACTION.get(self.api, self.api)


@dataclass
class Fault:
    """Answer `api` (optionally only for `principal`, only calls made while Task state `state` executes, and only
    calls whose parameter `match` keys contain the given substrings) with `error` for `times` calls after skipping
    `after` calls."""

    api: str
    error: str
    status: int = 400
    times: int = 1
    after: int = 0
    principal: str | None = None
    state: str | None = None
    match: dict[str, str] = field(default_factory=dict)
    message: str = "Injected by the scenario"
    seen: int = 0
    fired: int = 0

    def fires(self, call: Call) -> bool:
        if call.api != self.api or (self.principal and call.principal != self.principal):
            return False
        if self.state and call.state != self.state:
            return False
        if any(needle not in str(call.params.get(key, "")) for key, needle in self.match.items()):
            return False
        self.seen += 1
        if self.seen <= self.after or self.fired >= self.times:
            return False
        self.fired += 1
        return True


class FakeHttpResponse:
    def __init__(self, status_code: int):
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""
        self.raw = None


def response(body: dict[str, Any], status: int = 200) -> tuple[FakeHttpResponse, dict[str, Any]]:
    parsed = dict(body)
    parsed["ResponseMetadata"] = {
        "HTTPStatusCode": status,
        "RequestId": "local-" + str(time.monotonic_ns()),
        "HTTPHeaders": {},
        "RetryAttempts": 0,
    }
    return FakeHttpResponse(status), parsed


def error_response(code: str, message: str, status: int = 400) -> tuple[FakeHttpResponse, dict[str, Any]]:
    return response({"Error": {"Code": code, "Message": message}}, status)


Response = tuple[FakeHttpResponse, dict[str, Any]]
GapHandler = Callable[[dict[str, Any]], "Response | None"]


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    gaps: dict[str, GapHandler] = field(default_factory=dict)
    listeners: list[Callable[[Call], None]] = field(default_factory=list)
    # Decides whether AWS would let the call's principal make it: None to allow, else the error response AWS gives.
    authorize: Callable[[Call], Response | None] | None = None
    # Answers a paginated call with the small or empty page AWS may give (None: the call goes on as it is).
    paginate: Callable[[Call], Response | None] | None = None
    # Whether a call is the account's own (see `aws.pagination`): such calls are answered but neither recorded nor faulted.
    is_inner: Callable[[], bool] = lambda: False
    enabled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: itertools.count = field(default_factory=itertools.count)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.faults.clear()
            self.listeners.clear()

    # botocore hooks ---------------------------------------------------------------------------------
    def before_parameter_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.enabled:
            return
        service_id = model.service_model.service_id.hyphenize()
        prefix = IAM_PREFIX.get(service_id, model.service_model.signing_name or service_id)
        call = Call(next(self._seq), f"{prefix}:{model.name}", _plain(params), PRINCIPAL.get(), time.time())
        call.service, call.operation, call.inner = model.service_model.service_name, model.name, self.is_inner()
        call.state = STATE.get()
        context["local_call"] = call
        if call.inner:
            return
        with self._lock:
            self.calls.append(call)

    def before_call(self, context: dict[str, Any], **_: Any) -> Response | None:
        call: Call | None = context.get("local_call")
        if call is None:
            return None
        if not call.inner:
            with self._lock:
                fault = next((f for f in self.faults if f.fires(call)), None)
            if fault is not None:
                call.error = fault.error
                return error_response(fault.error, fault.message, fault.status)
            # Authorization: the one place a call AWS would deny is refused, before any service answers it.
            if self.authorize is not None:
                denied = self.authorize(call)
                if denied is not None:
                    call.error = denied[1]["Error"]["Code"]
                    return denied
            page = self.paginate(call) if self.paginate is not None else None
            if page is not None:
                return page
        result = None
        gap = self.gaps.get(call.api)
        if gap is not None:
            result = gap(call.params)
            if result is not None and result[0].status_code >= 300:
                call.error = result[1]["Error"]["Code"]
        return result

    def after_call(self, context: dict[str, Any], http_response: Any = None, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        """Note moto's errors; tell listeners (scenario reactions) about calls that succeeded."""
        call: Call | None = context.get("local_call")
        if call is None or call.inner:
            return
        if parsed and "Error" in parsed and getattr(http_response, "status_code", 200) >= 300:
            call.error = call.error or parsed["Error"].get("Code")
        if call.error is None:
            for listener in list(self.listeners):
                listener(call)


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy safe to keep (streams and bytes are summarised)."""
    plain: dict[str, Any] = {}
    for key, value in params.items():
        plain[key] = f"<{len(value)} bytes>" if isinstance(value, bytes | bytearray) else value
    return plain


RECORDER = Recorder()
_installed = False


def install() -> None:
    """Register the hooks for every botocore session created from now on (as moto registers its own stubber)."""
    global _installed
    if _installed:
        return
    botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build.*.*", RECORDER.before_parameter_build))
    botocore.handlers.BUILTIN_HANDLERS.append(("before-call.*.*", RECORDER.before_call))
    botocore.handlers.BUILTIN_HANDLERS.append(("after-call.*.*", RECORDER.after_call))
    _installed = True
