"""`mailer ledger check` and `mailer ledger rebuild`: what is wrong, and a ledger made anew."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailer.errors import LedgerError
from mailer.folder import Newsletter
from mailer.ledger.reconcile import last_states
from mailer.ledger.store import Ledger


@dataclass
class LedgerCheck:
    """What `mailer ledger check` found."""

    ledger_path: Path
    journal_path: Path
    problems: list[str] = field(default_factory=list)
    rows: int = 0
    journal_rows: int = 0
    behind: int = 0  # deliveries whose ledger state is not their journal's last state

    @property
    def healthy(self) -> bool:
        """Say whether nothing needs doing."""
        return not self.problems


def check_ledger(folder: Path) -> LedgerCheck:
    """Check the ledger (SQLite's quick_check) and compare it with its journal."""
    newsletter = Newsletter(folder)
    report = LedgerCheck(newsletter.ledger_path, newsletter.journal_path)
    try:
        journal = last_states(newsletter.journal_path)
    except LedgerError as err:
        report.problems.append(str(err))
        journal = {}
    report.journal_rows = len(journal)
    if not report.ledger_path.exists():
        if journal:
            report.problems.append(
                f"{report.ledger_path}: missing, but its journal knows {len(journal)} "
                "deliveries; run `mailer ledger rebuild` (the next send would restore them too)"
            )
        return report
    try:
        with Ledger.open(folder) as ledger:
            ledger_states = {
                (row.issue_id, row.recipient_key): row.state
                for summary in ledger.issues()
                for row in ledger.rows_of(summary.issue_id)
            }
    except LedgerError as err:
        report.problems.append(str(err))
        return report
    report.rows = len(ledger_states)
    report.behind = sum(
        1 for key, state in journal.items() if ledger_states.get(key, "pending") != state
    )
    if report.behind:
        report.problems.append(
            f"{report.behind} deliveries are behind the journal (the ledger was set back: a "
            "restored backup, a lost -wal file); the next send brings them forward, or run "
            "`mailer ledger rebuild`"
        )
    return report


def rebuild_ledger(folder: Path, now: datetime | None = None) -> tuple[Path | None, int]:
    """Move the ledger aside and build a new one from the journal; return (aside, entries).

    Call under the folder lock. The journal must exist: without it there is nothing to build
    from, and a new, empty ledger would send everyone the issues again.
    """
    newsletter = Newsletter(folder)
    if not newsletter.journal_path.is_file() or not newsletter.journal_path.stat().st_size:
        raise LedgerError(
            f"{newsletter.journal_path}: no journal to rebuild the ledger from; restore "
            f"{newsletter.ledger_path} (and its journal) from a backup of the whole folder"
        )
    aside = None
    moved: list[tuple[Path, Path]] = []
    if newsletter.ledger_path.exists():
        moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        aside = newsletter.ledger_path.with_name(f"{newsletter.ledger_path.name}.{moment}")
        for suffix in ("", "-wal", "-shm"):
            old = Path(str(newsletter.ledger_path) + suffix)
            if old.exists():
                try:
                    os.replace(old, Path(str(aside) + suffix))
                except OSError as err:
                    raise LedgerError(f"{old}: cannot move it aside ({err.strerror})") from err
                moved.append((Path(str(aside) + suffix), old))
    try:
        with Ledger.open(folder) as ledger:
            applied = ledger.reconcile()
            ledger.checkpoint()
    except LedgerError:
        # Put the old ledger back: an empty one in its place would send everyone the issues.
        for suffix in ("", "-wal", "-shm"):
            Path(str(newsletter.ledger_path) + suffix).unlink(missing_ok=True)
        for source, target in moved:
            os.replace(source, target)
        raise
    return aside, applied
