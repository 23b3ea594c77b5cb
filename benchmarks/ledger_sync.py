"""Measure the ledger's cost per message: fsync per commit (FULL) against none (NORMAL).

Two figures, each measuring what its line says:
1. plain SQLite single-row commits in WAL mode, synchronous=FULL against NORMAL;
2. the ledger's writes for one message (reserve, sending, sent, and the journal lines), with
   durability "strict" (an fsync at every `sending`) against "batched" (one fsync per
   reservation of 50).

Run from the folder whose disk the newsletter lives on: `python benchmarks/ledger_sync.py [DIR]`.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from mailer.ledger import Durability, Ledger

COMMITS = 2000
BATCH = 50


def sqlite_commits_per_second(folder: Path, synchronous: str) -> float:
    """Return single-row commits per second with the given synchronous mode (WAL)."""
    db = sqlite3.connect(folder / "bench.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, state TEXT)")
    started = time.perf_counter()
    for i in range(COMMITS):
        db.execute("BEGIN")
        db.execute("INSERT INTO t (state) VALUES (?)", (f"row {i}",))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return COMMITS / elapsed


def ledger_messages_per_second(folder: Path, durability: Durability) -> float:
    """Return messages per second the ledger records: reserve (in 50s), sending, sent."""
    now = datetime.now(UTC)
    keys = [f"r{i}@example.org" for i in range(COMMITS)]
    with Ledger.open(folder, durability=durability) as ledger:
        ledger.start_issue("bench", "hash", now)
        ledger.add_pending("bench", ((k, k, f"<{i}@x>") for i, k in enumerate(keys)), now)
        started = time.perf_counter()
        for first in range(0, COMMITS, BATCH):
            batch = keys[first : first + BATCH]
            ledger.reserve("bench", [(k, k, f"<{k}>") for k in batch], now)
            for key in batch:
                ledger.mark_sending("bench", key, now)
                ledger.mark_sent("bench", key, 250, "ok", now)
        return COMMITS / (time.perf_counter() - started)


def main() -> None:
    """Print both comparisons and their ratios."""
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    commits: dict[str, float] = {}
    for mode in ("FULL", "NORMAL"):
        with tempfile.TemporaryDirectory(dir=base) as folder:
            commits[mode] = sqlite_commits_per_second(Path(folder), mode)
        print(f"SQLite WAL, synchronous={mode:<6} {commits[mode]:>10,.0f} commits/s")
    print(f"NORMAL / FULL: {commits['NORMAL'] / commits['FULL']:.1f}x")
    messages: dict[Durability, float] = {}
    for durability in ("strict", "batched"):
        with tempfile.TemporaryDirectory(dir=base) as folder:
            messages[durability] = ledger_messages_per_second(Path(folder), durability)
        print(
            f"ledger, durability={durability:<8} {messages[durability]:>8,.0f} messages/s "
            f"({1000 / messages[durability]:.2f} ms a message)"
        )
    print(f"batched / strict: {messages['batched'] / messages['strict']:.1f}x")


if __name__ == "__main__":
    main()
