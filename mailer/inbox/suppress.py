"""Write the suppression list under the folder lock, or queue when a send holds it.

A send holds the folder lock for its whole run, which may be hours. A writer (the inbox run, the
one-click endpoint) waits for it only briefly (LOCK_WAIT); then its rows go to the queue
(.mailer/suppress-queue.csv, appended in one write under the queue's own flock). The queue counts
at once, since every reader of the list reads it too, and the next writer that gets the lock
moves it into suppressed.csv, which is only ever replaced whole (write, fsync, rename).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Literal

from mailer.addresses import address_key
from mailer.errors import LockedError
from mailer.folder import Newsletter
from mailer.ledger import folder_lock
from mailer.recipients import (
    Suppression,
    append_queued,
    drained_queue,
    load_unsubscribed,
    read_suppressions,
    remove_unsubscribed,
    suppressed_now,
    write_suppressions,
)

LOCK_WAIT = 2.0  # seconds: an HTTP client should not wait longer for its answer
# folder_lock is re-entrant per process, not per thread: two endpoint threads would both
# "hold" it. One writer at a time inside the process, then the flock between processes.
_one_writer = threading.Lock()


def stamp(now: datetime) -> str:
    """Return a time as suppressed.csv writes it."""
    return now.astimezone(UTC).isoformat(timespec="seconds")


def record_suppressions(
    newsletter: Newsletter, rows: Iterable[Suppression], *, wait: float = LOCK_WAIT
) -> Literal["written", "queued", "nothing"]:
    """Add rows to the list durably; say whether they went to suppressed.csv or the queue."""
    rows = list(rows)
    if not rows:
        return "nothing"
    with _one_writer:
        try:
            with _lock_within(newsletter, wait):
                _merge(newsletter, rows)
                return "written"
        except LockedError:
            append_queued(newsletter.suppress_queue_path, rows)
            return "queued"


def reinstate(
    newsletter: Newsletter, addresses: list[str], note: str, now: datetime
) -> dict[str, str]:
    """Take addresses off the list (both files), recording why; return address -> what it was.

    Needs the folder lock (after a brief wait): raise LockedError while a send runs.
    """
    keys = {address_key(a): a.strip() for a in addresses}
    with _one_writer, _lock_within(newsletter, LOCK_WAIT):
        _merge(newsletter, [])  # the queue first: it may hold the row to undo
        current = suppressed_now(read_suppressions(newsletter.suppressed_path))
        by_hand = load_unsubscribed(newsletter.unsubscribed_path) & keys.keys()
        remove_unsubscribed(newsletter.unsubscribed_path, by_hand)
        was: dict[str, str] = {}
        rows = []
        for key, address in keys.items():
            if key in current:
                row = current[key]
                issue = f", issue {row.issue}" if row.issue else ""
                was[address] = f"{row.reason}{issue}, {row.at}"
            elif key in by_hand:
                was[address] = "in unsubscribed.csv"
            else:
                continue
            detail = f"{note}; was {was[address]}" if note else f"was {was[address]}"
            rows.append(Suppression(address, "reinstated", "reinstated", "", stamp(now),
                                    "by hand", detail))  # fmt: skip
        _merge(newsletter, rows)
        return was


def count_suppressions(newsletter: Newsletter) -> Counter[str]:
    """Return how many addresses are off the list, by reason ("by hand": unsubscribed.csv)."""
    queued = read_suppressions(newsletter.suppress_queue_path, header=False)
    current = suppressed_now(read_suppressions(newsletter.suppressed_path) + queued)
    counts = Counter(row.reason for row in current.values())
    counts["by hand"] = len(load_unsubscribed(newsletter.unsubscribed_path) - current.keys())
    return +counts


def _merge(newsletter: Newsletter, rows: list[Suppression]) -> None:
    """Drain the queue and add rows to suppressed.csv, skipping what changes nothing."""
    with drained_queue(newsletter.suppress_queue_path) as queued:
        existing = read_suppressions(newsletter.suppressed_path)
        current = suppressed_now(existing)
        added: list[Suppression] = []
        for row in [*queued, *rows]:
            if (row.action == "suppressed") == (row.key in current):
                continue  # already suppressed (a replay, a second bounce), or not suppressed
            added.append(row)
            if row.action == "suppressed":
                current[row.key] = row
            else:
                current.pop(row.key, None)
        if added or queued:
            write_suppressions(newsletter.suppressed_path, [*existing, *added])


@contextlib.contextmanager
def _lock_within(newsletter: Newsletter, wait: float) -> Iterator[None]:
    """Hold the folder lock, trying for up to wait seconds; raise LockedError after that."""
    deadline = time.monotonic() + wait
    with contextlib.ExitStack() as stack:
        while True:
            try:
                stack.enter_context(folder_lock(newsletter.dir))
                break
            except LockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        yield
