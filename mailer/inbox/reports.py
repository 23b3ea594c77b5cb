"""Read one returned message: a bounce, a complaint, an unsubscribe request, or to be left alone.

The order matters: reports first (a DSN carries `Auto-Submitted: auto-replied` too, RFC 3464
and RFC 3834 5; so does an Exchange NDR without its delivery-status part), then unsubscribe
requests, bounces written as prose, auto-replies, and the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Literal

from mailer.addresses import address_key
from mailer.inbox.dsn import original_ids as find_original_ids
from mailer.inbox.dsn import parse, read_arf, read_dsn, read_text_bounce

Kind = Literal[
    "hard-bounce", "soft-bounce", "delay", "complaint", "unsubscribe", "auto-reply",
    "unrecognised",
]  # fmt: skip
_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{24,400}(?![A-Za-z0-9_-])")
_UNSUBSCRIBE = re.compile(r"^\s*((re|aw|fwd?|wg)\s*:\s*)*unsubscribe\b", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[ -]?(reply|response)|autoreply|"
    r"auto:|abwesenheit|absence|r[ée]ponse automatique|on vacation|away from)",
    re.IGNORECASE,
)
_RECEIVING = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")


@dataclass(frozen=True)
class Reading:
    """What one returned message says, before it is tied to one of our deliveries."""

    kind: Kind
    message_key: str  # its own Message-ID, or a digest of its bytes when it has none
    sender: str
    subject: str
    recipients: tuple[str, ...] = ()
    original_ids: tuple[str, ...] = ()
    status: str = ""
    detail: str = ""
    token_address: str | None = None  # the address an unsubscribe token carries

    @property
    def summary(self) -> str:
        """Return one line for -v: who sent it, its subject, and what it is."""
        why = f" ({self.detail[:120]})" if self.detail else ""
        return f'{self.kind}: from {self.sender or "(no sender)"}, "{self.subject[:80]}"{why}'


def read_message(
    data: bytes, *, unsubscribe_address: str | None, open_token: Callable[[str], str | None]
) -> Reading:
    """Say what a returned message is; open_token reads the address an unsubscribe token holds."""
    message = parse(data)
    own_id = str(message.get("Message-ID") or "").strip()
    key = own_id if own_id.startswith("<") else "sha256:" + hashlib.sha256(data).hexdigest()
    sender = parseaddr(str(message.get("From") or ""))[1]
    subject = _header_text(message.get("Subject"))
    report = read_arf(message) or read_dsn(message)
    if report is None and _is_unsubscribe(message, subject, sender, unsubscribe_address):
        tokens = (open_token(t) for t in _TOKEN.findall(subject))
        found = next((address for address in tokens if address), None)
        return Reading("unsubscribe", key, sender, subject, token_address=found)
    if report is None:
        report = read_text_bounce(message)
    if report is not None:
        kind: Kind = _KINDS.get(report.kind, "unrecognised")
        ids = tuple(i for i in find_original_ids(message) if i != own_id)
        facts = (report.recipients, ids, report.status, report.detail)
        return Reading(kind, key, sender, subject, *facts)
    if _is_auto_reply(message, subject):
        return Reading("auto-reply", key, sender, subject)
    return Reading("unrecognised", key, sender, subject)


_KINDS: dict[str, Kind] = {
    "hard-bounce": "hard-bounce",
    "soft-bounce": "soft-bounce",
    "delay": "delay",
    "complaint": "complaint",
}


def _is_unsubscribe(
    message: Message, subject: str, sender: str, unsubscribe_address: str | None
) -> bool:
    """Say whether this is a request sent to the unsubscribe address (RFC 2369 mailto)."""
    local = sender.rpartition("@")[0].lower()
    if local in ("mailer-daemon", "postmaster") or "unsubscribe" not in subject.lower():
        return False
    if _UNSUBSCRIBE.match(subject):
        return True
    if unsubscribe_address is None:
        return False
    wanted = address_key(unsubscribe_address)
    received = [str(v) for name in _RECEIVING for v in message.get_all(name, [])]
    return any(address_key(a) == wanted for _n, a in getaddresses(received) if a)


def _is_auto_reply(message: Message, subject: str) -> bool:
    """Say whether a person's mail program answered for them (RFC 3834, and common headers)."""
    submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    if submitted and not submitted.startswith("no"):
        return True
    if any(
        message.get(h) is not None for h in ("X-Autoreply", "X-Autorespond", "X-Autoreply-From")
    ):
        return True
    precedence = str(message.get("Precedence", "")).strip().lower()
    return precedence == "auto_reply" or bool(_AUTO_SUBJECT.match(subject))


def _header_text(value: object) -> str:
    """Return a header decoded from RFC 2047 words, on one line; never raises."""
    text = str(value or "")
    with contextlib.suppress(ValueError, LookupError, UnicodeError):
        text = str(make_header(decode_header(text)))
    return " ".join(text.split())
