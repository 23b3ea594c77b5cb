"""Delivery reports: RFC 3464 DSNs, ARF complaints (RFC 5965), and the texts MTAs write instead.

Every reader returns the facts a report states (recipients, status, the server's words) and the
Message-IDs of the original it carries; which of our deliveries that was is the caller's business.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message

ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")  # RFC 3463
_SMTP_CODE = re.compile(r"(?<!\d)([45]\d\d)[ -]")
_MESSAGE_ID = re.compile(r"Message-I[Dd]\s*:\s*(<[^<>\s]+@[^<>\s]+>)", re.IGNORECASE)
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}")
# The words MTAs use for a mailbox that does not exist, when they give no 5.1.x (or give 5.0.0).
_NO_SUCH_USER = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|does ?n[o']t exist|"
    r"recipient ?not ?found|recipnotfound|invalid (recipient|mailbox)|mailbox not found|"
    r"address (couldn't|could not) be found|account (has been )?disabled|"
    r"no mailbox here|unrouteable address",
    re.IGNORECASE,
)
_TEMPORARY = re.compile(
    r"delayed|will (be )?retr|still trying|not yet been delivered|temporar", re.IGNORECASE
)
_PERMANENT = re.compile(
    r"permanent|could not be delivered|couldn't be delivered|wasn't delivered|"
    r"delivery has failed|failed to deliver|undeliverable|rejected|returned to sender",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|returned mail|delivery fail|failure notice|"
    r"mail delivery failed|non.?delivery|could not be delivered|returned to sender",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Report:
    """What a delivery report or complaint states about one original message."""

    kind: str  # hard-bounce, soft-bounce, delay, complaint
    recipients: tuple[str, ...]
    status: str
    detail: str


def parse(data: bytes) -> Message:
    """Parse raw message bytes (never raises: the email package records defects instead)."""
    return email.message_from_bytes(data, policy=email.policy.compat32)


def original_ids(message: Message) -> list[str]:
    """Return the Message-IDs of the original a report carries, best evidence first."""
    found: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                found.append(str(inner.get("Message-ID")))
        elif kind in ("text/rfc822-headers", "text/global-headers"):
            found += _MESSAGE_ID.findall(_text(part))
    # Prose reports quote the original's headers in their text ("Original message headers:").
    found += [i for p in message.walk() if p.get_content_type() == "text/plain"
              for i in _MESSAGE_ID.findall(_text(p))]  # fmt: skip
    for name in ("In-Reply-To", "References"):
        found += str(message.get(name) or "").split()
    return list(dict.fromkeys(i.strip() for i in found if i.strip().startswith("<")))


def read_dsn(message: Message) -> Report | None:
    """Read an RFC 3464 report (multipart/report; report-type=delivery-status), if it is one."""
    status_part = next(
        (p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        return None
    blocks = status_part.get_payload()
    fields = [b for b in blocks if isinstance(b, Message)] if isinstance(blocks, list) else []
    if not fields:
        # Some MTAs send the fields as one text body: read them as one header block.
        fields = [parse(block.encode()) for block in _text(status_part).split("\n\n")]
    failed, delayed = [], []
    for block in fields[1:] if len(fields) > 1 else fields:
        action = str(block.get("Action", "")).strip().lower()
        recipient = _address_field(block.get("Original-Recipient")) or _address_field(
            block.get("Final-Recipient")
        )
        status = str(block.get("Status", "")).strip()
        detail = " ".join(str(block.get("Diagnostic-Code", "")).split())
        if action == "failed":
            failed.append((recipient, status, detail))
        elif action == "delayed":
            delayed.append((recipient, status, detail))
    if failed:
        recipients = tuple(r for r, _s, _d in failed if r)
        _r, status, detail = failed[0]
        return Report(bounce_kind(status, detail), recipients, status, detail)
    if delayed:
        return Report("delay", tuple(r for r, _s, _d in delayed if r), delayed[0][1], "")
    return None  # delivered, relayed, expanded: good news, nothing to do


def read_arf(message: Message) -> Report | None:
    """Read an abuse report (RFC 5965 message/feedback-report), if it is one."""
    part = next(
        (p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None
    )
    if part is None:
        return None
    payload = part.get_payload()
    block = payload[0] if isinstance(payload, list) and payload else parse(_text(part).encode())
    assert isinstance(block, Message)
    recipients = [_address_field(v) for v in block.get_all("Original-Rcpt-To", [])]
    recipients += [_address_field(v) for v in block.get_all("Removal-Recipient", [])]
    feedback = str(block.get("Feedback-Type", "abuse")).strip() or "abuse"
    return Report("complaint", tuple(r for r in recipients if r), "", f"Feedback-Type: {feedback}")


def read_text_bounce(message: Message) -> Report | None:
    """Read a bounce written as prose (Exchange, old Gmail, qmail): no delivery-status part."""
    sender = str(message.get("From", "")).lower()
    subject = str(message.get("Subject", ""))
    daemon = "mailer-daemon" in sender or "postmaster" in sender
    failed_header = message.get("X-Failed-Recipients")
    flagged = failed_header is not None or message.get("X-MS-Exchange-Message-Is-Ndr") is not None
    report = message.get_param("report-type", header="Content-Type") == "delivery-status"
    if not (daemon or flagged or report or _BOUNCE_SUBJECT.search(subject)):
        return None
    text = "\n".join(_text(p) for p in message.walk() if p.get_content_type() == "text/plain")
    head = re.split(r"(?im)^.*original message|^received:", text, maxsplit=1)[0]
    enhanced = ENHANCED.search(head)
    status = ".".join(enhanced.groups()) if enhanced else ""
    code = _SMTP_CODE.search(head)
    if not status and code:
        status = f"{code.group(1)[0]}.0.0"
    if status.startswith("2.") or (not status and not _PERMANENT.search(head + subject)):
        return Report("delay", (), status, "") if _TEMPORARY.search(head + subject) else None
    if status.startswith("4.") and _TEMPORARY.search(head + subject):
        return Report("delay", (), status, "")
    failed = [a.strip() for a in str(failed_header or "").split(",") if "@" in a]
    failed += _ADDRESS.findall(head)
    line = next((ln for ln in head.splitlines() if status and status in ln), "")
    detail = " ".join(line.split()) or " ".join(head.split())[:200]
    return Report(bounce_kind(status or "5.0.0", detail), tuple(dict.fromkeys(failed)), status,
                  detail)  # fmt: skip


def bounce_kind(status: str, detail: str) -> str:
    """Return hard-bounce for a mailbox that is not there (5.1.x), else soft-bounce."""
    found = ENHANCED.search(status) or ENHANCED.search(detail)
    code = ".".join(found.groups()) if found else ""
    if code.startswith("5.0.") or not code:
        better = ENHANCED.search(detail)  # "Status: 5.0.0" with "550 5.1.1 ..." in the text
        code = ".".join(better.groups()) if better else code
    if code.startswith("5.1.") and code not in ("5.1.7", "5.1.8"):  # 5.1.7/8: our sender
        return "hard-bounce"
    if code == "5.2.1":  # mailbox disabled: the account is closed
        return "hard-bounce"
    if code.startswith("5.0.") or (not code and detail):
        return "hard-bounce" if _NO_SUCH_USER.search(detail) else "soft-bounce"
    return "soft-bounce"  # mailbox full, 4.x.x given up on, policy: three strikes


def _address_field(value: object) -> str:
    """Return the address in "rfc822; kim@example.org" (RFC 3464 2.3.2), or ""."""
    text = str(value or "")
    kind, _sep, address = text.partition(";")
    address = (address if _sep else kind).strip().strip("<>").strip()
    return address if "@" in address else ""


def _text(part: Message) -> str:
    """Return a part's text, decoded; never raises on a wrong or missing charset."""
    if part.is_multipart():
        return ""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return str(part.get_payload())
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, "replace")
    except LookupError:
        return raw.decode("latin-1")
