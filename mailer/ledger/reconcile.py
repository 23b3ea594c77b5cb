"""Keep the ledger and its journal in step: replay, compare, rebuild.

The ledger records how far into the journal it is current (meta `journal_size`). At the start
of every send, what the journal holds beyond that is replayed into the ledger, so a ledger set
back in time (a restored backup, a lost `-wal` file, a file cut to 0 bytes) is brought
forward before anyone is picked to send to. A journal shorter than that mark lost entries
(it was deleted or restored): it is written anew from the ledger.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from mailer.errors import LedgerError
from mailer.ledger.journal import Entry, Journal

JOURNAL_SIZE = "journal_size"
_ATTEMPTED = ("sending", "sent", "failed", "deferred")  # a row first seen in such a state


def recorded_size(db: sqlite3.Connection) -> int:
    """Return how far into the journal the ledger is known to be current."""
    found = db.execute("SELECT value FROM meta WHERE key = ?", (JOURNAL_SIZE,)).fetchone()
    return int(found[0]) if found else 0


def record_size(db: sqlite3.Connection, size: int) -> None:
    """Record that the ledger holds every journal entry before byte size."""
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (JOURNAL_SIZE, str(size)),
    )


def replay(db: sqlite3.Connection, entries: Iterable[tuple[int, Entry]]) -> int:
    """Apply journal entries to the ledger, in order; return how many.

    A row takes an entry only if the entry ends after the row's last change (jpos): what the
    ledger holds already is not applied twice. `sent` is never undone.
    """
    applied = 0
    for pos, entry in entries:
        applied += 1
        if entry.state == "started":
            db.execute(
                "INSERT INTO issues (issue_id, content_hash, started_at) VALUES (?, ?, ?) "
                "ON CONFLICT (issue_id) DO UPDATE SET content_hash = excluded.content_hash",
                (entry.issue, entry.content_hash, entry.at),
            )
            continue
        db.execute(
            "INSERT OR IGNORE INTO issues (issue_id, content_hash, started_at) VALUES (?, '', ?)",
            (entry.issue, entry.at),
        )
        # Attempts count as Ledger._update counts them: at `sending`, or at a refusal that
        # came before the data; giving rows back or settling a crash counts none.
        db.execute(
            "INSERT INTO deliveries (issue_id, recipient_key, email, state, message_id, "
            "created_at, updated_at, last_code, last_text, boot_id, attempts, jpos) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (issue_id, recipient_key) DO UPDATE SET state = excluded.state, "
            "last_code = excluded.last_code, last_text = excluded.last_text, "
            "updated_at = excluded.updated_at, boot_id = coalesce(excluded.boot_id, boot_id), "
            "jpos = excluded.jpos, "
            "attempts = attempts + CASE WHEN excluded.state = 'sending' THEN 1 "
            "WHEN excluded.state IN ('reserved', 'pending', 'removed', 'unknown') THEN 0 "
            "WHEN deliveries.state = 'sending' THEN 0 ELSE 1 END "
            "WHERE deliveries.state != 'sent' AND coalesce(deliveries.jpos, -1) < excluded.jpos",
            (
                entry.issue,
                entry.key,
                entry.email or entry.key,
                entry.state,
                entry.message_id,
                entry.at,
                entry.at,
                entry.code,
                entry.text,
                entry.boot,
                int(entry.state in _ATTEMPTED),
                pos,
            ),
        )
    return applied


def snapshot(db: sqlite3.Connection) -> list[Entry]:
    """Return the ledger as journal entries: its issues, and every row that is not pending."""
    entries = [
        Entry(issue, "started", at, content_hash=content_hash)
        for issue, content_hash, at in db.execute(
            "SELECT issue_id, content_hash, started_at FROM issues ORDER BY rowid"
        )
    ]
    entries += [
        Entry(issue, state, at, key, email, mid, code, text, boot)
        for issue, key, email, state, mid, at, code, text, boot in db.execute(
            "SELECT issue_id, recipient_key, email, state, message_id, updated_at, last_code, "
            "last_text, boot_id FROM deliveries WHERE state != 'pending' ORDER BY rowid"
        )
    ]
    return entries


def rewrite_journal(db: sqlite3.Connection, journal: Journal) -> Journal:
    """Write the journal anew from the ledger (durably) and return it, opened."""
    partial = journal.path.with_name(journal.path.name + ".new")
    partial.unlink(missing_ok=True)
    fresh = Journal(partial)
    try:
        fresh.append(snapshot(db), durable=True)
    finally:
        fresh.close()
    try:
        os.replace(partial, journal.path)
    except OSError as err:
        raise LedgerError(f"{journal.path}: cannot replace the journal ({err.strerror})") from err
    journal.close()
    # The rows' journal offsets were those of the old file: every row is older than the new.
    db.execute("UPDATE deliveries SET jpos = 0")
    return Journal(journal.path)


def last_states(journal_path: Path) -> dict[tuple[str, str], str]:
    """Return each delivery's last state in the journal."""
    states: dict[tuple[str, str], str] = {}
    if not journal_path.exists():
        return states
    journal = Journal(journal_path)
    try:
        for _pos, entry in journal.read():
            if entry.state != "started":
                states[(entry.issue, entry.key)] = entry.state
    finally:
        journal.close()
    return states
