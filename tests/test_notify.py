"""The editor is told by email (`notify`): counted by a real SMTP server across cron ticks.

Held, late, stopped: at once, once per cause. After an unattended send: a report. Never to
the list, never twice for one event, and when the relay will not take it, the reason stays
in the log and in `mailer status`.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from tests.sending import ISSUE, SECRET, addresses, cli, deliveries, make_folder, write_recipients
from tests.smtp_servers import MakeServer, free_port
from tests.test_cron import due_issue
from tests.unattended import EDITOR, SEND_AT, body, set_archive, set_top, tick, to_editor, to_list

STEM = Path(ISSUE).stem
NOTIFY = f'notify = ["{EDITOR}"]'


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the unsubscribe secret, as a crontab would."""
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", SECRET)


def bad_list(folder: Path) -> None:
    """Write a list whose third line is not an address (introduced on Thursday)."""
    (folder / "recipients.csv").write_text(
        "Email,First Name\nperson00000@example.org,A\nbob@,B\nperson00001@example.org,C\n",
        encoding="utf-8",
    )


def test_a_list_problem_reaches_the_editor_once_and_the_issue_goes_out_after_the_fix(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(2)
    folder = make_folder(isolated, server, emails)
    set_top(folder, NOTIFY)
    bad_list(folder)
    assert tick(folder, SEND_AT - timedelta(hours=20)).printed == []  # Thursday: not yet due
    first = tick(folder, SEND_AT + timedelta(minutes=1))
    assert first.code == 1 and len(first.printed) == 1 and "held back" in first.printed[0]
    (held,) = to_editor(server)
    assert held["Subject"] == f"[L&D Newsletter] {STEM}: held, not sent"
    assert held["Auto-Submitted"] == "auto-generated" and held["To"] == EDITOR
    text = body(held)
    assert f"{ISSUE} (due Fri 2023-10-20 09:00 BST) was not sent:" in text
    assert 'recipients.csv:3: Email: invalid address "bob@"' in text  # the line to fix
    assert "goes out\nby itself once it is fixed, until Fri 2023-10-20 15:00 BST" in text
    assert "skip_invalid = true" in text
    for minutes in (6, 11, 16):  # still wrong: a line in the log each tick, nothing new told
        later = tick(folder, SEND_AT + timedelta(minutes=minutes))
        assert (later.code, later.printed) == (1, [])
        assert [line.split(": ")[1] for line in later.logged] == ["still held"]
    assert len(to_editor(server)) == 1 and to_list(server) == []
    write_recipients(folder, emails)  # fixed
    fixed = tick(folder, SEND_AT + timedelta(minutes=21))
    assert fixed.code == 0 and fixed.printed[0].startswith(f"{STEM}: sent 2 now")
    assert deliveries(server) == {**dict.fromkeys(emails, 1), EDITOR: 2}
    report = to_editor(server)[1]
    assert report["Subject"] == f"[L&D Newsletter] {STEM}: sent to 2 of 2"
    lines = body(report).splitlines()
    assert lines[:3] == [
        f'Issue: {STEM} ("L&D Newsletter, issue 12")',
        "Sent: 2 of 2 (2 in this run, 2023-10-20 09:21 BST)",
        "Skipped: none",
    ]
    assert lines[3:6] == ["Failed: 0", "Unknown: 0", "Deferred: 0"]
    assert "Archive: not published ([archive] publish_dir or publish_command is not set)" in lines
    assert "Next step: none: everyone on the list has it" in lines
    for minutes in (26, 31):  # nothing new: nothing said, nothing told
        assert tick(folder, SEND_AT + timedelta(minutes=minutes)).printed == []
    assert len(to_editor(server)) == 2 and len(to_list(server)) == 2
    # The same mistake in a later issue's list is news again: resolved events are re-armed.
    assert "told" in fixed.logged[-1]


def test_a_held_issue_that_becomes_too_late_is_told_once_as_late_and_not_sent(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    folder = make_folder(isolated, server, addresses(2))
    set_top(folder, NOTIFY)
    bad_list(folder)
    assert tick(folder, SEND_AT + timedelta(minutes=1)).code == 1
    late = tick(folder, SEND_AT + timedelta(hours=6, minutes=1))  # past max_lateness (6h)
    assert late.code == 1 and len(late.printed) == 1
    assert (
        "not sent: 6h1m late (send_at 2023-10-20 09:00 +0100, max_lateness 6h)" in (late.printed[0])
    )
    held, too_late = to_editor(server)
    assert "held, not sent" in held["Subject"]
    assert too_late["Subject"] == f"[L&D Newsletter] {STEM}: not sent, too late"
    assert "To send it now on purpose: mailer --dir" in body(too_late).replace("\n", " ").replace(
        "Next step: to send", "To send"
    )
    write_recipients(folder, addresses(2))  # fixed, but too late: held, said once
    for hours in (7, 8):
        assert tick(folder, SEND_AT + timedelta(hours=hours)).printed == []
    assert to_list(server) == [] and len(to_editor(server)) == 2
    code, out, _err = cli("schedule")
    assert code == 0 and f"{STEM}" in out and " held " in out


def test_skip_invalid_sends_to_the_valid_rows_and_reports_the_others(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    folder = make_folder(isolated, server, addresses(2))
    set_top(folder, NOTIFY)
    text = (folder / "mailer.toml").read_text(encoding="utf-8")
    (folder / "mailer.toml").write_text(
        text.replace('file = "recipients.csv"', 'file = "recipients.csv"\nskip_invalid = true'),
        encoding="utf-8",
    )
    bad_list(folder)
    done = tick(folder, SEND_AT + timedelta(minutes=1))
    assert done.code == 0
    assert done.printed[0].startswith(f"{STEM}: sent 2 now")
    assert any('recipients.csv:3: Email: invalid address "bob@"' in line for line in done.printed)
    assert sorted(to_list(server)) == addresses(2)
    (report,) = to_editor(server)
    text = body(report)
    assert "Skipped: 1 invalid row(s)" in text
    assert 'recipients.csv:3: Email: invalid address "bob@"' in text
    assert "fix the rows listed under Skipped; then `mailer --dir" in text


def test_a_stopped_run_is_told_once_per_cause_and_a_quota_once(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(4)
    folder = make_folder(
        isolated, server, emails, limits="per_second = 10000\nretry_delay = 0.01\nper_hour = 2\n"
    )
    set_top(folder, NOTIFY)
    first = tick(folder, SEND_AT + timedelta(minutes=1))
    assert first.code == 0 and "per_hour quota reached" in first.printed[0]
    (stopped,) = to_editor(server)
    assert stopped["Subject"] == f"[L&D Newsletter] {STEM}: sending stopped"
    assert "the per_hour quota ([limits] in mailer.toml) was reached" in body(stopped)
    assert "So far: 2 sent, 2 pending." in body(stopped)
    for minutes in (6, 11):  # the quota still holds: no news, nothing told
        assert tick(folder, SEND_AT + timedelta(minutes=minutes)).printed == []
    assert len(to_editor(server)) == 1 and len(to_list(server)) == 2
    settings = folder / "mailer.toml"  # the quotas count real time: the editor raises it
    settings.write_text(settings.read_text(encoding="utf-8").replace("per_hour = 2", ""), "utf-8")
    done = tick(folder, SEND_AT + timedelta(minutes=16))
    assert done.printed[0].startswith(f"{STEM}: sent 2 now, 4 in all")
    assert to_editor(server)[1]["Subject"] == f"[L&D Newsletter] {STEM}: sent to 4 of 4"
    assert deliveries(server) == {**dict.fromkeys(emails, 1), EDITOR: 2}


def test_a_relay_that_refuses_the_notification_leaves_the_reason_in_the_log_and_status(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(reject={EDITOR})
    emails = addresses(2)
    folder = due_issue(isolated, server, emails)
    set_top(folder, NOTIFY)
    code, out, err = cli("send-due")
    assert code == 0, err  # the issue went out: a notification refused does not change that
    assert out.startswith("due-now: sent 2 now") and deliveries(server) == dict.fromkeys(emails, 1)
    assert f"the editor was not told ({EDITOR}: refused (550" in err
    log = (folder / ".mailer" / "log").read_text(encoding="utf-8")
    assert f"the editor was not told ({EDITOR}: refused (550" in log
    code, out, _err = cli("status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("last unattended run (send-due): ") and "exit code 0" in lines[0]
    assert any("the editor was not told" in line for line in lines[1:6])
    assert any(
        line.startswith("notification refused for good: due-now: sent to 2 of 2 (")
        for line in lines
    )
    assert "due-now: sent: 2 sent" in lines
    code, out, err = cli("send-due")  # refused for good: not tried again, nothing to say
    assert (code, out, err) == (0, "", "")
    assert server.recorder.commands.count("RCPT") == 3


def test_a_relay_that_is_down_is_in_status_and_the_editor_is_told_when_it_is_back(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(2)
    folder = make_folder(isolated, server, emails)
    set_top(folder, NOTIFY)
    settings = folder / "mailer.toml"
    live = settings.read_text(encoding="utf-8")
    settings.write_text(live.replace(f"port = {server.port}", f"port = {free_port()}"), "utf-8")
    down = tick(folder, SEND_AT + timedelta(minutes=1))
    assert down.code == 4 and "stopped: 127.0.0.1:" in down.printed[0]
    assert any("the editor was not told" in line for line in down.printed)
    _code, out, _err = cli("status")
    assert "last unattended run (send-due): Fri 2023-10-20 09:01 BST, exit code 4" in out
    assert "notification not told yet; the next run tries again" in out
    assert f"{STEM}: sending (started, some still to send: a run resumes it): 2 pending" in out
    repeat = tick(folder, SEND_AT + timedelta(minutes=6))  # still down: said once already
    assert repeat.code == 4 and repeat.printed == []
    settings.write_text(live, encoding="utf-8")  # the relay is back
    back = tick(folder, SEND_AT + timedelta(minutes=11))
    assert back.code == 0 and back.printed[0].startswith(f"{STEM}: sent 2 now")
    subjects = [m["Subject"].removeprefix("[L&D Newsletter] ") for m in to_editor(server)]
    assert subjects == [f"{STEM}: sending stopped", f"{STEM}: sent to 2 of 2"]
    assert "Connection refused" in body(to_editor(server)[0]) or "refused" in body(
        to_editor(server)[0]
    )
    assert tick(folder, SEND_AT + timedelta(minutes=16)).printed == []
    assert len(to_editor(server)) == 2


def test_a_send_by_hand_is_reported_only_with_notify_manual(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    folder = make_folder(isolated, server, addresses(2))
    set_top(folder, NOTIFY)
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert to_editor(server) == [] and "told" not in out  # by hand: the editor was there


def test_reports_of_sends_by_hand_never_count_against_the_list_or_its_quotas(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(2)
    folder = make_folder(isolated, server, emails, limits="per_second = 10000\nper_day = 3\n")
    set_top(folder, NOTIFY, "notify_manual = true")
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert f"told {EDITOR}: {STEM}: sent to 2 of 2" in out
    other = folder / "issues" / "2023-10-27-other.yaml"
    other.write_text((folder / ISSUE).read_text(encoding="utf-8"), encoding="utf-8")
    code, out, err = cli("send", "issues/2023-10-27-other.yaml", "--yes")
    assert code == 0, err
    # Three a day: two for the first issue, and one more; the report took none of them.
    assert "2023-10-27-other: sent 1 now" in out and "per_day quota reached" in out
    assert f"told {EDITOR}: 2023-10-27-other: sent to 1 of 2" in out
    assert len(to_list(server)) == 3 and len(to_editor(server)) == 2
    report = body(to_editor(server)[1])
    assert "Pending: 1" in report and "the deferred are retried by the next run" in report


def test_a_failed_publish_is_told_once_and_the_report_says_the_archive_is_not_published(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    server = make_smtp_server()
    folder = make_folder(isolated, server, addresses(2))
    set_top(folder, NOTIFY)
    set_archive(folder, f'publish_dir = "{tmp_path / "not-mounted"}"')
    first = tick(folder, SEND_AT + timedelta(minutes=1))
    assert first.code == 3
    subjects = [m["Subject"].removeprefix("[L&D Newsletter] ") for m in to_editor(server)]
    assert subjects == ["the web archive was not published", f"{STEM}: sent to 2 of 2"]
    assert "no such folder; create it" in body(to_editor(server)[0])
    report = body(to_editor(server)[1])
    assert "Archive: not published (see above):" in report
    assert "fix the publishing (see Archive); every run tries again" in report
    for minutes in (6, 11):  # still failing: retried, logged, not told again
        again = tick(folder, SEND_AT + timedelta(minutes=minutes))
        assert (again.code, again.printed) == (3, [])
    assert len(to_editor(server)) == 2
    (tmp_path / "not-mounted").mkdir()
    fixed = tick(folder, SEND_AT + timedelta(minutes=16))
    assert fixed.code == 0 and fixed.printed[0].startswith("published to ")
    assert len(to_editor(server)) == 2
    # Solved, then the same failure for the next issue: that is news again.
    shutil.rmtree(tmp_path / "not-mounted")
    sample = (folder / ISSUE).read_text(encoding="utf-8")
    (folder / "issues" / "2023-10-27-next.yaml").write_text(
        sample.replace("2023-10-20T09:00", "2023-10-27T09:00"), encoding="utf-8"
    )
    week = tick(folder, SEND_AT + timedelta(days=7, minutes=1))
    assert week.code == 3 and week.printed[0].startswith("2023-10-27-next: sent 2 now")
    subjects = [m["Subject"].removeprefix("[L&D Newsletter] ") for m in to_editor(server)]
    assert subjects[2:] == ["the web archive was not published", "2023-10-27-next: sent to 2 of 2"]


def test_an_issue_file_broken_when_it_is_due_is_told_once(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    folder = make_folder(isolated, server, addresses(2))
    set_top(folder, NOTIFY)
    issue = folder / ISSUE
    issue.write_text(
        issue.read_text(encoding="utf-8").replace("date: 2023-10-20", "date: next Friday"), "utf-8"
    )
    for minutes in (1, 6, 11):
        assert tick(folder, SEND_AT + timedelta(minutes=minutes)).code == 1
    (broken,) = to_editor(server)
    assert broken["Subject"] == f"[L&D Newsletter] {ISSUE} cannot be loaded, and seems due"
    assert 'date: not a date ("next Friday")' in body(broken)
    assert "Next step: fix it; `mailer validate` checks it." in body(broken)
    assert to_list(server) == []
