"""What the ledger says about the folder's issues: who has each one, and why the others not."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from mailer.errors import LockedError, MailerError
from mailer.folder import Newsletter
from mailer.ledger.lock import folder_lock
from mailer.ledger.schema import IssueSummary, Row
from mailer.ledger.store import Ledger


@dataclass(frozen=True)
class IssueStatus:
    """One issue in the ledger: its counts, and every recipient with a problem."""

    summary: IssueSummary
    problems: list[Row]

    @property
    def finished(self) -> bool:
        """Say whether nothing is left to send (a re-run would send nothing)."""
        return self.summary.finished_at is not None


def read_status(folder: Path, issue_id: str | None = None) -> list[IssueStatus]:
    """Return the status of every issue in the ledger (or one); empty when nothing was sent.

    Raise MailerError when the issue asked for is not in the ledger.
    """
    _bring_forward(folder)
    ledger = Ledger.open_existing(folder)
    if ledger is None:
        if issue_id is not None:
            raise MailerError(f"{issue_id}: not in the ledger; nothing was sent for it")
        return []
    with ledger:
        summaries = [s for s in ledger.issues() if issue_id in (None, s.issue_id)]
        if issue_id is not None and not summaries:
            raise MailerError(f"{issue_id}: not in the ledger; nothing was sent for it")
        problems = list(ledger.problems(issue_id))
    return [
        IssueStatus(summary, [row for row in problems if row.issue_id == summary.issue_id])
        for summary in summaries
    ]


def _bring_forward(folder: Path) -> None:
    """Replay the journal into a ledger that is behind it (cut, restored), unless a send is
    running: that send did so when it started."""
    if not Newsletter(folder).journal_path.is_file():
        return
    with contextlib.suppress(LockedError), folder_lock(folder), Ledger.open(folder) as ledger:
        ledger.reconcile()


def sent_issues(folder: Path) -> dict[str, IssueSummary]:
    """Return the issues that went out to someone (or finished); no ledger means none."""
    ledger = Ledger.open_existing(folder)
    if ledger is None:
        return {}
    with ledger:
        summaries = ledger.issues()
    # Started counts once anyone has it: their copy's links must work too.
    return {s.issue_id: s for s in summaries if s.finished_at or s.counts.get("sent")}
