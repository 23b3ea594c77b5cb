"""One bad issue file never blocks the others: send-due, schedule and archive go on."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailer.folder import load_settings
from mailer.issue import MAX_ISSUE_BYTES
from mailer.schedule import Reporter, send_due
from tests.sending import SAMPLE, SECRET, addresses, cli, deliveries, make_folder
from tests.smtp_servers import MakeServer

SEND_AT = datetime(2023, 10, 20, 8, 0, tzinfo=UTC)  # the sample's 09:00+01:00
# Loading it once recursed until Python gave up (RecursionError, a traceback for every issue).
LOOP = "send_at: 2023-10-20T09:00:00+01:00\nsubject: &a [*a]\n"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the unsubscribe secret, as a crontab would."""
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", SECRET)


def add_bad_files(folder: Path) -> None:
    """Add an issue whose alias contains itself and one over the size cap."""
    (folder / "issues" / "loop.yaml").write_text(LOOP, encoding="utf-8")
    (folder / "issues" / "huge.yaml").write_bytes(b"# pasted\n" * (MAX_ISSUE_BYTES // 9 + 1))


def run_due(folder: Path, now: datetime) -> tuple[int, list[str], list[str]]:
    """Run send_due at `now`; return its exit code, printed lines and log-only lines."""
    printed: list[str] = []
    logged: list[str] = []
    out = Reporter(said=printed.append, failed=printed.append, noted=logged.append)
    return send_due(folder, load_settings(folder), now, out).exit_code, printed, logged


@pytest.mark.usefixtures("secret")
def test_send_due_sends_the_due_issue_and_says_once_which_files_it_could_not_load(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(3)
    make_folder(isolated, server, emails)
    add_bad_files(isolated)
    code, printed, _logged = run_due(isolated, SEND_AT + timedelta(minutes=3))
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert code == 1
    assert printed[0].startswith("2023-10-20-ld-newsletter: sent 3 now")
    assert printed[1] == (
        "issues/huge.yaml: over the 1 MB limit for an issue file (1.0 MB); "
        "link to long documents instead of pasting them"
    )
    assert printed[2] == (
        "issues/loop.yaml:2:10: subject[0]: an alias (*name) inside its own anchor; remove it"
    )
    # Cron mails what is printed: the same failures five minutes later go to the log only.
    code, printed, logged = run_due(isolated, SEND_AT + timedelta(minutes=8))
    assert (code, printed) == (1, [])
    assert [line.split(":")[0] for line in logged] == ["issues/huge.yaml", "issues/loop.yaml"]


def test_schedule_lists_every_issue_then_the_files_it_could_not_load(newsletter: Path) -> None:
    shutil.copy(SAMPLE, newsletter / "issues" / SAMPLE.name)
    add_bad_files(newsletter)
    code, out, err = cli("schedule")
    assert code == 1
    rows = [" ".join(line.split()) for line in out.splitlines()]
    assert rows[0] == "ISSUE SEND AT STATE DETAILS"
    assert rows[1].startswith("2023-10-20-ld-newsletter Fri 2023-10-20 09:00 late ")
    assert rows[2:] == [
        "huge - invalid run `mailer validate` on it",
        "loop - invalid run `mailer validate` on it",
    ]
    assert err.splitlines() == [
        "error: issues/huge.yaml: over the 1 MB limit for an issue file (1.0 MB); "
        "link to long documents instead of pasting them",
        "error: issues/loop.yaml:2:10: subject[0]: an alias (*name) inside its own anchor; "
        "remove it",
    ]


def test_archive_builds_the_valid_issues_keeps_a_broken_ones_page_and_exits_1(
    newsletter: Path,
) -> None:
    shutil.copy(SAMPLE, newsletter / "issues" / SAMPLE.name)
    shutil.copy(SAMPLE, newsletter / "issues" / "second.yaml")
    assert cli("archive")[0] == 0
    archive = newsletter / "build" / "archive"
    published = sorted(p.name for p in archive.rglob("second*"))
    assert "second.html" in published and any(n.endswith(".ics") for n in published)
    add_bad_files(newsletter)
    (newsletter / "issues" / "second.yaml").write_text(LOOP, encoding="utf-8")
    code, out, err = cli("archive")
    assert code == 1
    assert "wrote 1 issue(s)" in out
    assert sorted(p.name for p in archive.rglob("second*")) == published  # emails link there
    errors = err.splitlines()
    assert [line.split(":")[1].strip() for line in errors[:3]] == [
        "issues/huge.yaml",
        "issues/loop.yaml",
        "issues/second.yaml",
    ]
    assert errors[3] == (
        "error: left out 3 issue file(s) that cannot be loaded; kept their pages from the "
        "last build: second; fix them (`mailer validate`) and run archive again"
    )
    index = (archive / "index.html").read_text(encoding="utf-8")
    assert "second.html" not in index
    # Once fixed, it is back, and the manifest still owns its files.
    shutil.copy(SAMPLE, newsletter / "issues" / "second.yaml")
    for name in ("loop.yaml", "huge.yaml"):
        (newsletter / "issues" / name).unlink()
    assert cli("archive")[0] == 0
    assert "second.html" in (archive / "index.html").read_text(encoding="utf-8")
