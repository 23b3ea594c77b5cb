"""The send ledger: one SQLite row per (issue, recipient), each change journaled first."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from mailer.errors import LedgerError
from mailer.folder import Newsletter
from mailer.ledger.database import connect, current_boot_id, errors_of
from mailer.ledger.fence import Durability, Fence
from mailer.ledger.journal import Entry, Journal
from mailer.ledger.queries import Queries, stamp
from mailer.ledger.schema import State

_BATCH = 1000
_CHANGED = "no longer on the list, or unsubscribed: not sent"


class Ledger(Queries, Fence):
    """The send ledger of one newsletter folder; use each handle from one thread.

    durability "batched": a reservation of a batch is fsynced (the fence), `sending` and the
    outcomes are not, but for a retry's `sending`, outside the fence. "strict": every
    `sending` is fsynced, as before a batch had a fence.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        journal: Journal,
        durability: Durability,
        boot_id: str,
    ) -> None:
        self._db = db
        self.path = path
        self.journal = journal
        self.durability = durability
        self.boot_id = boot_id

    @classmethod
    def open(
        cls,
        folder: Path,
        *,
        durability: Durability = "batched",
        boot_id: str | None = None,
        check: bool = True,
    ) -> Ledger:
        """Open (creating if needed) the folder's ledger and journal; check and migrate it."""
        newsletter = Newsletter(folder)
        path = newsletter.ledger_path
        db = connect(path, synchronous="NORMAL", check=check)
        try:
            journal = Journal(newsletter.journal_path)
        except LedgerError:
            db.close()
            raise
        return cls(db, path, journal, durability, current_boot_id() if boot_id is None else boot_id)

    @classmethod
    def open_existing(cls, folder: Path) -> Ledger | None:
        """Open the folder's ledger if there is one: nothing sent yet creates none."""
        return cls.open(folder) if Newsletter(folder).ledger_path.is_file() else None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database and the journal."""
        self._db.close()
        self.journal.close()

    @contextmanager
    def _transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        with errors_of(self.path):
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT (disk full) leaves the transaction open: close it.
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def _single(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """Run one statement in autocommit: its own transaction, without BEGIN and COMMIT
        (a third of the statements of a message: per-message marks are one UPDATE each)."""
        if durable:
            with self._transaction(durable=True) as db:
                yield db
            return
        with errors_of(self.path):
            yield self._db

    def _journal(self, entries: list[Entry], *, durable: bool) -> int:
        return self.journal.append(entries, durable=durable)

    def start_issue(self, issue_id: str, content_hash: str, now: datetime) -> str | None:
        """Record the issue on first start; return the recorded hash if it differs."""
        at = stamp(now)
        with self._transaction() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO issues (issue_id, content_hash, started_at) "
                "VALUES (?, ?, ?)",
                (issue_id, content_hash, at),
            ).rowcount
            (recorded,) = db.execute(
                "SELECT content_hash FROM issues WHERE issue_id = ?", (issue_id,)
            ).fetchone()
        if inserted:
            self._journal(
                [Entry(issue_id, "started", at, content_hash=content_hash)], durable=False
            )
        return None if recorded == content_hash else str(recorded)

    def set_content_hash(self, issue_id: str, content_hash: str) -> None:
        """Record a new content hash for the issue (the caller accepted the change)."""
        at = stamp(datetime.now(UTC))
        self._journal([Entry(issue_id, "started", at, content_hash=content_hash)], durable=False)
        with self._transaction() as db:
            db.execute(
                "UPDATE issues SET content_hash = ? WHERE issue_id = ?", (content_hash, issue_id)
            )

    def add_pending(
        self, issue_id: str, rows: Iterable[tuple[str, str, str]], now: datetime
    ) -> int:
        """Add (key, email, message_id) rows not yet in the ledger as pending; return how many."""
        at, before, iterator = stamp(now), self._db.total_changes, iter(rows)
        while batch := list(itertools.islice(iterator, _BATCH)):
            with self._transaction() as db:
                # A recipient back on the list after being removed is pending again.
                db.executemany(
                    "INSERT INTO deliveries (issue_id, recipient_key, email, state, "
                    "message_id, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?) "
                    "ON CONFLICT (issue_id, recipient_key) DO UPDATE SET state = 'pending', "
                    "updated_at = excluded.updated_at WHERE state = 'removed'",
                    [(issue_id, key, email, mid, at, at) for key, email, mid in batch],
                )
        added = self._db.total_changes - before
        if added:
            # New recipients reopen a finished issue, so send-due picks it up again.
            self._db.execute("UPDATE issues SET finished_at = NULL WHERE issue_id = ?", (issue_id,))
        return added

    def mark_sending(self, issue_id: str, key: str, now: datetime) -> None:
        """Record that DATA was accepted and the message data is next (before its final dot)."""
        at, strict = stamp(now), self.durability == "strict"
        pos = self._journal([Entry(issue_id, "sending", at, key=key)], durable=strict)
        if not strict:
            with self._single() as db:
                fenced = ("reserved",)
                if self._update(
                    db, issue_id, key, "sending", None, None, at, pos, fenced, required=False
                ):
                    return  # the fence: its reservation's fsync covers this row
            # A retry (deferred, or back from a lost connection) is outside the fence: its
            # `sending` must be durable, or a power cut could leave it looking deferred
            # after its data went out.
            self.journal.sync()
        with self._single(durable=True) as db:
            self._update(db, issue_id, key, "sending", None, None, at, pos, self._TO_SEND)

    def mark_sent(self, issue_id: str, key: str, code: int, text: str, now: datetime) -> None:
        """Record that the server accepted the message."""
        self._set(issue_id, key, "sent", code, text, now)

    def mark_deferred(self, issue_id: str, key: str, code: int, text: str, now: datetime) -> None:
        """Record a temporary refusal (4xx): retry on the next run."""
        self._set(issue_id, key, "deferred", code, text, now)

    def mark_failed(self, issue_id: str, key: str, code: int, text: str, now: datetime) -> None:
        """Record a permanent refusal (5xx): never retry."""
        self._set(issue_id, key, "failed", code, text, now)

    def mark_pending(self, issue_id: str, key: str, code: int, text: str, now: datetime) -> None:
        """Record a refusal of the sender, not the recipient: they wait with the others."""
        self._set(issue_id, key, "pending", code, text, now)

    def mark_unknown(self, issue_id: str, key: str, text: str, now: datetime) -> None:
        """Record that the message may or may not have been delivered."""
        self._set(issue_id, key, "unknown", None, text, now)

    _TO_SEND = ("reserved", "pending", "deferred", "unknown")
    _TO_SETTLE = ("reserved", "pending", "sending", "deferred", "failed", "unknown")

    def _set(
        self,
        issue_id: str,
        key: str,
        state: State,
        code: int | None,
        text: str | None,
        now: datetime,
    ) -> None:
        at = stamp(now)
        entry = Entry(issue_id, state, at, key=key, code=code, text=text)
        pos = self._journal([entry], durable=False)
        with self._single() as db:
            self._update(db, issue_id, key, state, code, text, at, pos, self._TO_SETTLE)

    def mark_finished(self, issue_id: str, now: datetime) -> bool:
        """Set finished_at when nothing is left to send or in flight; return whether it is."""
        self._db.execute(
            "UPDATE issues SET finished_at = ? WHERE issue_id = ? AND finished_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = ? "
            "AND state IN ('pending', 'deferred', 'reserved', 'sending'))",
            (stamp(now), issue_id, issue_id),
        )
        found = self._db.execute(
            "SELECT finished_at FROM issues WHERE issue_id = ?", (issue_id,)
        ).fetchone()
        return found is not None and found[0] is not None

    def mark_removed(self, issue_id: str, keys: Iterable[str], now: datetime) -> int:
        """Set pending and deferred rows of these keys to removed; return how many."""
        at, wanted = stamp(now), list(keys)
        if not wanted:
            return 0
        pos = self._journal(
            [Entry(issue_id, "removed", at, key=k, text=_CHANGED) for k in wanted], durable=False
        )
        before = self._db.total_changes
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET state = 'removed', last_text = ?, updated_at = ?, "
                "jpos = ? WHERE issue_id = ? AND recipient_key = ? "
                "AND state IN ('pending', 'deferred')",
                [(_CHANGED, at, pos, issue_id, k) for k in wanted],
            )
        return self._db.total_changes - before
