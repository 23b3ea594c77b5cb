"""Tell the editor: record each event once, then send what is pending through the relay.

A notification is a short plain-text message from the newsletter's own address, through the
same relay (mailer.smtp), marked Auto-Submitted (RFC 3834) so that no auto-reply answers it.
It is not a delivery: it is not in the ledger's deliveries, so it never counts against the
list or its quotas. When the relay cannot take it, the reason is returned (for the log and
`mailer status`) and a later run tries again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path

from mailer.addresses import wire_address
from mailer.config import Settings
from mailer.errors import MailerError
from mailer.folder import Newsletter
from mailer.notify.events import PROBLEMS, Event
from mailer.notify.store import NotifyStore, Pending
from mailer.smtp import ConnectionLost, SmtpConnection


@dataclass
class Told:
    """What tell_editor did: the subjects sent, and why the rest was not."""

    sent: list[str] = field(default_factory=list)
    problem: str | None = None


def tell_editor(
    folder: Path,
    settings: Settings,
    events: list[Event],
    now: datetime,
    *,
    resolved: Sequence[str] = (),
) -> Told:
    """Record the events not told yet, then send every pending notification to `notify`.

    resolved: issues ("" for the archive) whose problems are over: the same cause again
    later is news again.
    """
    told = Told()
    if not settings.notify:
        return told
    with NotifyStore.open(folder) as store:
        for issue_id in resolved:
            store.resolve(issue_id, PROBLEMS if issue_id else ("publish",), now)
        for event in events:
            store.record(event, now)
        due = store.pending(now)
        if not due:
            return told
        done: set[str] = set()
        try:
            with SmtpConnection(settings.smtp) as connection:
                for note in due:
                    delivered, problem = _send(connection, settings, note, store, now, folder)
                    done.add(note.key)
                    if delivered:
                        told.sent.append(note.subject)
                    if problem is not None:
                        told.problem = f"the editor was not told ({problem})"
        except MailerError as err:  # the relay is down, refused the login or the TLS check
            told.problem = f"the editor was not told ({err})"
            for note in due:
                if note.key not in done:
                    store.note_error(note.key, str(err))  # one mid-flight stays `sending`
    return told


def _send(
    connection: SmtpConnection,
    settings: Settings,
    note: Pending,
    store: NotifyStore,
    now: datetime,
    folder: Path,
) -> tuple[bool, str | None]:
    """Send one notification to every address; return whether any took it, and any refusal."""
    sender = wire_address(settings.from_address)
    problems: list[str] = []
    delivered = lasting = False
    for address in settings.notify:
        data = _message(settings, note, address, now, folder)
        try:
            outcome = connection.send(
                sender,
                wire_address(address),
                data,
                # Committed before the data goes out: if this run dies now, it may have
                # arrived, so it is never sent again (never twice for one event).
                on_accepted=lambda: store.mark(note.key, "sending", now),
            )
        except ConnectionLost as err:
            problems.append(f"{address}: {err}")
            connection.close()
            connection.open()
            continue
        if outcome.kind == "sent":
            delivered = True
            continue
        code = f"{outcome.code} " if outcome.code else ""
        problems.append(f"{address}: refused ({code}{outcome.text})")
        lasting = lasting or outcome.kind == "failed"
    problem = "; ".join(problems) or None
    # Refused for good (5xx): trying again every run would only fill the log.
    state = "sent" if delivered else "failed" if lasting else "pending"
    store.mark(note.key, state, now, problem)
    return delivered, problem


def _message(settings: Settings, note: Pending, address: str, now: datetime, folder: Path) -> bytes:
    """Return the notification as a plain-text message to one address."""
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr((f"{settings.name} (mailer)", wire_address(settings.from_address)))
    message["To"] = wire_address(address)
    message["Subject"] = f"[{settings.name}] {note.subject}"
    message["Date"] = format_datetime(now)
    digest = hashlib.sha256(f"{note.key}\n{address}".encode()).hexdigest()[:24]
    message["Message-ID"] = f"<notify.{digest}@{settings.sender_domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    log = Newsletter(folder).log_path
    message.set_content(
        f"{note.body}\n-- \nmailer, for the newsletter in {folder}; its log: {log}\n"
    )
    return message.as_bytes()
