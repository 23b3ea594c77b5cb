"""The send ledger, on a real SQLite file, including a process killed mid-send."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailer.errors import MailerError
from mailer.ledger import STATES, Ledger, export_problems_csv

REPO_DIR = Path(__file__).resolve().parent.parent
NOW = datetime(2023, 10, 20, 9, 0, tzinfo=UTC)
ISSUE = "12"


def rows(*keys: str) -> list[tuple[str, str, str]]:
    """Return ledger rows (key, email, message id) for the given addresses."""
    return [(key.lower(), key, f"<{key.lower()}.12@news.example.org>") for key in keys]


@pytest.fixture
def ledger(isolated: Path) -> Iterator[Ledger]:
    """Yield a ledger in the test's newsletter folder, with issue 12 started."""
    with Ledger.open(isolated) as opened:
        opened.start_issue(ISSUE, "hash-1", NOW)
        yield opened


def test_open_creates_a_wal_database_under_dot_mailer(isolated: Path) -> None:
    with Ledger.open(isolated) as ledger:
        ledger.start_issue(ISSUE, "hash-1", NOW)
    path = isolated / ".mailer" / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT issue_id, started_at FROM issues").fetchall() == [
            ("12", "2023-10-20T09:00:00+00:00")
        ]


def test_a_file_that_is_not_a_database_is_a_user_error(isolated: Path) -> None:
    (isolated / ".mailer").mkdir()
    (isolated / ".mailer" / "ledger.sqlite3").write_text("not a database, just text " * 100)
    with pytest.raises(MailerError, match="not a usable send ledger"):
        Ledger.open(isolated)


def test_start_issue_reports_a_changed_hash_and_keeps_the_first(ledger: Ledger) -> None:
    later = NOW + timedelta(days=1)
    assert ledger.start_issue(ISSUE, "hash-1", later) is None
    assert ledger.start_issue(ISSUE, "hash-2", later) == "hash-1"
    ledger.set_content_hash(ISSUE, "hash-2")
    assert ledger.start_issue(ISSUE, "hash-2", later) is None
    assert [(s.issue_id, s.content_hash, s.started_at) for s in ledger.issues()] == [
        ("12", "hash-2", "2023-10-20T09:00:00+00:00")
    ]


def test_add_pending_is_idempotent_and_counts_only_new_rows(ledger: Ledger) -> None:
    assert ledger.add_pending(ISSUE, rows("a@x.org", "b@x.org"), NOW) == 2
    assert ledger.add_pending(ISSUE, rows("a@x.org", "b@x.org", "c@x.org"), NOW) == 1
    assert ledger.counts(ISSUE) == dict.fromkeys(STATES, 0) | {"pending": 3}


def test_add_pending_handles_more_than_one_batch_lazily(ledger: Ledger) -> None:
    generated = ((f"u{i}@x.org", f"u{i}@x.org", f"<{i}@x>") for i in range(2500))
    assert ledger.add_pending(ISSUE, generated, NOW) == 2500
    assert [row.recipient_key for row in ledger.to_send(ISSUE)][::1000] == [
        "u0@x.org",
        "u1000@x.org",
        "u2000@x.org",
    ]


def test_a_delivery_goes_through_its_states(ledger: Ledger) -> None:
    ledger.add_pending(ISSUE, rows("a@x.org"), NOW)
    assert ledger.state_of(ISSUE, "a@x.org") == "pending"
    ledger.mark_sending(ISSUE, "a@x.org", NOW)
    assert ledger.state_of(ISSUE, "a@x.org") == "sending"
    ledger.mark_sent(ISSUE, "a@x.org", 250, "2.0.0 Ok: queued", NOW + timedelta(seconds=1))
    row = ledger.row(ISSUE, "a@x.org")
    assert row is not None
    assert (row.state, row.attempts, row.last_code, row.last_text) == (
        "sent",
        1,
        250,
        "2.0.0 Ok: queued",
    )
    assert (row.created_at, row.updated_at) == (
        "2023-10-20T09:00:00+00:00",
        "2023-10-20T09:00:01+00:00",
    )
    assert ledger.state_of(ISSUE, "nobody@x.org") is None
    assert ledger.row(ISSUE, "nobody@x.org") is None


