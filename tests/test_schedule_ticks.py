"""send-due tick after tick: a clock that jumps, holds re-evaluated, failures said once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailer.folder import load_settings
from mailer.schedule import Reporter, read_schedule, send_due
from tests.sending import ISSUE, SECRET, addresses, deliveries, make_folder, write_recipients
from tests.smtp_servers import MakeServer

SEND_AT = datetime(2023, 10, 20, 8, 0, tzinfo=UTC)  # the sample's 09:00+01:00
STEM = Path(ISSUE).stem


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the unsubscribe secret, as a crontab would."""
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", SECRET)


def tick(folder: Path, now: datetime) -> tuple[int, list[str], list[str]]:
    """Run send_due at `now`; return its exit code, printed lines and log-only lines."""
    printed: list[str] = []
    logged: list[str] = []
    out = Reporter(said=printed.append, failed=printed.append, noted=logged.append)
    return send_due(folder, load_settings(folder), now, out).exit_code, printed, logged


def state_at(folder: Path, now: datetime) -> str:
    """Return the sample issue's scheduled state at `now`."""
    entries = read_schedule(folder, load_settings(folder), now)
    return next(e.state for e in entries if e.stem == STEM)


def test_a_clock_that_jumped_ahead_and_came_back_sends_the_issue_held_as_late(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(2)
    make_folder(isolated, server, emails)
    jumped = SEND_AT + timedelta(days=3)  # the clock ran three days ahead for a while
    code, printed, _logged = tick(isolated, jumped)
    assert code == 1 and "not sent: 3d0m late" in printed[0]
    assert state_at(isolated, jumped) == "held"
    assert tick(isolated, jumped + timedelta(minutes=5)) == (0, [], [])  # said once
    back = SEND_AT + timedelta(minutes=4)  # the clock is right again: within max_lateness
    assert state_at(isolated, back) == "due"
    code, printed, _logged = tick(isolated, back)
    assert code == 0 and printed[0].startswith(f"{STEM}: sent 2 now")
    assert deliveries(server) == dict.fromkeys(emails, 1)
    for later in (back, jumped, SEND_AT + timedelta(days=30)):
        assert state_at(isolated, later) == "sent"
        assert tick(isolated, later) == (0, [], [])
    assert deliveries(server) == dict.fromkeys(emails, 1)


def test_a_jump_before_send_at_holds_the_issue_only_until_the_clock_is_right(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    assert tick(isolated, SEND_AT - timedelta(hours=1)) == (0, [], [])
    assert tick(isolated, SEND_AT + timedelta(days=2))[0] == 1  # a bad jump: held as late
    back = SEND_AT - timedelta(minutes=55)
    assert state_at(isolated, back) == "scheduled"
    assert tick(isolated, back) == (0, [], [])
    assert server.received == []
    assert tick(isolated, SEND_AT + timedelta(minutes=1))[0] == 0
    assert len(server.received) == 2


def test_a_hold_for_an_error_to_fix_is_tried_at_every_tick_and_goes_out_once_fixed(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    (isolated / "recipients.csv").write_text("Email\nnot-an-address\n", encoding="utf-8")
    code, printed, _logged = tick(isolated, SEND_AT + timedelta(minutes=1))
    assert code == 1 and "not sent, held back" in printed[0]
    for minutes in (6, 11):  # still wrong: one line a tick, in the log only
        code, printed, logged = tick(isolated, SEND_AT + timedelta(minutes=minutes))
        assert (code, printed) == (1, [])
        assert len(logged) == 1 and logged[0].startswith(f"{ISSUE}: still held: "), logged
        assert state_at(isolated, SEND_AT + timedelta(minutes=minutes)) == "held"
    write_recipients(isolated, addresses(2))  # fixed: the next tick sends it
    code, printed, _logged = tick(isolated, SEND_AT + timedelta(minutes=16))
    assert code == 0 and printed[0].startswith(f"{STEM}: sent 2 now")
    assert deliveries(server) == dict.fromkeys(addresses(2), 1)
    assert tick(isolated, SEND_AT + timedelta(minutes=21)) == (0, [], [])


def test_an_invalid_file_due_now_is_said_once_again_only_after_it_was_fixed_between(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    make_folder(isolated, make_smtp_server(), addresses(1))
    issue = isolated / ISSUE
    valid = issue.read_text(encoding="utf-8")
    broken = re.sub(r"(?m)^date: .*$", "date: next Friday", valid)
    issue.write_text(broken, encoding="utf-8")
    first = tick(isolated, SEND_AT + timedelta(minutes=1))
    assert first[0] == 1 and len(first[1]) == 1 and "not a date" in first[1][0]
    for minutes in (6, 11):  # the same failure, tick after tick: the log only
        assert tick(isolated, SEND_AT + timedelta(minutes=minutes)) == (1, [], first[1])
    other = broken.replace("subject:", "subjct:", 1)  # a new mistake is news
    issue.write_text(other, encoding="utf-8")
    code, printed, _logged = tick(isolated, SEND_AT + timedelta(minutes=16))
    assert code == 1 and len(printed) == 1 and "subjct" in printed[0]
    issue.write_text(broken, encoding="utf-8")  # the first mistake again: said again
    assert tick(isolated, SEND_AT + timedelta(minutes=21))[1] == first[1]


def test_a_server_failure_that_repeats_is_said_once_and_news_when_it_ends(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(refuse_sender=True)
    make_folder(isolated, server, addresses(2))
    code, printed, _logged = tick(isolated, SEND_AT + timedelta(minutes=1))
    assert code == 4 and "refuses mail from" in printed[0]
    code, again, logged = tick(isolated, SEND_AT + timedelta(minutes=6))
    assert (code, again, logged) == (4, [], printed)  # exit code for the log, silence for cron
    server.recorder.faults.refuse_sender = False
    code, printed, _logged = tick(isolated, SEND_AT + timedelta(minutes=11))
    assert code == 0 and printed[0].startswith(f"{STEM}: sent 2 now")
