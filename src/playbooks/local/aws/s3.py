"""S3: EventBridge notification configuration and Intelligent-Tiering configurations."""

from __future__ import annotations

from typing import Any

from ..recorder import error_response, response
from .runtime import Gap, Handler, active

GAPS = [
    Gap(
        "s3:GetBucketNotificationConfiguration",
        "includes EventBridgeConfiguration when the bucket sends its events to EventBridge",
        "stores it but leaves it out of the answer: we add it",
    ),
    Gap(
        "s3:Put/Get/List/DeleteBucketIntelligentTieringConfiguration",
        "store a bucket's Intelligent-Tiering configurations",
        "not implemented: we keep them per bucket in the local account and answer as AWS does (NoSuchBucket, NoSuchConfiguration)",
    ),
]


def _get_bucket_notification_configuration(params: dict[str, Any]) -> Any:
    from moto.s3.models import s3_backends

    account = active()
    bucket = s3_backends[account.account_id]["aws"].buckets.get(str(params.get("Bucket", "")))
    config = getattr(bucket, "notification_configuration", None)
    if config is None or config.event_bridge is None:
        return None  # moto's own answer is right (or its NoSuchBucket)
    return response({"EventBridgeConfiguration": {}})


def _bucket_exists(bucket: str) -> bool:
    from moto.s3.models import s3_backends

    return bucket in s3_backends[active().account_id]["aws"].buckets


def _put_intelligent_tiering(params: dict[str, Any]) -> Any:
    if not _bucket_exists(params["Bucket"]):
        return error_response("NoSuchBucket", "The specified bucket does not exist", 404)
    active().tiering.setdefault(params["Bucket"], {})[params["Id"]] = dict(params["IntelligentTieringConfiguration"])
    return response({})


def _get_intelligent_tiering(params: dict[str, Any]) -> Any:
    if not _bucket_exists(params["Bucket"]):
        return error_response("NoSuchBucket", "The specified bucket does not exist", 404)
    found = active().tiering.get(params["Bucket"], {}).get(params["Id"])
    if found is None:
        return error_response("NoSuchConfiguration", "The specified configuration does not exist.", 404)
    return response({"IntelligentTieringConfiguration": found})


def _list_intelligent_tiering(params: dict[str, Any]) -> Any:
    if not _bucket_exists(params["Bucket"]):
        return error_response("NoSuchBucket", "The specified bucket does not exist", 404)
    found = list(active().tiering.get(params["Bucket"], {}).values())
    return response({"IsTruncated": False, "IntelligentTieringConfigurationList": found})


def _delete_intelligent_tiering(params: dict[str, Any]) -> Any:
    if active().tiering.get(params["Bucket"], {}).pop(params["Id"], None) is None:
        return error_response("NoSuchConfiguration", "The specified configuration does not exist.", 404)
    return response({}, 204)


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "s3:PutBucketIntelligentTieringConfiguration": _put_intelligent_tiering,
    "s3:GetBucketIntelligentTieringConfiguration": _get_intelligent_tiering,
    "s3:ListBucketIntelligentTieringConfigurations": _list_intelligent_tiering,
    "s3:DeleteBucketIntelligentTieringConfiguration": _delete_intelligent_tiering,
    "s3:GetBucketNotificationConfiguration": _get_bucket_notification_configuration,
}
