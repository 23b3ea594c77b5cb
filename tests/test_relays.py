"""Real relays' replies: the sender's problems stop the run and never fail a recipient."""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailer.folder import load_settings
from mailer.schedule import Reporter, send_due
from mailer.send.pacing import MAX_WAIT, RateLimiter, Window
from tests.sending import ISSUE, SECRET, addresses, cli, deliveries, make_folder
from tests.smtp_servers import MakeServer


def status() -> str:
    """Return what `mailer status` prints."""
    return cli("status")[1]


def test_a_spent_quota_stops_the_run_and_fails_nobody(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(6)
    server = make_smtp_server(refuse_data_after=2)  # Exchange Online's quota, after 2
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 4, err
    assert "Exchange Online's sending quota" in err and "nobody is marked failed" in err
    assert "in 24 hours" in err
    said = status()
    assert "2 sent" in said and "failed" not in said.split("\n")[0], said
    assert "pending after" in said and "SubmissionQuotaExceeded" in said  # who waits, and why
    # The relay's quota is renewed: the rest goes out, nobody twice.
    fixed = make_smtp_server()
    make_folder(isolated, fixed, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) | deliveries(fixed) == dict.fromkeys(emails, 1)


def test_the_same_unexplained_refusal_for_three_in_a_row_is_the_senders(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(8)
    server = make_smtp_server(refuse_data_after=1, refuse_data_with="554 Transaction failed")
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 4, err
    assert "same refusal" in err and "554 Transaction failed" in err
    said = status()
    assert "1 sent" in said and "failed" not in said.split("\n")[0], said
    fixed = make_smtp_server()
    make_folder(isolated, fixed, emails)
    assert cli("send", ISSUE, "--yes")[0] == 0
    assert deliveries(server) | deliveries(fixed) == dict.fromkeys(emails, 1)


def test_retry_failed_sends_again_to_those_marked_failed(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    gone, *others = addresses(3)
    server = make_smtp_server(reject={gone})
    make_folder(isolated, server, [gone, *others])
    assert cli("send", ISSUE, "--yes")[0] == 3
    code, out, _err = cli("send", ISSUE, "--yes")  # failed is final: nothing to send
    assert code == 3 and "nothing was sent: 2 have it, 1 failed" in out
    server.recorder.faults.reject = ()  # the mailbox was set up again
    code, out, err = cli("send", ISSUE, "--yes", "--retry-failed")
    assert code == 0, err
    assert "re-queued 1 recipients marked failed" in out
    assert deliveries(server) == dict.fromkeys([gone, *others], 1)


def test_a_421_greeting_is_retried_with_waits_before_giving_up(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(greet_421=2)
    emails = addresses(3)
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    always = make_smtp_server(greet_421=99)
    make_folder(isolated, always, addresses(2, start=10))
    code, out, err = cli("send", ISSUE, "--yes", "--allow-changes")
    assert code == 4 and "421" in err, err
    assert "trying again (3)" in out and "trying again (4)" not in out  # 3 retries, then out


def test_an_empty_username_variable_means_no_login(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(1), smtp='username = "news"\n')
    code, _out, err = cli("send", ISSUE, "--yes", env={"MAILER_SMTP_USERNAME": ""})
    assert code == 0, err
    assert server.received[0].login is None


def test_per_day_stops_the_run_and_counts_across_issues(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(3)
    make_folder(isolated, server, emails, limits="per_second = 10000\nper_day = 2\n")
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert "per_day quota reached: 1 left" in out
    other = isolated / "issues" / "other.yaml"
    other.write_text((isolated / ISSUE).read_text(encoding="utf-8"), encoding="utf-8")
    code, out, _err = cli("send", "issues/other.yaml", "--yes")
    assert "per_day quota reached: 3 left" in out  # the day's two went to the first issue
    assert len(server.received) == 2


def test_the_limiter_waits_for_a_short_window_and_stops_at_a_long_one() -> None:
    wall = [1000.0]
    minute = Window("per_minute", 60.0, 2, deque([990.0]))
    limiter = RateLimiter(1000.0, [minute], clock=lambda: wall[0], wall=lambda: wall[0])
    stop = threading.Event()
    assert limiter.try_wait() == 1000.0  # one place left in the minute
    assert limiter.try_wait() is None  # full until 990 + 60 = 1050: not now
    wall[0] = 1049.0
    assert limiter.try_wait() is None
    wall[0] = 1050.0
    assert limiter.try_wait() == 1050.0
    day = Window("per_day", 86400.0, 1, deque([wall[0] - 10]))
    limiter = RateLimiter(1000.0, [day], clock=lambda: wall[0], wall=lambda: wall[0])
    assert limiter.wait(stop) is None and stop.is_set()
    assert limiter.reached is not None and limiter.reached.window == "per_day"
    assert limiter.reached.free_at - wall[0] >= MAX_WAIT


def test_send_due_spreads_an_issue_over_the_quota_quietly(
    isolated: Path, make_smtp_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", SECRET)
    server = make_smtp_server()
    emails = addresses(5)
    make_folder(isolated, server, emails, limits="per_second = 10000\nper_hour = 2\n")
    now = datetime(2023, 10, 20, 8, 1, tzinfo=UTC)  # just after the sample's send_at

    def tick() -> tuple[int, list[str], list[str]]:
        printed: list[str] = []
        logged: list[str] = []
        out = Reporter(said=printed.append, failed=printed.append, noted=logged.append)
        result = send_due(isolated, load_settings(isolated), now, out)
        return result.exit_code, printed, logged

    code, printed, _logged = tick()
    assert code == 0, printed
    assert any("per_hour quota reached: 3 left" in line for line in printed), printed
    code, printed, logged = tick()  # the next tick, within the hour: nothing is news
    assert (code, printed) == (0, [])
    assert any("quota reached" in line for line in logged), logged
    assert len(server.received) == 2


def test_a_run_stops_cleanly_at_its_deadline_and_the_next_goes_on(
    isolated: Path, make_smtp_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailer.send import deliver, prepare_send

    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", SECRET)
    server = make_smtp_server(reply_delay=0.05)
    emails = addresses(30)
    make_folder(isolated, server, emails)
    report = deliver(prepare_send(isolated, isolated / ISSUE), deadline=0.5)
    assert report.timed_out and 0 < report.sent_now < len(emails)
    assert report.counts["pending"] == len(emails) - report.sent_now
    assert report.counts["unknown"] == 0  # the message in flight finished
    assert cli("send", ISSUE, "--yes")[0] == 0
    assert deliveries(server) == dict.fromkeys(emails, 1)
