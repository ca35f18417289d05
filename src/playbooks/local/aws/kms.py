"""KMS: keys with the ids scenarios choose, the key policy's size limit, and key policy changes that take a while to
take effect."""

from __future__ import annotations

from typing import Any

from ..recorder import PRINCIPAL, error_response
from .runtime import NO_AWS_BEHAVIOUR, Account, Gap, Handler, Source, active

MAX_KEY_POLICY_BYTES = 32768
# How long after PutKeyPolicy the new key policy governs authorization, on the account's clock.
KEY_POLICY_PROPAGATION_S = 60.0
# Changes made by these callers (the scenario's world building, the deployer) are in effect from the start.
WORLD_CALLERS = ("operator", "deployer")

GAPS = [
    Gap(
        "kms:CreateKey",
        "chooses a random key id",
        "(world building) scenarios name their keys' ids so that messages and CloudTrail events can cite them: the world builder fixes the id moto generates",
        sources=NO_AWS_BEHAVIOUR,
    ),
    Gap(
        "kms:PutKeyPolicy, kms:CreateKey: key policy size",
        "a key policy document is at most 32 KB (32,768 bytes); a longer one is refused with LimitExceededException "
        "('a length constraint or quota was exceeded') (AWS KMS Developer Guide, Creating a key policy: Key policy "
        "format; AWS KMS API Reference, PutKeyPolicy: Policy and Errors)",
        "takes a policy of any size: we refuse one over 32,768 bytes (UTF-8) with LimitExceededException, HTTP 400",
        sources=(
            Source(
                "AWS KMS developer guide, Creating a key policy: key policy format (up to 32 kilobytes)",
                "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html",
            ),
            Source(
                "AWS SDK for .NET API reference, KMS PutKeyPolicyRequest (policy size limit 32 KiB)",
                "https://docs.aws.amazon.com/sdkfornet/latest/apidocs/items/TKeyManagementServicePutKeyPolicyRequestNET35.html",
            ),
        ),
    ),
    Gap(
        "kms:PutKeyPolicy: eventual consistency",
        "the KMS API follows an eventual consistency model: a change 'typically takes less than a few seconds' to "
        "propagate 'but in some cases it can take several minutes' (AWS KMS Developer Guide, AWS KMS eventual "
        "consistency; PutKeyPolicy: Eventual consistency)",
        f"applies a new key policy at once: a key policy written after the world is built governs authorization only "
        f"{KEY_POLICY_PROPAGATION_S:.0f} s later on the account's clock (until then the previous one does), while "
        "GetKeyPolicy returns the new one at once. Changes by the scenario's world building are in effect from the start",
        sources=(
            Source(
                "AWS KMS developer guide, AWS KMS eventual consistency",
                "https://docs.aws.amazon.com/kms/latest/developerguide/accessing-kms.html#programming-eventual-consistency",
            ),
        ),
    ),
]

# key id -> (account time the newest key policy takes effect, the key policy in effect until then)
PENDING: dict[str, tuple[float, str]] = {}


def create_key_with_id(account: Account, key_id: str, policy: str, description: str = "") -> str:
    """Create a KMS key whose id the scenario chose (AWS picks one at random; moto has no way to choose)."""
    from unittest import mock

    from moto.kms import models as kms_models

    with mock.patch.object(kms_models, "generate_key_id", lambda multi_region=False: key_id):
        return str(account.client("kms").create_key(Policy=policy, Description=description)["KeyMetadata"]["Arn"])


def _key(key_id: str) -> Any:
    from moto.kms.models import kms_backends

    account = active()
    backend = kms_backends[account.account_id][account.region]
    try:
        return backend.keys[backend.any_id_to_key_id(key_id)]
    except Exception:  # noqa: BLE001 - an unknown key is left to KMS's own NotFoundException
        return None


def _too_long(params: dict[str, Any]) -> Any:
    if "Policy" in params and len(str(params["Policy"]).encode()) > MAX_KEY_POLICY_BYTES:
        return error_response("LimitExceededException", f"The key policy exceeds the maximum length of {MAX_KEY_POLICY_BYTES} bytes.", 400)
    return None


def _put_key_policy(params: dict[str, Any]) -> Any:
    refusal = _too_long(params)
    if refusal is not None:
        return refusal
    key = _key(str(params.get("KeyId", "")))
    if key is not None and PRINCIPAL.get() not in WORLD_CALLERS:
        now = active().clock.now()
        effective_at, previous = PENDING.get(key.id, (now, key.policy))
        PENDING[key.id] = (now + KEY_POLICY_PROPAGATION_S, previous if effective_at > now else key.policy)
    return None  # moto stores the policy


def policy_in_effect(key: Any) -> str:
    """The key policy that governs authorization now: the stored one, or the previous one while a change propagates."""
    effective_at, previous = PENDING.get(key.id, (0.0, key.policy))
    return previous if effective_at > active().clock.now() else str(key.policy)


# The calls this module answers instead of moto (None: moto answers).
HANDLERS: dict[str, Handler] = {
    "kms:CreateKey": _too_long,
    "kms:PutKeyPolicy": _put_key_policy,
}
