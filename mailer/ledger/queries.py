"""What the ledger knows, read back: rows, counts, issues, holds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from mailer.ledger.schema import COLUMNS, STATES, IssueSummary, Row

_PAGE = 500


def stamp(now: datetime) -> str:
    """Return a moment as the ledger writes it: ISO 8601 in UTC, to the second."""
    return now.astimezone(UTC).isoformat(timespec="seconds")


class Queries:
    """The read side of the ledger, and the schedule's holds (not journaled: not deliveries)."""

    _db: sqlite3.Connection

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

    def keys_to_send(self, issue_id: str, *, resend_unknown: bool = False) -> set[str]:
        """Return the keys of the rows to_send would yield, read at once."""
        states = ("pending", "deferred", "unknown") if resend_unknown else ("pending", "deferred")
        marks = ", ".join("?" for _ in states)
        return {
            key
            for (key,) in self._db.execute(
                f"SELECT recipient_key FROM deliveries WHERE issue_id = ? AND state IN ({marks})",
                (issue_id, *states),
            )
        }

    def rows_of(self, issue_id: str) -> Iterator[Row]:
        """Yield every row of the issue, in the order added."""
        return self._rows("issue_id = ?", (issue_id,))

    def problems(self, issue_id: str | None) -> Iterator[Row]:
        """Yield the failed, deferred and unknown rows of one issue, or of every issue, and the
        pending ones a refusal of the sender sent back to wait (they say why)."""
        where = (
            "(state IN ('failed', 'deferred', 'unknown') "
            "OR (state = 'pending' AND last_code IS NOT NULL))"
        )
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

    def sent_since(self, moment: datetime) -> list[float]:
        """Return when messages were accepted since moment, across every issue (epoch seconds)."""
        return [
            datetime.fromisoformat(at).timestamp()
            for (at,) in self._db.execute(
                "SELECT updated_at FROM deliveries WHERE state = 'sent' AND updated_at >= ?",
                (stamp(moment),),
            )
        ]

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

    def hold(self, issue_id: str, reason: str, send_at: datetime, now: datetime) -> None:
        """Hold an issue scheduled at send_at back from scheduled sending; `send` lifts it."""
        self._db.execute(
            "INSERT OR REPLACE INTO holds (issue_id, held_at, reason, send_at) VALUES (?, ?, ?, ?)",
            (issue_id, stamp(now), reason, stamp(send_at)),
        )

    def held(self, issue_id: str, send_at: datetime) -> str | None:
        """Return why the issue is held at this send_at, or None (a new send_at lifts it)."""
        found = self._db.execute(
            "SELECT reason FROM holds WHERE issue_id = ? AND send_at = ?",
            (issue_id, stamp(send_at)),
        ).fetchone()
        return None if found is None else str(found[0])

    def lift_hold(self, issue_id: str) -> None:
        """Lift a hold: the issue is being sent on purpose."""
        self._db.execute("DELETE FROM holds WHERE issue_id = ?", (issue_id,))
