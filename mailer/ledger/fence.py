"""Durability: the fence (rows reserved before their data goes out, so a power cut sends
nobody twice), rows given back (release, requeue, recover), the journal brought back into
the ledger, and WAL checkpoints."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mailer.ledger.database import errors_of
from mailer.ledger.journal import Entry, Journal
from mailer.ledger.queries import stamp
from mailer.ledger.reconcile import merge, record_size, recorded_size, replay, rewrite_journal

if TYPE_CHECKING:
    from mailer.ledger.schema import State

Durability = Literal["batched", "strict"]


class Fence:
    """Reserve, release and recover a run's rows (part of Ledger)."""

    _db: sqlite3.Connection
    path: Path
    journal: Journal
    boot_id: str
    durability: Durability
    _TO_RESERVE = ("pending", "deferred", "unknown")

    if TYPE_CHECKING:

        def _journal(self, entries: list[Entry], *, durable: bool) -> int: ...

        def _transaction(
            self, *, durable: bool = False
        ) -> AbstractContextManager[sqlite3.Connection]: ...

        def state_of(self, issue_id: str, key: str) -> str | None: ...

    def _update(
        self,
        db: sqlite3.Connection,
        issue_id: str,
        key: str,
        state: State,
        code: int | None,
        text: str | None,
        at: str,
        pos: int,
        allowed: tuple[str, ...],
        *,
        required: bool = True,
    ) -> bool:
        """Move the row to state if it is in one of allowed; return whether it was.

        required: a row not in one of allowed is a bug (ValueError), not an answer.
        """
        # `sent` is final: nothing may turn a delivered row back into one that could be re-sent.
        # An attempt counts once: at `sending`, or at a refusal that came before DATA.
        marks = ", ".join("?" for _ in allowed)
        cursor = db.execute(
            "UPDATE deliveries SET state = ?, last_code = ?, last_text = ?, updated_at = ?, "
            "jpos = ?, boot_id = CASE WHEN ? = 'reserved' THEN ? ELSE boot_id END, "
            "attempts = attempts + CASE WHEN ? = 'sending' THEN 1 WHEN ? = 'reserved' THEN 0 "
            "WHEN state = 'sending' THEN 0 ELSE 1 END "
            f"WHERE issue_id = ? AND recipient_key = ? AND state IN ({marks})",
            (
                state,
                code,
                text,
                at,
                pos,
                state,
                self.boot_id,
                state,
                state,
                issue_id,
                key,
                *allowed,
            ),
        )
        if cursor.rowcount != 1 and required:
            was = self.state_of(issue_id, key)
            raise ValueError(f"ledger: cannot mark {issue_id}/{key} {state}: it is {was}")
        return cursor.rowcount == 1

    def reserve(self, issue_id: str, rows: list[tuple[str, str, str]], now: datetime) -> None:
        """Take (key, email, message_id) rows for this run before any of their data goes out.

        With durability "batched" this is the fence: one fsync for the whole batch.
        """
        at, durable = stamp(now), self.durability == "batched"
        pos = self._journal(
            [
                Entry(issue_id, "reserved", at, key, email, mid, boot=self.boot_id)
                for key, email, mid in rows
            ],
            durable=durable,
        )
        with self._transaction(durable=durable) as db:
            for key, _email, _mid in rows:
                self._update(db, issue_id, key, "reserved", None, None, at, pos, self._TO_RESERVE)

    def release(self, issue_id: str, now: datetime) -> int:
        """Give this run's reserved rows back (a clean stop); return how many."""
        at = stamp(now)
        keys = [
            key
            for (key,) in self._db.execute(
                "SELECT recipient_key FROM deliveries WHERE issue_id = ? AND state = 'reserved'",
                (issue_id,),
            )
        ]
        if keys:
            entries = [Entry(issue_id, "pending", at, key=key) for key in keys]
            pos = self._journal(entries, durable=False)
            with self._transaction() as db:
                db.executemany(
                    "UPDATE deliveries SET state = 'pending', updated_at = ?, jpos = ? "
                    "WHERE issue_id = ? AND recipient_key = ? AND state = 'reserved'",
                    [(at, pos, issue_id, key) for key in keys],
                )
        return len(keys)

    def requeue(self, issue_id: str, keys: Iterable[str] | None, now: datetime) -> int:
        """Put failed rows back to pending (these keys, or all); return how many."""
        at = stamp(now)
        wanted = (
            list(keys)
            if keys is not None
            else [
                key
                for (key,) in self._db.execute(
                    "SELECT recipient_key FROM deliveries WHERE issue_id = ? AND state = 'failed'",
                    (issue_id,),
                )
            ]
        )
        if not wanted:
            return 0
        pos = self._journal([Entry(issue_id, "pending", at, key=k) for k in wanted], durable=False)
        before = self._db.total_changes
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET state = 'pending', updated_at = ?, jpos = ? "
                "WHERE issue_id = ? AND recipient_key = ? AND state = 'failed'",
                [(at, pos, issue_id, k) for k in wanted],
            )
        requeued = self._db.total_changes - before
        # A re-opened issue is not finished, so send-due picks it up again.
        self._db.execute("UPDATE issues SET finished_at = NULL WHERE issue_id = ?", (issue_id,))
        return requeued

    def recover(self, issue_id: str, *, now: datetime | None = None) -> int:
        """Settle what an earlier run left in flight; return how many became unknown.

        `sending` rows may have been delivered: unknown. A `reserved` row never had its
        `sending` committed; if the machine did not restart since it was reserved, every
        commit of that run reached the WAL, so its data never went out: pending again.
        After a restart a commit may have been lost with the power: unknown.
        """
        at = stamp(now or datetime.now(UTC))
        lost = "interrupted while sending; the message may have been delivered"
        rows = self._db.execute(
            "SELECT recipient_key, state, boot_id FROM deliveries WHERE issue_id = ? "
            "AND state IN ('sending', 'reserved')",
            (issue_id,),
        ).fetchall()
        unknown = [key for key, state, boot in rows if state == "sending" or not self._same(boot)]
        back = [key for key, state, boot in rows if key not in set(unknown)]
        entries = [Entry(issue_id, "unknown", at, key=key, text=lost) for key in unknown]
        entries += [Entry(issue_id, "pending", at, key=key) for key in back]
        if not entries:
            return 0
        pos = self._journal(entries, durable=False)
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET state = 'unknown', last_text = ?, updated_at = ?, "
                "jpos = ? WHERE issue_id = ? AND recipient_key = ?",
                [(lost, at, pos, issue_id, key) for key in unknown],
            )
            db.executemany(
                "UPDATE deliveries SET state = 'pending', updated_at = ?, jpos = ? "
                "WHERE issue_id = ? AND recipient_key = ?",
                [(at, pos, issue_id, key) for key in back],
            )
        return len(unknown)

    def _same(self, boot_id: str | None) -> bool:
        return bool(boot_id) and boot_id == self.boot_id

    def reconcile(self) -> int:
        """Bring the ledger up to its journal (under the folder lock); return entries applied.

        The usual case: replay what the journal holds beyond the ledger's mark. A journal
        the ledger was not current with (restored, rewritten, replaced, or shorter than the
        mark) is merged both ways instead, a row only ever moving forward, and then written
        anew from the merged ledger.
        """
        with errors_of(self.path):
            recorded = recorded_size(self._db, self.journal.id)
            has_rows = self._db.execute("SELECT 1 FROM deliveries LIMIT 1").fetchone()
        size = self.journal.size()
        if recorded is None or size < recorded or (recorded == 0 and has_rows):
            with self._transaction(durable=True) as db:
                applied = merge(db, self.journal.read())
            self.journal = rewrite_journal(self._db, self.journal)
            return applied
        if size == recorded:
            return 0
        with self._transaction(durable=True) as db:
            applied = replay(db, self.journal.read(recorded, end=size))
            record_size(db, size, self.journal.id)
        return applied

    def mark_journal_applied(self) -> None:
        """Record that the ledger holds every journal entry so far (no write in flight)."""
        with self._transaction() as db:
            record_size(db, self.journal.size(), self.journal.id)

    def checkpoint(self, *, passive: bool = False) -> None:
        """Copy the WAL into the main file, so the main file alone is current.

        passive: as far as other writers allow, without waiting (a run in progress).
        """
        with errors_of(self.path):
            self._db.execute(f"PRAGMA wal_checkpoint({'PASSIVE' if passive else 'TRUNCATE'})")
