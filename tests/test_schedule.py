"""Scheduled sending: due, late, held and finished issues, with an injected clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailer import runlog
from mailer.folder import load_settings
from mailer.issue import load_issue
from mailer.schedule import Reporter, cron_lines, read_schedule, schedule_problems, send_due
from tests.sending import ISSUE, SECRET, addresses, cli, deliveries, make_folder
from tests.smtp_servers import MakeServer

SEND_AT = datetime(2023, 10, 20, 8, 0, tzinfo=UTC)  # the sample's 09:00+01:00


def run_due(folder: Path, now: datetime) -> tuple[int, list[str], list[str]]:
    """Run send_due at `now`; return its exit code, printed lines and log-only lines."""
    lines: list[str] = []
    quiet: list[str] = []
    out = Reporter(said=lines.append, failed=lines.append, noted=quiet.append)
    result = send_due(folder, load_settings(folder), now, out)
    return result.exit_code, lines, quiet


def states_at(folder: Path, now: datetime) -> dict[str, str]:
    """Return each issue's scheduled state at `now`."""
    return {e.stem: e.state for e in read_schedule(folder, load_settings(folder), now)}


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the unsubscribe secret, as a crontab would."""
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", SECRET)


@pytest.mark.usefixtures("secret")
def test_nothing_is_sent_before_send_at_and_nothing_is_said(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(3))
    assert run_due(isolated, SEND_AT - timedelta(minutes=1)) == (0, [], [])
    assert server.received == []
    assert states_at(isolated, SEND_AT - timedelta(minutes=1)) == {Path(ISSUE).stem: "scheduled"}


@pytest.mark.usefixtures("secret")
def test_a_due_issue_is_sent_once_and_a_second_run_is_silent(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(3)
    make_folder(isolated, server, emails)
    code, lines, _quiet = run_due(isolated, SEND_AT + timedelta(minutes=3))
    assert code == 0
    assert len(lines) == 1 and lines[0].startswith("2023-10-20-ld-newsletter: sent 3 now")
    assert run_due(isolated, SEND_AT + timedelta(minutes=3, seconds=20)) == (0, [], [])
    assert run_due(isolated, SEND_AT + timedelta(days=2)) == (0, [], [])
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert states_at(isolated, SEND_AT + timedelta(days=2)) == {Path(ISSUE).stem: "sent"}


@pytest.mark.usefixtures("secret")
def test_a_late_issue_is_held_said_once_and_sent_only_on_purpose(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    late = SEND_AT + timedelta(hours=6, minutes=5)
    code, lines, _quiet = run_due(isolated, late)
    assert code == 1
    assert len(lines) == 1
    assert "not sent: 6h5m late" in lines[0] and "max_lateness 6h" in lines[0]
    assert f"send {ISSUE} --yes" in lines[0]
    assert run_due(isolated, late + timedelta(minutes=5)) == (0, [], [])
    assert states_at(isolated, late)[Path(ISSUE).stem] == "held"
    assert server.received == []
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert len(server.received) == 2
    assert run_due(isolated, late + timedelta(minutes=10)) == (0, [], [])


@pytest.mark.usefixtures("secret")
def test_an_issue_may_allow_more_lateness_than_the_newsletter(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    issue = isolated / ISSUE
    issue.write_text(issue.read_text().replace("send_at:", "max_lateness: 1d\nsend_at:", 1))
    code, _lines, _quiet = run_due(isolated, SEND_AT + timedelta(hours=20))
    assert code == 0
    assert len(server.received) == 2


@pytest.mark.usefixtures("secret")
def test_the_repeated_hour_of_a_clock_change_sends_nothing_twice(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    issue = isolated / ISSUE
    text = re.sub(r"(?m)^send_at: .*$", "send_at: 2023-10-29T01:30:00+01:00", issue.read_text())
    issue.write_text(text.replace("date: 2023-10-20", "date: 2023-10-29", 1))
    first = datetime(2023, 10, 29, 0, 31, tzinfo=UTC)  # 01:31 BST
    second = first + timedelta(hours=1)  # 01:31 GMT: the same wall-clock time again
    code, lines, _quiet = run_due(isolated, first)
    assert code == 0, lines
    assert run_due(isolated, second) == (0, [], [])
    assert len(server.received) == 2


def test_an_invalid_draft_without_send_at_is_nobodys_business(isolated: Path) -> None:
    (isolated / "mailer.toml").write_text(
        (Path(__file__).parent.parent / "mailer.toml").read_text()
    )
    (isolated / "issues").mkdir()
    (isolated / "issues" / "draft.yaml").write_text("subject: half written\nblocks: [\n")
    assert run_due(isolated, SEND_AT)[0] == 1  # not even YAML: it may be meant to go out
    (isolated / "issues" / "draft.yaml").write_text("subject: half written\n")
    assert run_due(isolated, SEND_AT) == (0, [], [])
    (isolated / "issues" / "draft.yaml").write_text(
        "subject: half written\nsend_at: 2023-10-20T08:00:00+00:00\n"
    )
    code, lines, _quiet = run_due(isolated, SEND_AT)
    assert code == 1 and "draft.yaml" in lines[0]


def test_validate_warns_of_past_and_weekend_times_and_refuses_the_same_minute(
    isolated: Path,
) -> None:
    (isolated / "mailer.toml").write_text(
        (Path(__file__).parent.parent / "mailer.toml").read_text()
    )
    (isolated / "issues").mkdir()
    base = "subject: A\ndate: 2023-10-20\nblocks: [{type: divider}]\n"
    (isolated / "issues" / "a.yaml").write_text(base + "send_at: 2030-10-19T09:00:00+01:00\n")
    (isolated / "issues" / "b.yaml").write_text(base + "send_at: 2030-10-19T09:00:30+01:00\n")
    (isolated / "issues" / "c.yaml").write_text(base + "send_at: 2023-10-20T09:00:00+01:00\n")
    settings = load_settings(isolated)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    errors, warnings = schedule_problems(
        isolated, load_issue(isolated / "issues" / "a.yaml"), settings, now
    )
    assert [str(e) for e in errors] == [
        f"{isolated / 'issues' / 'a.yaml'}:4:10: send_at: 2030-10-19 09:00 is also when b.yaml is "
        "scheduled; give each issue its own minute"
    ]
    assert [w.message for w in warnings] == ["Saturday 2030-10-19 is a weekend day"]
    _errors, warnings = schedule_problems(
        isolated, load_issue(isolated / "issues" / "c.yaml"), settings, now
    )
    assert [w.message for w in warnings] == ["2023-10-20 09:00 is in the past"]
    code, _out, err = cli("validate", "issues/a.yaml")
    assert code == 1 and "also when b.yaml is scheduled" in err


def test_the_log_is_rotated_so_it_cannot_grow_without_bound(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runlog, "MAX_BYTES", 2_000)
    for run in range(200):
        logger = runlog.open_log(isolated)
        logger.info("run %d: %s", run, "x" * 80)
        runlog.close_log(logger)
    logs = sorted(p.name for p in (isolated / ".mailer").glob("log*"))
    assert logs == ["log", "log.1", "log.2", "log.3"]
    assert sum(p.stat().st_size for p in (isolated / ".mailer").glob("log*")) < 4 * 2_200


@pytest.mark.usefixtures("secret")
def test_a_held_issue_given_a_new_send_at_goes_out_then(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    late = SEND_AT + timedelta(hours=7)
    assert run_due(isolated, late)[0] == 1
    issue = isolated / ISSUE
    new_time = late + timedelta(days=1)
    issue.write_text(
        re.sub(r"(?m)^send_at: .*$", f"send_at: {new_time.isoformat()}", issue.read_text())
    )
    assert states_at(isolated, late)[Path(ISSUE).stem] == "scheduled"
    code, lines, _quiet = run_due(isolated, new_time + timedelta(minutes=2))
    assert code == 0, lines
    assert len(server.received) == 2


@pytest.mark.usefixtures("secret")
def test_an_issue_nobody_received_is_held_once_it_is_too_late(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(refuse_sender=True)  # the relay is broken on Friday
    make_folder(isolated, server, addresses(2))
    code, lines, _quiet = run_due(isolated, SEND_AT + timedelta(minutes=2))
    assert code == 4 and "refuses mail from" in lines[0]
    server.recorder.faults.refuse_sender = False  # fixed on Monday
    code, lines, _quiet = run_due(isolated, SEND_AT + timedelta(days=3))
    assert code == 1 and "held back" in lines[0]
    assert server.received == []


@pytest.mark.usefixtures("secret")
def test_a_sent_issue_made_invalid_later_is_nobodys_business(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    assert run_due(isolated, SEND_AT + timedelta(minutes=1))[0] == 0
    issue = isolated / ISSUE
    issue.write_text(issue.read_text() + "surprise: key\n")
    assert run_due(isolated, SEND_AT + timedelta(minutes=6)) == (0, [], [])
    assert run_due(isolated, SEND_AT + timedelta(days=30)) == (0, [], [])


@pytest.mark.usefixtures("secret")
def test_a_recipient_still_deferred_is_said_once_then_only_logged(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(3)
    server = make_smtp_server(defer={emails[0]: 99})
    make_folder(isolated, server, emails, limits="per_second = 10000\nretries = 0\n")
    code, lines, _quiet = run_due(isolated, SEND_AT + timedelta(minutes=1))
    assert code == 3 and "deferred 1" in lines[0]
    code, lines, quiet = run_due(isolated, SEND_AT + timedelta(minutes=6))
    assert (code, lines) == (3, [])
    assert "deferred 1" in quiet[0]
    assert deliveries(server) == {e: 1 for e in emails[1:]}


def test_quiet_send_due_still_says_what_went_wrong_on_stderr(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    make_folder(isolated, make_smtp_server(), addresses(1))  # the sample's send_at is long past
    code, out, err = cli("-q", "send-due")
    assert code == 1
    assert out == ""
    assert "not sent" in err and "held back" in err
    assert cli("-q", "send-due") == (0, "", "")


def test_the_cron_lines_carry_the_server_overrides_of_this_shell(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "mailer.toml").write_text(
        (Path(__file__).parent.parent / "mailer.toml").read_text()
    )
    monkeypatch.setenv("MAILER_SMTP_HOST", "relay.example.org")
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", "never-printed")
    text = cron_lines(isolated, "/usr/bin/mailer", load_settings(isolated))
    assert "MAILER_SMTP_HOST=relay.example.org\n" in text
    assert "MAILER_SMTP_PASSWORD=<your SMTP password>\n" in text
    assert "never-printed" not in text
    assert text.endswith(f"*/5 * * * * /usr/bin/mailer --dir {isolated} send-due\n")
