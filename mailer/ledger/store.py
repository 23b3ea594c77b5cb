"""The send ledger: one SQLite row per (issue, recipient), committed before each SMTP step."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from mailer.errors import MailerError
from mailer.folder import Newsletter
from mailer.ledger.schema import COLUMNS, SCHEMA, STATES, IssueSummary, Row, State

Synchronous = Literal["FULL", "NORMAL"]
DEFAULT_SYNCHRONOUS: Synchronous = "NORMAL"  # with FULL for `sending`: see mailer.ledger
_BATCH = 1000
_PAGE = 500


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds")


class Ledger:
    """The send ledger of one newsletter folder; use it from one thread."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._synchronous: Synchronous = "NORMAL"
        self.path = path

    @classmethod
    def open(cls, folder: Path, *, synchronous: Synchronous = DEFAULT_SYNCHRONOUS) -> Ledger:
        """Open (creating if needed) the folder's send ledger."""
        path = Newsletter(folder).ledger_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: every method commits before it returns, in its own transaction.
            db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as err:
            raise MailerError(f"{path}: cannot open the send ledger ({err})") from err
        try:
            db.execute("PRAGMA journal_mode=WAL")
            mode: Synchronous = "NORMAL" if synchronous == "NORMAL" else "FULL"
            db.execute(f"PRAGMA synchronous={mode}")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:
            db.close()
            raise MailerError(
                f"{path}: not a usable send ledger ({err}); move it aside to start a new one"
            ) from err
        ledger = cls(db, path)
        ledger._synchronous = mode
        return ledger

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
        """Close the database."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full) leaves the transaction open; close it so the next works.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def start_issue(self, issue_id: str, content_hash: str, now: datetime) -> str | None:
        """Record the issue on first start; return the recorded hash if it differs."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO issues (issue_id, content_hash, started_at) "
                "VALUES (?, ?, ?)",
                (issue_id, content_hash, _stamp(now)),
            )
            (recorded,) = db.execute(
                "SELECT content_hash FROM issues WHERE issue_id = ?", (issue_id,)
            ).fetchone()
        return None if recorded == content_hash else str(recorded)

    def set_content_hash(self, issue_id: str, content_hash: str) -> None:
        """Record a new content hash for the issue (the caller accepted the change)."""
        self._db.execute(
            "UPDATE issues SET content_hash = ? WHERE issue_id = ?", (content_hash, issue_id)
        )

    def recover(self, issue_id: str, *, now: datetime | None = None) -> int:
        """Turn the issue's `sending` rows into `unknown` after a crash; return how many."""
        cursor = self._db.execute(
            "UPDATE deliveries SET state = 'unknown', last_text = ?, updated_at = ? "
            "WHERE issue_id = ? AND state = 'sending'",
            (
                "interrupted while sending; the message may have been delivered",
                _stamp(now or datetime.now(UTC)),
                issue_id,
            ),
        )
        return cursor.rowcount

    def add_pending(
        self, issue_id: str, rows: Iterable[tuple[str, str, str]], now: datetime
    ) -> int:
        """Add (key, email, message_id) rows not yet in the ledger as pending; return how many."""
        stamp, before, iterator = _stamp(now), self._db.total_changes, iter(rows)
        while batch := list(itertools.islice(iterator, _BATCH)):
            with self._transaction() as db:
                # A recipient back on the list after being removed is pending again.
                db.executemany(
                    "INSERT INTO deliveries (issue_id, recipient_key, email, state, "
                    "message_id, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?) "
                    "ON CONFLICT (issue_id, recipient_key) DO UPDATE SET state = 'pending', "
                    "updated_at = excluded.updated_at WHERE state = 'removed'",
                    [(issue_id, key, email, mid, stamp, stamp) for key, email, mid in batch],
                )
        added = self._db.total_changes - before
        if added:
            # New recipients reopen a finished issue, so send-due picks it up again.
            self._db.execute("UPDATE issues SET finished_at = NULL WHERE issue_id = ?", (issue_id,))
        return added

    def state_of(self, issue_id: str, key: str) -> str | None:
        """Return the recipient's state for the issue, or None when not in the ledger."""
        row = self.row(issue_id, key)
        return None if row is None else row.state

    def row(self, issue_id: str, key: str) -> Row | None:
        """Return the recipient's row for the issue, or None when not in the ledger."""
        found = self._db.execute(
            f"SELECT {COLUMNS} FROM deliveries WHERE issue_id = ? AND recipient_key = ?",
            (issue_id, key),
        ).fetchone()
        return None if found is None else Row(*found)

    def to_send(self, issue_id: str, *, resend_unknown: bool = False) -> Iterator[Row]:
        """Yield the pending and deferred rows (and unknown, if asked) in the order added."""
        states = ("pending", "deferred", "unknown") if resend_unknown else ("pending", "deferred")
        marks = ", ".join("?" for _ in states)
        return self._rows(f"issue_id = ? AND state IN ({marks})", (issue_id, *states))

    def problems(self, issue_id: str | None) -> Iterator[Row]:
        """Yield the failed, deferred and unknown rows of one issue, or of every issue."""
        where = "state IN ('failed', 'deferred', 'unknown')"
        if issue_id is None:
            return self._rows(where, ())
        return self._rows(f"issue_id = ? AND {where}", (issue_id,))

    def _rows(self, where: str, params: tuple[Any, ...]) -> Iterator[Row]:
        # Page by rowid rather than hold one cursor open: the caller updates these very rows
        # between steps, and an open SELECT over rows it changes may see them twice.
        last = 0
        while True:
            page = self._db.execute(
                f"SELECT rowid, {COLUMNS} FROM deliveries WHERE {where} AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (*params, last, _PAGE),
            ).fetchall()
            for rowid, *values in page:
                last = rowid
                yield Row(*values)
            if len(page) < _PAGE:
                return

    def mark_sending(self, issue_id: str, key: str, now: datetime) -> None:
        """Record, durably, that the server accepted RCPT and DATA is next."""
        self._db.execute("PRAGMA synchronous=FULL")  # must survive a power cut: see the top
        try:
            self._set(issue_id, key, "sending", None, None, now, ("pending", "deferred", "unknown"))
        finally:
            self._db.execute(f"PRAGMA synchronous={self._synchronous}")

    def mark_sent(self, issue_id: str, key: str, code: int, text: str, now: datetime) -> None:
        """Record that the server accepted the message."""
        self._set(issue_id, key, "sent", code, text, now)

    def mark_deferred(self, issue_id: str, key: str, code: int, text: str, now: datetime) -> None:
        """Record a temporary refusal (4xx): retry on the next run."""
        self._set(issue_id, key, "deferred", code, text, now)

    def mark_failed(self, issue_id: str, key: str, code: int, text: str, now: datetime) -> None:
        """Record a permanent refusal (5xx): never retry."""
        self._set(issue_id, key, "failed", code, text, now)

    def mark_unknown(self, issue_id: str, key: str, text: str, now: datetime) -> None:
        """Record that the message may or may not have been delivered."""
        self._set(issue_id, key, "unknown", None, text, now)

    def _set(
        self,
        issue_id: str,
        key: str,
        state: State,
        code: int | None,
        text: str | None,
        now: datetime,
        allowed: tuple[str, ...] = ("pending", "sending", "deferred", "failed", "unknown"),
    ) -> None:
        # `sent` is final: nothing may turn a delivered row back into one that could be re-sent.
        # An attempt counts once: at `sending`, or at a refusal that came before DATA.
        marks = ", ".join("?" for _ in allowed)
        cursor = self._db.execute(
            "UPDATE deliveries SET state = ?, last_code = ?, last_text = ?, updated_at = ?, "
            "attempts = attempts + (CASE WHEN ? = 'sending' OR state != 'sending' THEN 1 "
            "ELSE 0 END) "
            f"WHERE issue_id = ? AND recipient_key = ? AND state IN ({marks})",
            (state, code, text, _stamp(now), state, issue_id, key, *allowed),
        )
        if cursor.rowcount != 1:
            was = self.state_of(issue_id, key)
            raise ValueError(f"ledger: cannot mark {issue_id}/{key} {state}: it is {was}")

    def mark_finished(self, issue_id: str, now: datetime) -> bool:
        """Set finished_at when nothing is pending, deferred or sending; return whether it is."""
        self._db.execute(
            "UPDATE issues SET finished_at = ? WHERE issue_id = ? AND finished_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = ? "
            "AND state IN ('pending', 'deferred', 'sending'))",
            (_stamp(now), issue_id, issue_id),
        )
        found = self._db.execute(
            "SELECT finished_at FROM issues WHERE issue_id = ?", (issue_id,)
        ).fetchone()
        return found is not None and found[0] is not None

    def mark_removed(self, issue_id: str, keys: Iterable[str], now: datetime) -> int:
        """Set pending and deferred rows of these keys to removed; return how many."""
        before = self._db.total_changes
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET state = 'removed', last_text = ?, updated_at = ? "
                "WHERE issue_id = ? AND recipient_key = ? AND state IN ('pending', 'deferred')",
                [
                    ("no longer on the list, or unsubscribed: not sent", _stamp(now), issue_id, k)
                    for k in keys
                ],
            )
        return self._db.total_changes - before

    def hold(self, issue_id: str, reason: str, send_at: datetime, now: datetime) -> None:
        """Hold an issue scheduled at send_at back from scheduled sending; `send` releases it."""
        self._db.execute(
            "INSERT OR REPLACE INTO holds (issue_id, held_at, reason, send_at) VALUES (?, ?, ?, ?)",
            (issue_id, _stamp(now), reason, _stamp(send_at)),
        )

    def held(self, issue_id: str, send_at: datetime) -> str | None:
        """Return why the issue is held at this send_at, or None (a new send_at lifts it)."""
        found = self._db.execute(
            "SELECT reason FROM holds WHERE issue_id = ? AND send_at = ?",
            (issue_id, _stamp(send_at)),
        ).fetchone()
        return None if found is None else str(found[0])

    def release(self, issue_id: str) -> None:
        """Lift a hold: the issue is being sent on purpose."""
        self._db.execute("DELETE FROM holds WHERE issue_id = ?", (issue_id,))

    def counts(self, issue_id: str) -> dict[str, int]:
        """Return how many of the issue's recipients are in each state, zeros included."""
        counts = dict.fromkeys(STATES, 0)
        for state, count in self._db.execute(
            "SELECT state, COUNT(*) FROM deliveries WHERE issue_id = ? GROUP BY state", (issue_id,)
        ):
            counts[state] = count
        return counts

    def issues(self) -> list[IssueSummary]:
        """Return every issue the ledger knows, oldest first, with its counts."""
        return [
            IssueSummary(issue_id, content_hash, started, finished, self.counts(issue_id))
            for issue_id, content_hash, started, finished in self._db.execute(
                "SELECT issue_id, content_hash, started_at, finished_at FROM issues "
                "ORDER BY started_at, issue_id"
            ).fetchall()
        ]
