"""Read an SMTP reply: its kind from the code's first digit, its text on one line."""

from __future__ import annotations

from typing import Literal

Kind = Literal["sent", "deferred", "failed", "unknown"]
_KINDS: dict[int, Kind] = {2: "sent", 4: "deferred", 5: "failed"}  # RFC 5321 4.2.1


def reply_kind(code: int) -> Kind:
    """Classify a reply code by its first digit."""
    return _KINDS.get(code // 100, "unknown")


def reply_text(reply: bytes | str) -> str:
    """Return a server reply as one line of text."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
