"""S3: the EventBridge notification configuration."""

from __future__ import annotations

from typing import Any

from ..recorder import response
from .runtime import Gap, Handler, Source, active

GAPS = [
    Gap(
        "s3:GetBucketNotificationConfiguration",
        "includes EventBridgeConfiguration when the bucket sends its events to EventBridge",
        "stores it but leaves it out of the answer: we add it",
        sources=(
            Source(
                "Amazon S3 API reference, NotificationConfiguration (EventBridgeConfiguration)",
                "https://docs.aws.amazon.com/AmazonS3/latest/API/API_NotificationConfiguration.html",
            ),
            Source(
                "AWS SDK for Kotlin API reference, S3 GetBucketNotificationConfigurationResponse",
                "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/s3/aws.sdk.kotlin.services.s3.model/-get-bucket-notification-configuration-response",
            ),
        ),
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


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "s3:GetBucketNotificationConfiguration": _get_bucket_notification_configuration,
}
