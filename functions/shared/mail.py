"""E-mail helpers for SNS, whose subjects must be printable ASCII on one line, begin with a letter, number or
punctuation mark, and be under 100 characters (SNS answers InvalidParameter otherwise, and the e-mail is lost)."""

from __future__ import annotations

import unicodedata

MAX_SUBJECT = 99


def _ascii(char: str) -> str:
    if " " <= char <= "~":
        return char
    # Control, format and separator characters (ESC, NUL, line breaks, zero-width spaces) become spaces; any other
    # character outside ASCII a question mark, so the subject still shows that something was there.
    return " " if unicodedata.category(char)[0] in "CZ" else "?"


def subject(text: str) -> str:
    """`text` as a Subject SNS accepts, whatever it holds (user-supplied text, e.g. an error message, included)."""
    line = " ".join("".join(_ascii(char) for char in text).split()) or "(no subject)"
    return line if len(line) <= MAX_SUBJECT else line[: MAX_SUBJECT - 3].rstrip() + "..."