def test_sent_is_final(ledger: Ledger) -> None:
    ledger.add_pending(ISSUE, rows("a@x.org"), NOW)
    ledger.mark_sending(ISSUE, "a@x.org", NOW)
    ledger.mark_sent(ISSUE, "a@x.org", 250, "ok", NOW)
    with pytest.raises(ValueError, match="it is sent"):
        ledger.mark_sending(ISSUE, "a@x.org", NOW)
    with pytest.raises(ValueError, match="it is sent"):
        ledger.mark_deferred(ISSUE, "a@x.org", 451, "try later", NOW)
    with pytest.raises(ValueError, match="it is None"):
        ledger.mark_sent(ISSUE, "nobody@x.org", 250, "ok", NOW)
    assert ledger.state_of(ISSUE, "a@x.org") == "sent"


def test_to_send_excludes_sent_failed_and_unknown_unless_asked(ledger: Ledger) -> None:
    keys = ["pending@x.org", "sent@x.org", "deferred@x.org", "failed@x.org", "unknown@x.org"]
    ledger.add_pending(ISSUE, rows(*keys), NOW)
    ledger.mark_sending(ISSUE, "sent@x.org", NOW)
    ledger.mark_sent(ISSUE, "sent@x.org", 250, "ok", NOW)
    ledger.mark_deferred(ISSUE, "deferred@x.org", 451, "greylisted", NOW)
    ledger.mark_failed(ISSUE, "failed@x.org", 550, "no such user", NOW)
    ledger.mark_sending(ISSUE, "unknown@x.org", NOW)
    ledger.mark_unknown(ISSUE, "unknown@x.org", "connection lost after DATA", NOW)
    assert [r.recipient_key for r in ledger.to_send(ISSUE)] == ["pending@x.org", "deferred@x.org"]
    assert [r.recipient_key for r in ledger.to_send(ISSUE, resend_unknown=True)] == [
        "pending@x.org",
        "deferred@x.org",
        "unknown@x.org",
    ]
    assert [(r.recipient_key, r.last_code, r.last_text) for r in ledger.problems(ISSUE)] == [
        ("deferred@x.org", 451, "greylisted"),
        ("failed@x.org", 550, "no such user"),
        ("unknown@x.org", None, "connection lost after DATA"),
    ]
    assert ledger.counts(ISSUE) == {
        "pending": 1,
        "reserved": 0,
        "sending": 0,
        "sent": 1,
        "deferred": 1,
        "failed": 1,
        "unknown": 1,
        "removed": 0,
    }


def test_to_send_can_be_updated_while_it_streams(ledger: Ledger) -> None:
    ledger.add_pending(ISSUE, ((f"u{i}@x.org", f"u{i}@x.org", "<m>") for i in range(1200)), NOW)
    seen = []
    for row in ledger.to_send(ISSUE):
        seen.append(row.recipient_key)
        ledger.mark_sending(ISSUE, row.recipient_key, NOW)
        ledger.mark_deferred(ISSUE, row.recipient_key, 421, "slow down", NOW)
    assert len(seen) == len(set(seen)) == 1200
    assert ledger.counts(ISSUE)["deferred"] == 1200


def test_mark_finished_waits_for_pending_deferred_and_sending(ledger: Ledger) -> None:
    ledger.add_pending(ISSUE, rows("a@x.org", "b@x.org"), NOW)
    ledger.mark_deferred(ISSUE, "a@x.org", 451, "later", NOW)
    ledger.mark_sending(ISSUE, "b@x.org", NOW)
    assert ledger.mark_finished(ISSUE, NOW) is False
    ledger.mark_failed(ISSUE, "a@x.org", 550, "gone", NOW)
    ledger.mark_unknown(ISSUE, "b@x.org", "timeout after DATA", NOW)
    assert ledger.mark_finished(ISSUE, NOW + timedelta(hours=1)) is True
    assert ledger.issues()[0].finished_at == "2023-10-20T10:00:00+00:00"
    ledger.add_pending(ISSUE, rows("late@x.org"), NOW)
    assert ledger.issues()[0].finished_at is None


def test_issues_and_problems_across_issues(ledger: Ledger) -> None:
    ledger.start_issue("13", "hash-13", NOW + timedelta(days=7))
    ledger.add_pending(ISSUE, rows("a@x.org"), NOW)
    ledger.add_pending("13", rows("a@x.org", "b@x.org"), NOW)
    ledger.mark_failed("13", "b@x.org", 550, "no such user", NOW)
    summaries = ledger.issues()
    assert [(s.issue_id, s.counts["pending"], s.counts["failed"]) for s in summaries] == [
        ("12", 1, 0),
        ("13", 1, 1),
    ]
    assert [(r.issue_id, r.recipient_key) for r in ledger.problems(None)] == [("13", "b@x.org")]


