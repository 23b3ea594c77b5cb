"""What the editor was told, and the unattended runs: two tables of our own in the ledger file.

They live beside the deliveries (one file to back up) but are not deliveries: nothing here
is journaled or counted against the list or its quotas. An event is recorded once, by its
key; a notification goes pending -> sending (committed just before its data goes out) ->
sent, or back to pending with the reason (the relay is down: a later run tries again), or
failed (refused for good). One found `sending` may have arrived: it is never sent again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from mailer.errors import LedgerError
from mailer.folder import Newsletter
from mailer.ledger import Ledger
from mailer.notify.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    event_key TEXT PRIMARY KEY,
    issue_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at TEXT,
    last_error TEXT,
    resolved_at TEXT  -- the cause went away: the same cause later is a new event
);
CREATE TABLE IF NOT EXISTS unattended_runs (
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    lines TEXT NOT NULL,
    notify_problem TEXT
);
"""
KEEP_RUNS = 200  # about 16 hours of 5-minute ticks
RETRY_FOR = timedelta(days=3)  # a notification the relay would not take is tried this long


@dataclass(frozen=True)
class Pending:
    """A recorded notification not yet sent."""

    key: str
    subject: str
    body: str
    created_at: str


@dataclass(frozen=True)
class RunRecord:
    """One unattended run as `mailer status` shows it."""

    started_at: str
    finished_at: str
    exit_code: int
    lines: list[str]
    notify_problem: str | None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class NotifyStore:
    """The notifications and unattended runs of one newsletter folder."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, folder: Path) -> NotifyStore:
        """Open the tables in the folder's ledger (created, checked and migrated by the ledger)."""
        Ledger.open(folder).close()
        path = Newsletter(folder).ledger_path
        with _errors(path):
            db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            try:
                db.executescript(SCHEMA)
            except BaseException:
                db.close()
                raise
        return cls(db, path)

    @classmethod
    def open_existing(cls, folder: Path) -> NotifyStore | None:
        """Open the store if the folder has a ledger: reading creates nothing."""
        return cls.open(folder) if Newsletter(folder).ledger_path.is_file() else None

    def __enter__(self) -> NotifyStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db.close()

    def record(self, event: Event, now: datetime) -> bool:
        """Record an event to tell; return False if it was recorded already (and not resolved)."""
        with _errors(self.path):
            cursor = self._db.execute(
                "INSERT INTO notifications (event_key, issue_id, kind, subject, body, created_at,"
                " state) VALUES (?, ?, ?, ?, ?, ?, 'pending') ON CONFLICT (event_key) DO UPDATE"
                " SET subject = excluded.subject, body = excluded.body, created_at ="
                " excluded.created_at, state = 'pending', attempts = 0, sent_at = NULL,"
                " last_error = NULL, resolved_at = NULL WHERE resolved_at IS NOT NULL",
                (event.key, event.issue_id, event.kind, event.subject, event.body, _stamp(now)),
            )
            return cursor.rowcount > 0

    def resolve(self, issue_id: str, kinds: tuple[str, ...], now: datetime) -> None:
        """Mark the issue's events of these kinds resolved: the same cause again is news."""
        marks = ", ".join("?" for _ in kinds)
        with _errors(self.path):
            self._db.execute(
                f"UPDATE notifications SET resolved_at = ? WHERE issue_id = ? AND kind IN ({marks})"
                " AND resolved_at IS NULL",
                (_stamp(now), issue_id, *kinds),
            )

    def pending(self, now: datetime) -> list[Pending]:
        """Return the notifications to send now, oldest first (recent ones only)."""
        with _errors(self.path):
            rows = self._db.execute(
                "SELECT event_key, subject, body, created_at FROM notifications WHERE state ="
                " 'pending' AND created_at >= ? ORDER BY created_at, rowid",
                (_stamp(now - RETRY_FOR),),
            ).fetchall()
        return [Pending(*row) for row in rows]

    def mark(self, key: str, state: str, now: datetime, error: str | None = None) -> None:
        """Set a notification's state: sending, sent, pending (to retry) or failed."""
        with _errors(self.path):
            self._db.execute(
                "UPDATE notifications SET state = ?, attempts = attempts + (? = 'sending'),"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END,"
                " last_error = coalesce(?, last_error) WHERE event_key = ?",
                (state, state, state, _stamp(now), error, key),
            )

    def note_error(self, key: str, error: str) -> None:
        """Say why a pending notification was not sent (it stays pending for the next run)."""
        with _errors(self.path):
            self._db.execute(
                "UPDATE notifications SET last_error = ? WHERE event_key = ? AND state = 'pending'",
                (error, key),
            )

    def unsent(self) -> list[tuple[str, str, str | None]]:
        """Return (subject, state, last error) of notifications not delivered, newest first."""
        with _errors(self.path):
            rows = self._db.execute(
                "SELECT subject, state, last_error FROM notifications WHERE state != 'sent'"
                " ORDER BY created_at DESC, rowid DESC LIMIT 20"
            ).fetchall()
        return [(str(subject), str(state), error) for subject, state, error in rows]

    def record_run(self, run: RunRecord) -> None:
        """Record an unattended run; keep the last KEEP_RUNS."""
        with _errors(self.path):
            self._db.execute(
                "INSERT INTO unattended_runs VALUES (?, ?, ?, ?, ?)",
                (
                    run.started_at,
                    run.finished_at,
                    run.exit_code,
                    "\n".join(run.lines),
                    run.notify_problem,
                ),
            )
            self._db.execute(
                "DELETE FROM unattended_runs WHERE rowid NOT IN (SELECT rowid FROM"
                " unattended_runs ORDER BY rowid DESC LIMIT ?)",
                (KEEP_RUNS,),
            )

    def last_run(self) -> RunRecord | None:
        """Return the last unattended run, or None."""
        with _errors(self.path):
            row = self._db.execute(
                "SELECT started_at, finished_at, exit_code, lines, notify_problem FROM"
                " unattended_runs ORDER BY rowid DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        started, finished, code, lines, problem = row
        return RunRecord(started, finished, int(code), str(lines).splitlines(), problem)


@contextmanager
def _errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as err:
        raise LedgerError(
            f"{path}: cannot record the editor's notifications ({err}); check the disk "
            "(free space, permissions); `mailer ledger check` says more"
        ) from err
