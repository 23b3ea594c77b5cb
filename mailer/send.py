"""Send an issue: plan it, then deliver it to every recipient exactly once, resumably."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailer.check import Finding
from mailer.config import Settings, load_settings
from mailer.delivery import Clock, DeliveryRun, Progress
from mailer.errors import DeliveryError, IssueError, RecipientsError
from mailer.issue import LoadedIssue, load_issue
from mailer.ledger import LEDGER_FILE, Ledger
from mailer.lock import folder_lock
from mailer.message import MessageFactory
from mailer.placeholders import columns_without_default
from mailer.recipients import (
    Recipient,
    RecipientScan,
    iter_recipients,
    load_unsubscribed,
    scan_recipients,
    validate_address,
)
from mailer.render import Rendered, render_issue
from mailer.transport import ConnectionLost, Outcome, SmtpConnection

UNSUBSCRIBED_FILE = "unsubscribed.csv"


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SendPlan:
    """Everything checked and rendered before anything is sent."""

    folder: Path
    settings: Settings
    loaded: LoadedIssue
    rendered: Rendered
    recipients_path: Path
    encoding: str
    scan: RecipientScan
    unsubscribed: frozenset[str]
    content_hash: str
    already_sent: int
    forced_errors: int

    @property
    def issue_id(self) -> str:
        """Return the issue's id in the ledger: its file name without .yaml."""
        return self.loaded.stem

    @property
    def server(self) -> str:
        """Return host:port of the SMTP server."""
        return f"{self.settings.smtp.host}:{self.settings.smtp.effective_port}"

    def recipients(self) -> Iterable[Recipient]:
        """Stream the sendable recipients again (never all in memory)."""
        return iter_recipients(self.recipients_path, self.unsubscribed, encoding=self.encoding)

    def factory(self, *, test: bool = False) -> MessageFactory:
        """Return the message builder for this issue."""
        secret = self.settings.unsubscribe_secret
        return MessageFactory.prepare(
            self.settings,
            self.rendered,
            self.issue_id,
            unsubscribe_secret=secret.get_secret_value() if secret else None,
            test=test,
        )


@dataclass
class SendReport:
    """What a real send did, for the closing summary."""

    issue_id: str
    counts: dict[str, int]
    sent_now: int = 0
    recovered_unknown: int = 0
    skipped_duplicates: int = 0
    skipped_unsubscribed: int = 0
    skipped_invalid: int = 0
    stopped: DeliveryError | None = None
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        """Return whether every recipient of the issue has been sent to."""
        return not any(self.counts.get(s, 0) for s in ("pending", "deferred", "failed", "unknown"))


def prepare_send(
    folder: Path,
    issue_path: Path,
    *,
    recipients_path: Path | None = None,
    skip_invalid: bool = False,
    encoding: str = "utf-8-sig",
    shown_issue: str | None = None,
    force: bool = False,
    proof: bool = False,
) -> SendPlan:
    """Validate settings, issue and list, render once and check; raise on anything to fix."""
    settings = load_settings(folder)
    loaded = load_issue(issue_path, shown_issue)
    rendered = render_issue(folder, loaded, settings)
    errors = _check_errors(folder, loaded, settings, rendered)
    if errors and not force:
        listed = "\n".join(f"  {finding}" for finding in errors)
        raise IssueError(
            f"{loaded.path}: {len(errors)} error(s) found by `mailer check`; nothing was sent. "
            f"Fix them, or pass --force to send anyway:\n{listed}"
        )
    # The settings' list belongs to the newsletter folder, never to the current directory
    # (cron starts in $HOME): a stray recipients.csv there must not receive another issue.
    path = recipients_path or folder / settings.recipients
    unsubscribed = frozenset(load_unsubscribed(folder / UNSUBSCRIBED_FILE))
    if proof:  # a proof goes to the addresses given; the list is not needed
        scan = RecipientScan(path, ["email"], valid=0)
    else:
        scan = scan_recipients(path, unsubscribed, encoding=encoding)
    if scan.problems and not skip_invalid:
        count = len(scan.problems)
        raise RecipientsError(
            f"{path}: {count} invalid row(s); nothing was sent. Fix them, or pass "
            "--skip-invalid to send to the rest",
            scan.problems,
        )
    missing = {
        column: expression
        for column, expression in columns_without_default(rendered.table.expressions).items()
        if column not in scan.columns and not proof
    }
    if missing:
        listed = "; ".join(f'"{{{{ {e} }}}}" uses "{c}"' for c, e in missing.items())
        raise RecipientsError(
            f"{loaded.path}: placeholders name columns {path} does not have: {listed} "
            f"(its columns: {', '.join(c for c in scan.columns if c)}); fix the name, or add "
            '| default("...") for rows without it'
        )
    if scan.valid == 0 and not proof:
        raise RecipientsError(f"{path}: no one to send to (columns: {', '.join(scan.columns)})")
    already = 0
    if (folder / LEDGER_FILE).exists():
        with Ledger.open(folder) as ledger:
            already = ledger.counts(loaded.stem).get("sent", 0)
    # What was sent, and to which list: a re-run with other content or another list stops.
    digest = hashlib.sha256(
        repr((rendered.subject.pieces, rendered.html.pieces, rendered.text.pieces)).encode()
        + repr(rendered.table.expressions).encode()
        + str(path.resolve()).encode()
    ).hexdigest()
    plan = SendPlan(
        folder,
        settings,
        loaded,
        rendered,
        path,
        encoding,
        scan,
        unsubscribed,
        digest,
        already,
        len(errors),
    )
    plan.factory()  # refuses now, not mid-run, when the unsubscribe secret is missing
    return plan


