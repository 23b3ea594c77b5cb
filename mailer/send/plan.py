"""Plan a send: settings, issue, list and checks validated and the issue rendered, once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailer.checks import Finding, email_findings
from mailer.config import Settings
from mailer.errors import IssueError, RecipientsError
from mailer.folder import Newsletter
from mailer.issue import LoadedIssue, columns_without_default, load_issue
from mailer.ledger import Ledger
from mailer.mime import MessageFactory
from mailer.recipients import (
    Recipient,
    RecipientScan,
    iter_recipients,
    load_suppressed,
    scan_recipients,
)
from mailer.render import Rendered, render_issue, sample_email


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
    newsletter = Newsletter(folder)
    settings = newsletter.settings
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
    path = recipients_path or newsletter.recipients_path
    unsubscribed = frozenset(load_suppressed(newsletter))  # by hand, bounced, complained
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
    ledger = Ledger.open_existing(folder)
    if ledger is not None:
        with ledger:
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
    email = sample_email(rendered, settings)
    return [f for f in email_findings(folder, loaded, settings, email) if f.severity == "error"]
