"""The inbox's memory (.mailer/inbox.sqlite3): messages processed, soft bounces, refusals swept.

Its own file, not a table in the send ledger: the ledger's schema belongs to the send, and a
copy of this file for a dry run is cheap. One transaction per batch of messages, committed only
after the batch's suppressions are on disk (process, record, then move): a crash in between
rolls the batch back, and the next run reads the same messages again, to the same effect.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from types import TracebackType

from mailer.errors import LockedError, MailerError
from mailer.filelock import try_lock

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (
    message_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    address TEXT,
    issue_id TEXT,
    source TEXT NOT NULL,
    processed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS soft_bounces (
    address_key TEXT NOT NULL,
    issue_id TEXT NOT NULL,
    bounced_at TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (address_key, issue_id)
);
CREATE TABLE IF NOT EXISTS swept (
    issue_id TEXT NOT NULL,
    recipient_key TEXT NOT NULL,
    PRIMARY KEY (issue_id, recipient_key)
);
"""


class InboxMemory:
    """What earlier inbox runs did; a dry run works on a copy in memory."""

    def __init__(self, path: Path, lock_path: Path, *, dry_run: bool = False) -> None:
        self.path = path
        self._lock_fd: int | None = None
        try:
            if dry_run:
                self._db = sqlite3.connect(":memory:")
                if path.is_file():
                    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                    source.backup(self._db)
                    source.close()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._hold_run_lock(lock_path)
                self._db = sqlite3.connect(path, timeout=10.0)
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise MailerError(
                f"{path}: cannot open the inbox's memory ({err}); move it aside to start anew "
                "(messages already processed would then be read again, to the same effect)"
            ) from err

    def _hold_run_lock(self, path: Path) -> None:
        """One inbox run at a time (cron may start the next before this one ends)."""
        self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not try_lock(self._lock_fd):
            os.close(self._lock_fd)
            raise LockedError(
                f"{path.parent.parent}: another `mailer inbox` is running; let it finish"
            )

    def __enter__(self) -> InboxMemory:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db.rollback()  # whatever was not committed did not happen
        self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # drops the flock

    def commit(self) -> None:
        """Make the batch's records durable."""
        self._db.commit()

    def is_processed(self, message_key: str) -> bool:
        """Say whether a message was processed by an earlier run."""
        row = self._db.execute("SELECT 1 FROM processed WHERE message_key = ?", (message_key,))
        return row.fetchone() is not None

    def mark_processed(
        self, message_key: str, kind: str, address: str | None, issue_id: str | None,
        source: str, at: str,
    ) -> None:  # fmt: skip
        """Remember a message (inside the batch's transaction)."""
        self._db.execute(
            "INSERT OR IGNORE INTO processed VALUES (?, ?, ?, ?, ?, ?)",
            (message_key, kind, address, issue_id, source, at),
        )

    def add_soft_bounce(self, address_key: str, issue_id: str, at: str, detail: str) -> list[str]:
        """Record a soft bounce (one per issue); return the issues it has soft-bounced in."""
        self._db.execute(
            "INSERT OR IGNORE INTO soft_bounces VALUES (?, ?, ?, ?)",
            (address_key, issue_id, at, detail),
        )
        rows = self._db.execute(
            "SELECT issue_id FROM soft_bounces WHERE address_key = ? ORDER BY bounced_at, issue_id",
            (address_key,),
        )
        return [issue for (issue,) in rows]

    def forget_soft_bounces(self, address_key: str) -> None:
        """Start counting again from zero (the address was reinstated), and commit."""
        self._db.execute("DELETE FROM soft_bounces WHERE address_key = ?", (address_key,))
        self._db.commit()

    def is_swept(self, issue_id: str, recipient_key: str) -> bool:
        """Say whether a refusal in the ledger was already acted on."""
        row = self._db.execute(
            "SELECT 1 FROM swept WHERE issue_id = ? AND recipient_key = ?",
            (issue_id, recipient_key),
        )
        return row.fetchone() is not None

    def mark_swept(self, issue_id: str, recipient_key: str) -> None:
        """Remember a refusal in the ledger as acted on (inside the batch's transaction)."""
        self._db.execute("INSERT OR IGNORE INTO swept VALUES (?, ?)", (issue_id, recipient_key))
