"""Measure ledger commits per second with synchronous=FULL and NORMAL (WAL both ways).

Run from the folder whose disk the newsletter lives on: `python benchmarks/ledger_sync.py [DIR]`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from mailer.ledger import Ledger, Synchronous

COMMITS = 2000


def measure(folder: Path, synchronous: Synchronous) -> float:
    """Return commits per second for COMMITS single-row commits (one mark_sending each)."""
    now = datetime.now(UTC)
    with Ledger.open(folder, synchronous=synchronous) as ledger:
        ledger.start_issue("bench", "hash", now)
        ledger.add_pending(
            "bench",
            ((f"r{i}@example.org", f"r{i}@example.org", f"<{i}@x>") for i in range(COMMITS)),
            now,
        )
        start = time.perf_counter()
        for i in range(COMMITS):
            ledger.mark_sending("bench", f"r{i}@example.org", now)
        return COMMITS / (time.perf_counter() - start)


def main() -> None:
    """Print commits per second for each mode and the ratio."""
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    results: dict[Synchronous, float] = {}
    for mode in ("FULL", "NORMAL"):
        with tempfile.TemporaryDirectory(dir=base) as folder:
            results[mode] = measure(Path(folder), mode)
        print(f"synchronous={mode:<6} {results[mode]:>10,.0f} commits/s")
    print(f"NORMAL is {results['NORMAL'] / results['FULL']:.1f}x faster than FULL")
    # A message costs two commits (sending, then sent); at the default 10 messages/s a
    # message has a 100 ms slot, so this is the share of that slot the ledger takes.
    for mode, rate in results.items():
        print(f"synchronous={mode:<6} {2000 / rate:.2f} ms of ledger time per message")


if __name__ == "__main__":
    main()