def _check_errors(
    folder: Path, loaded: LoadedIssue, settings: Settings, rendered: Rendered
) -> list[Finding]:
    """Return the errors `mailer check` finds in the email a sample recipient would get."""
    from mailer.check import email_findings
    from mailer.compose import SAMPLE_RECIPIENT, sample_extras

    email = rendered.personalise(SAMPLE_RECIPIENT, sample_extras(settings))
    return [f for f in email_findings(folder, loaded, settings, email) if f.severity == "error"]


def deliver(
    plan: SendPlan,
    *,
    resend_unknown: bool = False,
    allow_changes: bool = False,
    progress: Progress | None = None,
    started: Callable[[int], None] | None = None,
    stopping: Callable[[], None] | None = None,
    now: Clock = utc_now,
) -> SendReport:
    """Send to every recipient not yet sent, holding the folder lock; resumable at any point."""
    with folder_lock(plan.folder), Ledger.open(plan.folder) as ledger:
        factory = plan.factory()
        previous = ledger.start_issue(plan.issue_id, plan.content_hash, now())
        if previous is not None:
            if not allow_changes:
                sent = ledger.counts(plan.issue_id).get("sent", 0)
                raise IssueError(
                    f"{plan.loaded.path}: the issue, its layout, its settings or the "
                    f"recipients file ({plan.recipients_path}) changed since it was first sent "
                    f"({sent} already sent); send with what you first used, or pass "
                    "--allow-changes to send this to the rest"
                )
            ledger.set_content_hash(plan.issue_id, plan.content_hash)
        recovered = ledger.recover(plan.issue_id, now=now())
        ledger.add_pending(
            plan.issue_id,
            ((r.key, r.email, factory.message_id(r.key)) for r in plan.recipients()),
            now(),
        )
        wanted = {"pending", "deferred"} | ({"unknown"} if resend_unknown else set())
        counts = ledger.counts(plan.issue_id)
        if started is not None:
            started(sum(counts[state] for state in wanted))
        ledger.release(plan.issue_id)
        run = DeliveryRun(plan, factory, progress, now)
        on_list: set[str] = set()
        try:
            run.start()
            for recipient in plan.recipients():
                if run.stop.is_set():
                    break
                on_list.add(recipient.key)
                if ledger.state_of(plan.issue_id, recipient.key) in wanted:
                    run.put(recipient)
        except KeyboardInterrupt:
            run.interrupted = True
            run.stop.set()
            if stopping is not None:
                stopping()  # the wait for a reply can be long: say why nothing ends at once
        finally:
            run.finish()
        if run.crash is not None:
            raise run.crash
        if not run.stop.is_set():
            # Whoever is still to do but was not on the list this time (taken off it, or
            # unsubscribed) will not be sent to: say so, so the issue can finish.
            gone = [r.recipient_key for r in ledger.to_send(plan.issue_id)]
            ledger.mark_removed(plan.issue_id, [k for k in gone if k not in on_list], now())
        ledger.mark_finished(plan.issue_id, now())
        return SendReport(
            issue_id=plan.issue_id,
            counts=ledger.counts(plan.issue_id),
            sent_now=run.sent,
            recovered_unknown=recovered,
            skipped_duplicates=plan.scan.duplicates,
            skipped_unsubscribed=plan.scan.unsubscribed,
            skipped_invalid=len(plan.scan.problems),
            stopped=run.error,
            interrupted=run.interrupted,
        )


def send_test(
    plan: SendPlan, addresses: list[str], *, now: Clock = utc_now
) -> list[tuple[str, Outcome]]:
    """Send a marked proof to the given addresses only; the ledger is not touched."""
    bad = [f'"{a}": {problem}' for a in addresses if (problem := validate_address(a))]
    if bad:
        raise RecipientsError("--test: " + "; ".join(bad))
    factory = plan.factory(test=True)
    results = []
    with SmtpConnection(plan.settings.smtp) as connection:
        for address in addresses:
            message = factory.build({"email": address}, now=now())
            try:
                outcome = connection.send(
                    factory.envelope_sender,
                    message.recipient,
                    message.data,
                    on_accepted=lambda: None,
                )
            except ConnectionLost as err:
                outcome = Outcome("unknown", None, str(err))
            results.append((address, outcome))
            if not connection.is_open:
                connection.open()
    return results
