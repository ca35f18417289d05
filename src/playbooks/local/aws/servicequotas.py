"""Service Quotas: increase requests are recorded and answered as pending."""

from __future__ import annotations

import time
from typing import Any

from ..recorder import response
from .runtime import Gap, Handler, active

GAPS = [
    Gap(
        "servicequotas:RequestServiceQuotaIncrease",
        "opens a quota increase request",
        "not implemented: we record the request and answer as AWS does (status PENDING)",
    ),
]


def _request_quota_increase(params: dict[str, Any]) -> Any:
    account = active()
    request_id = f"{len(account.quota_requests) + 1:032x}"
    requested = {
        "Id": request_id,
        "ServiceCode": params["ServiceCode"],
        "QuotaCode": params["QuotaCode"],
        "DesiredValue": float(params["DesiredValue"]),
        "Status": "PENDING",
        "Created": time.time(),
        "Requester": account.account_id,
        "GlobalQuota": False,
        "Unit": "None",
    }
    account.quota_requests.append(requested)
    return response({"RequestedQuota": requested})


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "servicequotas:RequestServiceQuotaIncrease": _request_quota_increase,
}
