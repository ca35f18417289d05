"""Alarm events for alarms the playbooks do not watch start nothing (the template's EventBridge patterns)."""

from __future__ import annotations

import json

from playbooks.local.account import LocalAccount
from playbooks.project import EVENTS


def test_every_alarm_sample_starts_its_playbook_and_an_unrelated_alarm_starts_nothing() -> None:
    samples = sorted(
        path for path in EVENTS.glob("*.json") if json.loads(path.read_text()).get("detail-type") == "CloudWatch Alarm State Change"
    )
    assert samples
    with LocalAccount() as account:
        for path in samples:
            event = json.loads(path.read_text())
            # the sample itself reaches exactly one playbook
            assert len(account.put_event(event)) == 1, path.name
            # the same event from another alarm, or the same alarm going back to OK, starts nothing
            other = dict(event, resources=["arn:aws:cloudwatch:us-east-1:123456789012:alarm:SomeoneElsesAlarm"])
            other["detail"] = dict(event["detail"], alarmName="SomeoneElsesAlarm")
            assert account.put_event(other) == [], path.name
            ok = dict(event, detail=dict(event["detail"], state=dict(event["detail"]["state"], value="OK")))
            assert account.put_event(ok) == [], path.name
