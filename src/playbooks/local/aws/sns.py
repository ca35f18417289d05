"""SNS: notifications delivered to Lambda subscribers as real-shaped records; Publish's Subject rules."""

from __future__ import annotations

import datetime
import json
import string
from typing import Any

from ..recorder import error_response
from .runtime import Gap, Handler, Source, active

GAPS = [
    Gap(
        "sns:Publish to a Lambda subscription",
        "invokes the function with the notification (real MessageId, TopicArn, Subject, attributes)",
        "invokes it outside our dispatch with a fixed sample record: we deliver the real-shaped record to the real handler",
        sources=(
            Source(
                "AWS SDK Code Examples, Invoke a Lambda function from an Amazon SNS trigger",
                "https://docs.aws.amazon.com/code-library/latest/ug/sns_example_serverless_SNS_Lambda_section.html",
            ),
        ),
    ),
    Gap(
        "sns:Publish Subject",
        "a Subject must be ASCII text that begins with a letter, number or punctuation mark, with no line breaks or control "
        "characters, and fewer than 100 characters; otherwise InvalidParameter 'Invalid parameter: Subject' (HTTP 400) "
        "(Amazon SNS API Reference, Publish: Subject; the current page says 'UTF-8 text', earlier ones 'ASCII text': the "
        "stricter reading is taken, as Amazon Managed Service for Prometheus' SNS receiver also treats control and "
        "non-ASCII characters in a subject as invalid)",
        "rejects only a subject over 100 characters: we refuse every subject AWS refuses",
        sources=(
            Source(
                "AWS SDK for Kotlin API reference, SNS PublishRequest.subject",
                "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/sns/aws.sdk.kotlin.services.sns.model/-publish-request/subject.html",
            ),
            Source(
                "Amazon Managed Service for Prometheus user guide, Understanding Amazon SNS message validation rules",
                "https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-alertmanager-receiver-validation-truncation.html",
            ),
        ),
    ),
]
# Printable ASCII; the first character may not be a space.
_SUBJECT_CHARACTERS = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")
_SUBJECT_FIRST = frozenset(string.ascii_letters + string.digits + string.punctuation)
MAX_SUBJECT_LENGTH = 99


def subject_problem(subject: str) -> str | None:
    """Why SNS refuses `subject` (None when it accepts it)."""
    if not subject or subject[0] not in _SUBJECT_FIRST:
        return "it must begin with a letter, number or punctuation mark"
    if len(subject) > MAX_SUBJECT_LENGTH:
        return f"it has {len(subject)} characters, fewer than 100 are allowed"
    if any(char not in _SUBJECT_CHARACTERS for char in subject):
        return "it holds a line break, a control character or a non-ASCII character"
    return None


def _publish(params: dict[str, Any]) -> Any:
    if "Subject" in params and subject_problem(str(params["Subject"])) is not None:
        return error_response("InvalidParameter", "Invalid parameter: Subject", 400)
    return None  # moto publishes


# The calls this module answers instead of moto.
HANDLERS: dict[str, Handler] = {
    "sns:Publish": _publish,
}


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
