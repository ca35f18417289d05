"""E-mail helpers for SNS, whose subjects must be ASCII, one line and under 100 characters."""

from __future__ import annotations

MAX_SUBJECT = 99


def subject(text: str) -> str:
    line = " ".join(text.split()).encode("ascii", "replace").decode()
    return line if len(line) <= MAX_SUBJECT else line[: MAX_SUBJECT - 3].rstrip() + "..."
