"""`mailer inbox`: read the return mailbox, suppress who bounced, complained or unsubscribed.

Per batch of messages: read each one and decide, write the suppressions (suppressed.csv, or the
queue while a send runs), commit the inbox's memory, then move the messages away. A crash at any
point repeats at most the unfinished batch, and repeating it changes nothing a second time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mailer.addresses import address_key
from mailer.errors import MailerError
from mailer.folder import Newsletter
from mailer.inbox.deliveries import Deliveries, Delivery
from mailer.inbox.reports import Reading, read_message
from mailer.inbox.seen import InboxMemory
from mailer.inbox.sources import Source
from mailer.inbox.suppress import record_suppressions, stamp
from mailer.mime import read_unsubscribe_token
from mailer.recipients import Suppression, iter_recipients, load_suppressed

SOFT_LIMIT = 3  # soft bounces, in separate issues, before an address is suppressed
_BATCH = 100


@dataclass(frozen=True)
class Outcome:
    """What the run did (or, in a dry run, would do) for one address."""

    address: str
    reason: str  # hard-bounce, soft-bounce, complaint, unsubscribe, refused; or "soft n/3"
    issue: str
    detail: str
    suppressed: bool  # False: counted only (a soft bounce below the limit, or already off)


@dataclass
class InboxReport:
    """What one `mailer inbox` run found and did."""

    source: str
    dry_run: bool
    kinds: Counter[str] = field(default_factory=Counter)
    already: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)  # one line each, for -v
    stored: set[str] = field(default_factory=set)  # "written" and/or "queued"


def process_inbox(
    newsletter: Newsletter, source: Source, *, dry_run: bool, now: datetime
) -> InboxReport:
    """Read every message in source and act on it; record each once (see the module doc)."""
    run = _Run(newsletter, source.name, dry_run, stamp(now))
    with InboxMemory(
        newsletter.inbox_path, newsletter.inbox_lock_path, dry_run=dry_run
    ) as memory, Deliveries(
        newsletter.ledger_path
    ) as deliveries:  # fmt: skip
        run.memory, run.deliveries = memory, deliveries
        run.sweep_refusals()
        with source:
            done: list[str] = []
            for mailbox_id, data in source.messages():
                run.take(data)
                done.append(mailbox_id)
                if len(done) >= _BATCH:
                    run.flush(source.done, done)
                    done = []
            run.flush(source.done, done)
    return run.report


class _Run:
    def __init__(self, newsletter: Newsletter, source: str, dry_run: bool, at: str) -> None:
        self.newsletter, self.source, self.dry_run, self.at = newsletter, source, dry_run, at
        self.report = InboxReport(source, dry_run)
        self.settings = newsletter.settings
        secret = self.settings.unsubscribe_secret
        list_id = self.settings.list_id
        self.open_token: Callable[[str], str | None] = (
            (lambda token: read_unsubscribe_token(secret.get_secret_value(), list_id, token))
            if secret
            else (lambda token: None)
        )
        self.off = set(load_suppressed(newsletter))
        self.rows: list[Suppression] = []
        self.memory: InboxMemory
        self.deliveries: Deliveries
        self._listed: set[str] | None = None

    def sweep_refusals(self) -> None:
        """Suppress whom a send saw refused for good with 5.1.x (no such mailbox)."""
        for refusal in self.deliveries.refusals():
            who = refusal.delivery
            if self.memory.is_swept(who.issue_id, who.recipient_key):
                continue
            self.memory.mark_swept(who.issue_id, who.recipient_key)
            detail = f"{refusal.code} {refusal.text}"
            self.suppress(who.email, "refused", who.issue_id, detail, "send")

    def take(self, data: bytes) -> None:
        """Read one message and act on it, unless an earlier run already did."""
        try:
            reading = read_message(
                data,
                unsubscribe_address=self.settings.unsubscribe_mailto,
                open_token=self.open_token,
            )
        except Exception as err:  # mail from anyone must never stop the run
            reading = Reading("unrecognised", "", "", "", detail=f"cannot parse: {err!r}")
        if reading.message_key and self.memory.is_processed(reading.message_key):
            self.report.already += 1
            return
        self.report.kinds[reading.kind] += 1
        who = self.act(reading)
        if reading.message_key:
            self.memory.mark_processed(
                reading.message_key,
                reading.kind,
                who.email if who else None,
                who.issue_id if who else None,
                self.source,
                self.at,
            )

    def act(self, reading: Reading) -> Delivery | None:
        """Suppress, count, or leave alone; return the delivery the message was about."""
        if reading.kind == "unsubscribe":
            return self.unsubscribe(reading)
        if reading.kind not in ("hard-bounce", "soft-bounce", "complaint"):
            self.report.left_alone.append(reading.summary)
            return None
        who = self.deliveries.by_message_id(reading.original_ids)
        if who is None:  # no original attached: trust a named recipient only if we sent to it
            who = next(filter(None, map(self.deliveries.latest_for, reading.recipients)), None)
        if who is None:
            self.report.left_alone.append(f"{reading.summary}: not about a message we sent")
            return who
        detail = " ".join(filter(None, (reading.status, reading.detail)))
        if reading.kind != "soft-bounce":
            self.suppress(who.email, reading.kind, who.issue_id, detail, self.source)
            return who
        issues = self.memory.add_soft_bounce(who.recipient_key, who.issue_id, self.at, detail)
        if len(issues) >= SOFT_LIMIT and who.recipient_key not in self.off:
            detail = f"{len(issues)} issues ({', '.join(issues)}); last: {detail}"
            self.suppress(who.email, "soft-bounce", who.issue_id, detail, self.source)
        else:
            reason = f"soft bounce {min(len(issues), SOFT_LIMIT)} of {SOFT_LIMIT}"
            self.report.outcomes.append(Outcome(who.email, reason, who.issue_id, detail, False))
        return who

    def unsubscribe(self, reading: Reading) -> Delivery | None:
        """Honour a token; without one, only the listed address itself (RFC 2369 mailto)."""
        address = reading.token_address
        how = "mailto, with its token"
        if address is None and self.is_listed(reading.sender):
            address, how = reading.sender, "mailto, from the listed address"
        if address is None:
            self.report.left_alone.append(
                f"{reading.summary}: no valid token, and the sender is not on the list"
            )
            return None
        known = self.deliveries.latest_for(address)
        address = known.email if known else address  # as the list spells it, not the From
        issue = known.issue_id if known else ""
        self.suppress(address, "unsubscribe", issue, how, self.source)
        return known or Delivery(issue, address_key(address), address)

    def is_listed(self, address: str) -> bool:
        """Say whether an address was sent to, or is on the recipients list."""
        if not address or self.deliveries.latest_for(address) is not None:
            return bool(address)
        if self._listed is None:
            try:
                path = self.newsletter.recipients_path
                self._listed = {r.key for r in iter_recipients(path, frozenset())}
            except (MailerError, OSError):
                self._listed = set()  # no readable list here: the ledger has to do
        return address_key(address) in self._listed

    def suppress(self, address: str, reason: str, issue: str, detail: str, source: str) -> None:
        """Add a suppression (once per address: a second bounce changes nothing)."""
        key = address_key(address)
        fresh = key not in self.off
        self.report.outcomes.append(Outcome(address, reason, issue, detail, fresh))
        if fresh:
            self.off.add(key)
            self.rows.append(
                Suppression(address, "suppressed", reason, issue, self.at, source, detail)
            )

    def flush(self, move: Callable[[list[str]], None], mailbox_ids: list[str]) -> None:
        """Write the batch's suppressions, then commit the memory, then move the messages."""
        if self.dry_run:
            self.rows = []
            return
        self.report.stored.add(record_suppressions(self.newsletter, self.rows))
        self.rows = []
        self.memory.commit()
        move(mailbox_ids)
