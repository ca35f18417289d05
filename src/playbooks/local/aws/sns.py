"""SNS: notifications delivered to Lambda subscribers as real-shaped records."""

from __future__ import annotations

import datetime
import json
from typing import Any

from .runtime import Gap, active

GAPS = [
    Gap(
        "sns:Publish to a Lambda subscription",
        "invokes the function with the notification (real MessageId, TopicArn, Subject, attributes)",
        "invokes it outside our dispatch with a fixed sample record: we deliver the real-shaped record to the real handler",
    ),
]


def _patch_sns_lambda_delivery() -> None:
    from moto.sns.models import Subscription

    original = Subscription.publish

    def publish(
        self: Any, message: str, message_id: str, subject: str | None = None, message_attributes: Any = None, **kwargs: Any
    ) -> None:
        if self.protocol != "lambda":
            return original(self, message, message_id, subject=subject, message_attributes=message_attributes, **kwargs)  # type: ignore[no-any-return]
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(message_attributes, message):
            return None
        record = {
            "EventVersion": "1.0",
            "EventSubscriptionArn": self.arn,
            "EventSource": "aws:sns",
            "Sns": {
                "Type": "Notification",
                "MessageId": message_id,
                "TopicArn": self.topic.arn,
                "Subject": subject,
                "Message": message,
                "Timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "SignatureVersion": "1",
                "Signature": "local",
                "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/local.pem",
                "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                "MessageAttributes": {
                    name: {
                        "Type": value.get("DataType", value.get("Type", "String")),
                        "Value": value.get("StringValue", value.get("Value")),
                    }
                    for name, value in (message_attributes or {}).items()
                },
            },
        }
        active().dispatch(self.endpoint, json.dumps({"Records": [record]}))
        return None

    Subscription.publish = publish  # type: ignore[method-assign,assignment]


def patch_moto() -> None:
    _patch_sns_lambda_delivery()
