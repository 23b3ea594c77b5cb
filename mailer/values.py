"""Rules for values every stage shares: one safe line of text, and a duration."""

from __future__ import annotations

import re
from datetime import timedelta
from email.errors import HeaderParseError
from email.header import decode_header

# Line breaks of every kind: CR, LF, VT, FF, the file/group/record separators, NEL and the
# Unicode line and paragraph separators some clients break lines at.
_LINE_BREAK = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Other C0 and C1 controls, and lone surrogates (not encodable).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# What an author writes to smuggle a line break through a tool that decodes it later.
_WRITTEN_BREAK = re.compile(r"%0[adAD]|\\[rn]")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?", re.IGNORECASE)


def line_problem(value: str) -> str | None:
    """Return why value cannot stand as one line of a header, or None when it can.

    Encoded words (RFC 2047) are decoded and checked too: CVE-2024-6923, Python's email
    package may turn such words into real line breaks when it folds.
    """
    problem = _characters_problem(value)
    if problem or "=?" not in value:
        return problem
    try:
        decoded = "".join(
            part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
            for part, charset in decode_header(value)
        )
    except (ValueError, LookupError, HeaderParseError):
        return "contains a malformed encoded word (=?...?=)"
    problem = _characters_problem(decoded)
    return f"{problem} (hidden in an encoded word, RFC 2047)" if problem else None


def written_line_problem(value: str) -> str | None:
    """Return why a value typed into a file is not one safe line, or None.

    Stricter than line_problem: an escaped line break (%0A, a literal \\n) is refused too,
    since nobody types one into a subject or a name except to have it decoded later.
    """
    if _WRITTEN_BREAK.search(value):
        return "must be one line: remove the line break"
    return line_problem(value)


def _characters_problem(value: str) -> str | None:
    if _LINE_BREAK.search(value):
        return "must be one line: remove the line break"
    found = _CONTROL.search(value)
    if found:
        return f"contains the control character U+{ord(found.group()):04X}; retype it"
    return None


def parse_duration(text: str) -> timedelta:
    """Parse a duration like 6h, 90m, 1d or 2h30m; raise ValueError saying how to write one."""
    match = _DURATION.fullmatch(text.strip().replace(" ", ""))
    if not match or not any(match.groups()):
        raise ValueError(f'not a duration ("{text}"); write e.g. 6h, 90m, 1d or 2h30m')
    days, hours, minutes = (int(part) if part else 0 for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)
