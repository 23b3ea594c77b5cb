"""Rules for values every stage shares: one safe line of text, a duration, a folder path."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from email.errors import HeaderParseError
from email.header import decode_header

# Line breaks of every kind: CR, LF, VT, FF, the file/group/record separators, NEL and the
# Unicode line and paragraph separators some clients break lines at.
_LINE_BREAK = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Other C0 and C1 controls, and lone surrogates (not encodable).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Bidirectional embeddings, overrides and isolates (UAX #9): they show text in another order
# than it is stored, as in "Trojan Source" (CVE-2021-42574). The marks (U+200E, U+200F) are fine.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Everything above in one pattern: most values have none, and a list has many values.
_SUSPECT = re.compile(f"{_LINE_BREAK.pattern}|{_CONTROL.pattern}")
_SUSPECT_CELL = re.compile(f"{_SUSPECT.pattern}|{_BIDI.pattern}")
_CONTROL_NAMES = {0x00: "NUL", 0x09: "a tab", 0x1B: "escape"}
# What an author writes to smuggle a line break through a tool that decodes it later.
_WRITTEN_BREAK = re.compile(r"%0[adAD]|\\[rn]")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?", re.IGNORECASE)


def line_problem(value: str) -> str | None:
    """Return why value cannot stand as one line of a header, or None when it can.

    Encoded words (RFC 2047) are decoded and checked too: CVE-2024-6923, Python's email
    package may turn such words into real line breaks when it folds.
    """
    return _one_line_problem(value, bidi=False)


def written_line_problem(value: str) -> str | None:
    """Return why a value typed into a file is not one safe line, or None.

    Stricter than line_problem: an escaped line break (%0A, a literal \\n) is refused too,
    since nobody types one into a subject or a name except to have it decoded later.
    """
    if _WRITTEN_BREAK.search(value):
        return "must be one line: remove the line break"
    return line_problem(value)


def cell_problem(value: str) -> str | None:
    """Return why a value from a list's cell is not one plain, safe line, or None.

    Stricter than line_problem: bidirectional overrides and isolates are refused too, since
    a name read from someone else's export may reach a subject, a greeting or a link.
    """
    return _one_line_problem(value, bidi=True)


def _one_line_problem(value: str, *, bidi: bool) -> str | None:
    problem = _characters_problem(value, bidi=bidi)
    if problem or "=?" not in value:
        return problem
    try:
        decoded = "".join(
            part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
            for part, charset in decode_header(value)
        )
    except (ValueError, LookupError, HeaderParseError):
        return "contains a malformed encoded word (=?...?=)"
    problem = _characters_problem(decoded, bidi=bidi)
    return f"{problem} (hidden in an encoded word, RFC 2047)" if problem else None


def _characters_problem(value: str, *, bidi: bool) -> str | None:
    if not (_SUSPECT_CELL if bidi else _SUSPECT).search(value):
        return None
    if _LINE_BREAK.search(value):
        return "must be one line: remove the line break"
    found = _CONTROL.search(value)
    if found:
        code = ord(found.group())
        name = f" ({_CONTROL_NAMES[code]})" if code in _CONTROL_NAMES else ""
        return f"contains the control character U+{code:04X}{name}; retype it"
    found = _BIDI.search(value) if bidi else None
    if found:
        return (
            f"contains the bidirectional control U+{ord(found.group()):04X} "
            f"({unicodedata.name(found.group())}), which shows text in another order than it "
            "is written; retype it"
        )
    return None


def parse_duration(text: str) -> timedelta:
    """Parse a duration like 6h, 90m, 1d or 2h30m; raise ValueError saying how to write one."""
    match = _DURATION.fullmatch(text.strip().replace(" ", ""))
    if not match or not any(match.groups()):
        raise ValueError(f'not a duration ("{text}"); write e.g. 6h, 90m, 1d or 2h30m')
    days, hours, minutes = (int(part) if part else 0 for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def is_folder_path(src: str) -> bool:
    """Say whether src names a file in the newsletter folder rather than a web address."""
    text = src.strip()
    drive = re.match(r"^[A-Za-z]:[\\/]", text)  # C:\Users\...: a Windows path, not a scheme
    return bool(drive) or (not _SCHEME.match(text) and not text.startswith("//"))


def folder_path_problem(src: str) -> str | None:
    """Return what is wrong with a path in the newsletter folder as written, or None.

    A path is written from the folder with / between folders; it cannot leave the folder.
    """
    if not src.strip():
        return "empty; give a file in the folder, e.g. images/photo.jpg"
    if src.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", src):
        return (
            f'"{src}": copy the file into the newsletter folder and give the path from there, '
            "e.g. images/photo.jpg"
        )
    if "\\" in src:
        return f'"{src}": write / between folders, e.g. images/photo.jpg'
    if ".." in src.split("/"):
        return f'"{src}": the file must be inside the newsletter folder; copy it in'
    return None