def test_a_process_killed_after_mark_sending_leaves_a_row_that_recovers_as_unknown(
    isolated: Path,
) -> None:
    with Ledger.open(isolated) as ledger:
        ledger.start_issue(ISSUE, "hash-1", NOW)
        ledger.add_pending(ISSUE, rows("a@x.org", "b@x.org"), NOW)
    script = textwrap.dedent(
        f"""
        import os
        from datetime import datetime, timezone
        from pathlib import Path
        from mailer.ledger import Ledger
        ledger = Ledger.open(Path({str(isolated)!r}))
        ledger.mark_sending({ISSUE!r}, "a@x.org", datetime.now(timezone.utc))
        os.kill(os.getpid(), 9)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_DIR)}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=False)
    assert done.returncode == -9
    with Ledger.open(isolated) as ledger:
        assert ledger.state_of(ISSUE, "a@x.org") == "sending"
        assert ledger.recover(ISSUE) == 1
        assert ledger.state_of(ISSUE, "a@x.org") == "unknown"
        assert ledger.state_of(ISSUE, "b@x.org") == "pending"
        assert [r.recipient_key for r in ledger.to_send(ISSUE)] == ["b@x.org"]
        [row] = [r for r in ledger.problems(ISSUE) if r.recipient_key == "a@x.org"]
        assert row.attempts == 1
        assert ledger.recover(ISSUE) == 0


def test_export_neutralises_formulas(ledger: Ledger, isolated: Path) -> None:
    ledger.add_pending(ISSUE, rows("=cmd@x.org", "b@x.org"), NOW)
    ledger.mark_failed(ISSUE, "=cmd@x.org", 550, '=HYPERLINK("http://evil.example","click")', NOW)
    ledger.mark_deferred(ISSUE, "b@x.org", 451, "-1 +2 @SUM(A1)", NOW)
    path = isolated / "problems.csv"
    assert export_problems_csv(ledger.problems(ISSUE), path) == 2
    with open(path, encoding="utf-8-sig", newline="") as exported:
        table = list(csv.reader(exported))
    assert table == [
        ["email", "state", "attempts", "last_code", "last_text", "updated_at"],
        [
            "'=cmd@x.org",
            "failed",
            "1",
            "550",
            '\'=HYPERLINK("http://evil.example","click")',
            "2023-10-20T09:00:00+00:00",
        ],
        ["b@x.org", "deferred", "1", "451", "'-1 +2 @SUM(A1)", "2023-10-20T09:00:00+00:00"],
    ]


def test_a_refusal_before_data_counts_as_one_attempt(ledger: Ledger) -> None:
    ledger.add_pending(ISSUE, rows("a@x.org"), NOW)
    ledger.mark_deferred(ISSUE, "a@x.org", 451, "try later", NOW)
    ledger.mark_sending(ISSUE, "a@x.org", NOW)
    ledger.mark_sent(ISSUE, "a@x.org", 250, "ok", NOW)
    row = ledger.row(ISSUE, "a@x.org")
    assert row is not None and (row.state, row.attempts) == ("sent", 2)


def test_a_retry_outside_the_fence_makes_its_own_sending_durable(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fence (the reservation's fsync) covers a row only while it is reserved: a retried
    # row's `sending` must reach the disk itself, or a power cut could leave it "deferred"
    # after its data went out (and the next run would send it again).
    syncs: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        syncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with Ledger.open(isolated) as ledger:
        ledger.start_issue(ISSUE, "hash-1", NOW)
        ledger.add_pending(ISSUE, rows("a@x.org", "b@x.org"), NOW)
        ledger.reserve(ISSUE, rows("a@x.org", "b@x.org"), NOW)
        syncs.clear()
        ledger.mark_sending(ISSUE, "a@x.org", NOW)  # fenced: no fsync of its own
        assert syncs == []
        ledger.mark_deferred(ISSUE, "b@x.org", 451, "try later", NOW)
        ledger.mark_sending(ISSUE, "b@x.org", NOW)  # the retry: journal fsynced
        assert syncs != []
