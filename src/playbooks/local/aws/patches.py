"""Installing the local account's AWS behaviour: moto's code is patched once per process, and each account that
starts answers the calls the service modules handle (through the recorder's hook) with its own state."""

from __future__ import annotations

from ..recorder import RECORDER
from . import (
    asl,
    ce,
    clock,
    cloudformation,
    cloudtrail,
    cloudwatch,
    dynamodb,
    events,
    iam,
    integrations,
    kms,
    lambda_,
    logs,
    pagination,
    s3,
    servicequotas,
    sfn,
    sns,
)
from .runtime import Account, activate

_patched = False


def install(account: Account) -> None:
    activate(account)
    _patch_moto_once()
    for module in (lambda_, servicequotas, sfn, ce, s3, iam, cloudtrail, events, sns, kms, dynamodb):
        RECORDER.gaps.update(module.HANDLERS)
    sfn.BUCKETS.clear()
    iam.PENDING.clear()
    iam.SIMULATOR_PENDING.clear()
    kms.PENDING.clear()
    sfn.API_LATENCY_S["value"] = 0.0
    sfn.reset_quotas()
    clock.use_account_clock_in_handlers(account)
    RECORDER.paginate = pagination.small_pages
    pagination.reset()
    RECORDER.is_inner = pagination.INNER.get


def uninstall() -> None:
    activate(None)
    RECORDER.paginate = None
    clock.restore_handler_clock()


def _patch_moto_once() -> None:
    global _patched
    if _patched:
        return
    for module in (lambda_, integrations, asl, logs, cloudformation, cloudwatch, dynamodb, sns, sfn):
        module.patch_moto()
    clock.patch_sdk_retries()
    _patched = True
