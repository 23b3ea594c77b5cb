"""Helpers for crash tests: kill a send at a chosen moment, then check the ledger's promises."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from tests.sending import ISSUE, cli, deliveries
from tests.smtp_servers import SmtpServer

STEM = Path(ISSUE).stem
LOST = "interrupted while sending"


def ledger_states(folder: Path) -> dict[str, str]:
    """Return each recipient's state in the ledger, read without writing anything."""
    uri = f"file:{folder / '.mailer' / 'ledger.sqlite3'}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            rows = db.execute("SELECT email, state FROM deliveries WHERE issue_id = ?", (STEM,))
            return dict(rows.fetchall())
    except sqlite3.OperationalError:
        return {}  # not created yet


def settle(folder: Path, server: SmtpServer, emails: list[str], *, connections: int) -> set[str]:
    """Check the guarantees after a re-run; return the recipients the ledger calls unknown."""
    states = ledger_states(folder)
    unknown = {email for email, state in states.items() if state == "unknown"}
    counts = deliveries(server, unacknowledged=True)
    assert max(counts.values(), default=0) <= 1, f"somebody got the issue twice: {counts}"
    assert {e for e in emails if counts.get(e) != 1} <= unknown, "somebody was lost"
    assert len(unknown) <= connections, f"more unknown than connections: {sorted(unknown)}"
    assert {e for e, s in states.items() if s == "sent"} == set(emails) - unknown
    code, out, _err = cli("status", STEM)
    # Finished, in the words schedule and status share: sent, or partly sent with unknown.
    assert code == 0 and re.search(rf"^{STEM}: (sent|partly sent \(finished)", out, re.M), out
    for email in unknown:
        # One attempt, or two when an earlier run had it deferred: the count is the ledger's.
        assert re.search(rf"{re.escape(email)}: unknown after [12] attempt\(s\): {LOST}", out), out
    assert f"{len(emails) - len(unknown)} sent" in out
    return unknown


def kill_when(
    process: subprocess.Popen[str], ready: Callable[[], bool], after: float, *, wait: float = 20
) -> None:
    """SIGKILL the process `after` seconds after ready() first holds (polled tightly)."""
    deadline, came = time.monotonic() + wait, False
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if ready():
                came = True
                time.sleep(after)
                break
            time.sleep(0.0005)
    finally:
        if process.poll() is None:
            process.kill()
        _out, err = process.communicate(timeout=30)
    assert came, f"the moment to kill never came: {err}"
    assert process.returncode == -signal.SIGKILL, f"the send ended before the kill: {err}"
