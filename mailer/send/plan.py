"""Plan a send: settings, issue, list and checks validated and the issue rendered, once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailer.checks import (
    Finding,
    check_example_values,
    email_findings,
    refuse_example_values,
)
from mailer.config import Settings
from mailer.errors import IssueError, Problem, RecipientsError
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
    warnings: tuple[str, ...] = ()  # for the dry run or the send to print before it starts

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
    dry_run: bool = False,
) -> SendPlan:
    """Validate settings, issue and list, render once and check; raise on anything to fix.

    A dry run (dry_run) only warns where a real send refuses to start: empty cells that a
    placeholder without a default would show as nothing.
    """
    newsletter = Newsletter(folder)
    settings = newsletter.settings
    if not dry_run and not proof:  # mailer init's example From and footer (issue 14)
        refuse_example_values(settings)
    examples = [str(finding) for finding in check_example_values(settings)] if dry_run else []
    skip_invalid = skip_invalid or settings.recipients.skip_invalid  # [recipients] in mailer.toml
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
    needed = {} if proof else columns_without_default(rendered.table.expressions)
    if proof:  # a proof goes to the addresses given; the list is not needed
        scan = RecipientScan(path, ["email"], valid=0)
    else:
        scan = scan_recipients(path, unsubscribed, encoding=encoding, needed=needed.keys())
    if scan.problems and not skip_invalid:
        count = len(scan.problems)
        raise RecipientsError(
            f"{path}: {count} invalid row(s); nothing was sent. Fix them, or pass "
            "--skip-invalid to send to the rest",
            scan.problems,
        )
    missing = {column: e for column, e in needed.items() if column not in scan.columns}
    if missing:
        listed = "; ".join(f'"{{{{ {e} }}}}" uses "{c}"' for c, e in missing.items())
        raise RecipientsError(
            f"{loaded.path}: placeholders name columns {path} does not have: {listed} "
            f"(its columns: {', '.join(c for c in scan.columns if c)}); fix the name, or add "
            '| default("...") for rows without it'
        )
    warnings = examples + scan.duplicate_warnings()
    empty = _empty_cells(scan, needed)
    if empty:
        count = sum(cells.count for cells in scan.empty_cells.values())
        head = (
            f"{loaded.path}: {count} empty cell(s) in {path} for placeholders without a "
            'default: those recipients would read nothing there (as in "Hello ,")'
        )
        example = f'{{{{ recipient.{next(iter(scan.empty_cells))} | default("...") }}}}'
        fix = f"fill the cells, or give the placeholder a default: {example}"
        if not dry_run:
            raise RecipientsError(f"{head}; nothing was sent. To send, {fix}", empty)
        warnings += [f"{head}. A real send refuses to start until you {fix}", *map(str, empty)]
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
        + "".join(image.content_id for image in rendered.images).encode()  # a changed photo
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
        tuple(warnings),
    )
    plan.factory()  # refuses now, not mid-run, when the unsubscribe secret is missing
    return plan


def _empty_cells(scan: RecipientScan, needed: dict[str, str]) -> list[Problem]:
    """Return the empty cells of needed columns, column by column, each with its placeholder."""
    found: list[Problem] = []
    for column, empty in scan.empty_cells.items():
        said = f'empty, and "{{{{ {needed[column]} }}}}" has no default for it'
        found += [Problem(str(scan.path), line, None, empty.column, said) for line in empty.lines]
        if empty.count > len(empty.lines):
            more = f"{empty.count - len(empty.lines)} more row(s) with it empty"
            found.append(Problem(str(scan.path), None, None, empty.column, more))
    return found


def _check_errors(
    folder: Path, loaded: LoadedIssue, settings: Settings, rendered: Rendered
) -> list[Finding]:
    """Return the errors `mailer check` finds in the email a sample recipient would get."""
    email = sample_email(rendered, settings)
    return [f for f in email_findings(folder, loaded, settings, email) if f.severity == "error"]
