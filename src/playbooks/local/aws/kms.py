"""KMS: keys with the ids scenarios choose."""

from __future__ import annotations

from .runtime import Account, Gap

GAPS = [
    Gap(
        "kms:CreateKey",
        "chooses a random key id",
        "(world building) scenarios name their keys' ids so that messages and CloudTrail events can cite them: the world builder fixes the id moto generates",
    ),
]


def create_key_with_id(account: Account, key_id: str, policy: str, description: str = "") -> str:
    """Create a KMS key whose id the scenario chose (AWS picks one at random; moto has no way to choose)."""
    from unittest import mock

    from moto.kms import models as kms_models

    with mock.patch.object(kms_models, "generate_key_id", lambda multi_region=False: key_id):
        return str(account.client("kms").create_key(Policy=policy, Description=description)["KeyMetadata"]["Arn"])
