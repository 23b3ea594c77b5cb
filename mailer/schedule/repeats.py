"""Say a failure once: cron mails whatever send-due prints, and a run comes every few minutes.

The failures the last run printed are kept (as hashes) in .mailer/send-due.said; this run
prints a failure only if the last run did not, and logs the repeats. A failure that stops,
then comes back, is printed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

Report = Callable[[str], None]


@dataclass(frozen=True)
class Reporter:
    """Where send-due's lines go: good news, bad news (stderr, even with -q), the log only."""

    said: Report
    failed: Report
    noted: Report


@contextmanager
def said_once(path: Path, out: Reporter) -> Iterator[Reporter]:
    """Yield out, but with failures the last run printed going to the log only."""
    before = _read(path)
    now: set[str] = set()

    def failed(text: str) -> None:
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()
        (out.noted if key in before else out.failed)(text)
        now.add(key)

    try:
        yield Reporter(said=out.said, failed=failed, noted=out.noted)
    finally:
        if now != before:
            _write(path, now)


def _read(path: Path) -> set[str]:
    try:
        return set(path.read_text(encoding="ascii").split())
    except (OSError, UnicodeDecodeError):
        return set()  # none yet, or unreadable: say everything, as a first run would


def _write(path: Path, keys: set[str]) -> None:
    partial = path.with_name(path.name + ".part")
    with contextlib.suppress(OSError):  # at worst the next run says the same again
        partial.write_text("".join(f"{key}\n" for key in sorted(keys)), encoding="ascii")
        os.replace(partial, path)
