"""The send ledger's SQLite tables, and the rows read from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# reserved: taken by a run, durably, before any of its batch's data went out (the fence);
# removed: no longer on the list (or unsubscribed) when a run went through it; not sent.
STATES = ("pending", "reserved", "sending", "sent", "deferred", "failed", "unknown", "removed")
State = Literal[
    "pending", "reserved", "sending", "sent", "deferred", "failed", "unknown", "removed"
]
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS issues (
    issue_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    issue_id TEXT NOT NULL,
    recipient_key TEXT NOT NULL,
    email TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'reserved', 'sending', 'sent',
        'deferred', 'failed', 'unknown', 'removed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_code INTEGER,
    last_text TEXT,
    message_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    boot_id TEXT,  -- the boot of the run that reserved the row: see Ledger.recover
    jpos INTEGER,  -- where in the journal its last change ends: a replay skips what is in
    PRIMARY KEY (issue_id, recipient_key)
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (issue_id, state);
CREATE TABLE IF NOT EXISTS holds (
    issue_id TEXT PRIMARY KEY,
    held_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    send_at TEXT NOT NULL  -- a hold is for this send_at only: a new time lifts it
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Version 1 had no `reserved` state (a CHECK constraint: the table is rebuilt) and no boot_id.
MIGRATE_FROM_1 = """
ALTER TABLE deliveries RENAME TO deliveries_v1;
DROP INDEX IF EXISTS deliveries_by_state;
{schema}
INSERT INTO deliveries (issue_id, recipient_key, email, state, attempts, last_code, last_text,
    message_id, created_at, updated_at)
    SELECT issue_id, recipient_key, email, state, attempts, last_code, last_text, message_id,
    created_at, updated_at FROM deliveries_v1;
DROP TABLE deliveries_v1;
"""
COLUMNS = (
    "issue_id, recipient_key, email, state, attempts, last_code, last_text, message_id, "
    "created_at, updated_at"
)


@dataclass(frozen=True)
class Row:
    """One recipient of one issue, as the ledger records it."""

    issue_id: str
    recipient_key: str
    email: str
    state: State
    attempts: int
    last_code: int | None
    last_text: str | None
    message_id: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class IssueSummary:
    """One issue the ledger knows, with how many recipients are in each state."""

    issue_id: str
    content_hash: str
    started_at: str
    finished_at: str | None
    counts: dict[str, int]
