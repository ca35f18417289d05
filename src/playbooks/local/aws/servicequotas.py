"""Service Quotas: Lambda's concurrency quota requests, one open request per quota, reviewed on the account's clock."""

from __future__ import annotations

import uuid
from typing import Any

from ..recorder import error_response, response
from .runtime import Gap, Handler, Source, active

GAPS = [
    Gap(
        "servicequotas:RequestServiceQuotaIncrease",
        "opens a quota increase request; while a request for the same quota is open (PENDING or CASE_OPENED) another "
        "fails with ResourceAlreadyExistsException, and a DesiredValue that does not exceed the quota's current value "
        "fails with IllegalArgumentException. Sources: Service Quotas API Reference, 'RequestServiceQuotaIncrease' "
        "(Errors; DesiredValue: 'the new, increased value') and 'RequestedServiceQuotaChange' (Status)",
        "not implemented: we record the request (Lambda's concurrency quota is the scenario's account limit) and refuse "
        "a second open one or a value not above the current one",
        sources=(
            Source(
                "Service Quotas API reference, RequestServiceQuotaIncrease",
                "https://docs.aws.amazon.com/goto/WebAPI/service-quotas-2019-06-24/RequestServiceQuotaIncrease",
            ),
            Source(
                "Service Quotas API reference, RequestedServiceQuotaChange",
                "https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_RequestedServiceQuotaChange.html",
            ),
        ),
    ),
    Gap(
        "servicequotas request status",
        "a request is PENDING while AWS reviews it, CASE_OPENED once a support case handles it, then APPROVED, DENIED "
        "or CASE_CLOSED, on AWS's schedule",
        "not implemented: on the account's clock a request is PENDING for its first minute, then CASE_OPENED, and "
        "stays open (the stricter reading: nothing is granted while a playbook waits); a scenario may declare requests "
        "opened before the incident",
        sources=(
            Source(
                "AWS SDK for Kotlin API reference, Service Quotas RequestedServiceQuotaChange.status",
                "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/servicequotas/aws.sdk.kotlin.services.servicequotas.model/-requested-service-quota-change/status.html",
            ),
        ),
    ),
    Gap(
        "servicequotas:GetRequestedServiceQuotaChange, ListRequestedServiceQuotaChangeHistoryByQuota",
        "read one request, or a quota's requests (optionally by Status), newest first",
        "not implemented: we answer from the recorded requests",
        sources=(
            Source(
                "Service Quotas API reference, RequestedServiceQuotaChange",
                "https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_RequestedServiceQuotaChange.html",
            ),
            Source(
                "AWS SDK for Kotlin API reference, Service Quotas RequestedServiceQuotaChange.status",
                "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/servicequotas/aws.sdk.kotlin.services.servicequotas.model/-requested-service-quota-change/status.html",
            ),
        ),
    ),
]

OPEN = ("PENDING", "CASE_OPENED")
PENDING_SECONDS = 60.0
LAMBDA_CONCURRENCY = ("lambda", "L-B99A9384")


def _current_value(service: str, quota: str) -> float | None:
    return float(active().settings.concurrency_limit) if (service, quota) == LAMBDA_CONCURRENCY else None


def _status(request: dict[str, Any]) -> str:
    """A request opened by a run moves from PENDING to CASE_OPENED after a minute and stays open."""
    if request["Status"] == "PENDING" and active().clock.now() - request["_opened"] >= PENDING_SECONDS:
        request["Status"] = "CASE_OPENED"
        request["CaseId"] = request.get("CaseId") or f"case-{uuid.uuid4().hex[:10]}"
    return str(request["Status"])


def _public(request: dict[str, Any]) -> dict[str, Any]:
    _status(request)
    return {key: value for key, value in request.items() if not key.startswith("_")}


def open_request(service: str, quota: str, desired: float, status: str = "PENDING", case_id: str = "") -> dict[str, Any]:
    """Record a request (a run's, or one a scenario says was opened before the incident)."""
    account = active()
    requested = {
        "Id": uuid.uuid4().hex,
        "ServiceCode": service,
        "QuotaCode": quota,
        "QuotaName": "Concurrent executions" if (service, quota) == LAMBDA_CONCURRENCY else quota,
        "DesiredValue": float(desired),
        "Status": status,
        "Created": account.clock.utc_now(),
        "Requester": f"arn:aws:iam::{account.account_id}:root",
        "QuotaArn": f"arn:aws:servicequotas:{account.region}:{account.account_id}:{service}/{quota}",
        "GlobalQuota": False,
        "Unit": "None",
        "_opened": account.clock.now(),
    }
    if case_id:
        requested["CaseId"] = case_id
    account.quota_requests.append(requested)
    return requested


def _request_quota_increase(params: dict[str, Any]) -> Any:
    service, quota, desired = str(params["ServiceCode"]), str(params["QuotaCode"]), float(params["DesiredValue"])
    if any(r["ServiceCode"] == service and r["QuotaCode"] == quota and _status(r) in OPEN for r in active().quota_requests):
        return error_response("ResourceAlreadyExistsException", "The specified resource already exists.")
    current = _current_value(service, quota)
    if current is not None and desired <= current:
        return error_response(
            "IllegalArgumentException",
            f"Invalid input was provided: DesiredValue {desired:g} must be greater than the current value {current:g}.",
        )
    return response({"RequestedQuota": _public(open_request(service, quota, desired))})


def _get_requested_change(params: dict[str, Any]) -> Any:
    found = next((r for r in active().quota_requests if r["Id"] == params["RequestId"]), None)
    if found is None:
        return error_response("NoSuchResourceException", "The specified resource does not exist.")
    return response({"RequestedQuota": _public(found)})


def _list_by_quota(params: dict[str, Any]) -> Any:
    matching = [
        _public(r)
        for r in reversed(active().quota_requests)
        if r["ServiceCode"] == params["ServiceCode"] and r["QuotaCode"] == params["QuotaCode"]
    ]
    if params.get("Status"):
        matching = [r for r in matching if r["Status"] == params["Status"]]
    return response({"RequestedQuotas": matching})


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "servicequotas:RequestServiceQuotaIncrease": _request_quota_increase,
    "servicequotas:GetRequestedServiceQuotaChange": _get_requested_change,
    "servicequotas:ListRequestedServiceQuotaChangeHistoryByQuota": _list_by_quota,
}
