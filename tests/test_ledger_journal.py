"""The journal brings a damaged or set-back ledger forward: nobody is sent the issue twice.

A partial send (some recipients deferred) leaves a ledger and its journal; then the ledger is
cut to 0 bytes, or loses its -wal file, or the journal is deleted, as a sync tool, a backup
restore or a careless clean-up would; the next send must still send nobody twice.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer.main

from mailer.cli import app
from mailer.ledger import check_ledger, rebuild_ledger
from tests.crashes import STEM, kill_when, ledger_states, settle
from tests.sending import ISSUE, addresses, cli, cli_process, deliveries, make_folder
from tests.smtp_servers import MakeServer, SmtpServer

LIMITS = "per_second = 10000\nretry_delay = 0.01\nretries = 0\nconnections = 1\n"
SENT, DEFERRED = 8, 4


@pytest.fixture
def partial(isolated: Path, make_smtp_server: MakeServer) -> tuple[SmtpServer, list[str]]:
    """Send to 12 recipients of whom the server defers 4 (451 once): 8 sent, 4 deferred."""
    emails = addresses(SENT + DEFERRED)
    server = make_smtp_server(pipelining=True, defer=dict.fromkeys(emails[::3], 1))
    make_folder(isolated, server, emails, limits=LIMITS)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 3, err
    assert sorted(ledger_states(isolated).values()) == ["deferred"] * DEFERRED + ["sent"] * SENT
    return server, emails


def ledger_files(folder: Path) -> list[Path]:
    """Return the ledger's file and the -wal and -shm files beside it."""
    path = folder / ".mailer" / "ledger.sqlite3"
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def cut_to_zero(folder: Path) -> None:
    """Truncate the ledger to 0 bytes and lose its -wal and -shm, as a sync tool might."""
    main, *others = ledger_files(folder)
    main.write_bytes(b"")
    for path in others:
        path.unlink(missing_ok=True)


def test_a_ledger_cut_to_0_bytes_is_brought_forward_from_the_journal(
    isolated: Path, partial: tuple[SmtpServer, list[str]]
) -> None:
    server, emails = partial
    cut_to_zero(isolated)
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert f"sent {DEFERRED} now; {SENT + DEFERRED} sent in all" in out
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)


def test_status_of_a_ledger_cut_to_0_bytes_still_shows_who_has_the_issue(
    isolated: Path, partial: tuple[SmtpServer, list[str]]
) -> None:
    cut_to_zero(isolated)
    code, out, _err = cli("status", STEM)
    assert code == 0
    assert f"{SENT} sent, {DEFERRED} deferred" in out


def test_a_lost_wal_file_after_a_kill_sends_nobody_twice(
    isolated: Path, partial: tuple[SmtpServer, list[str]], tmp_path: Path
) -> None:
    # The re-run for the deferred is killed -9 after two of them went out; a backup tool then
    # copies the ledger file alone (not its -wal), and that copy is put back.
    server, emails = partial
    server.recorder.faults.data_delay = 0.3
    rerun = cli_process(isolated, "send", ISSUE, "--yes")
    kill_when(rerun, lambda: len(server.received) >= SENT + 2, 0.1)
    main = ledger_files(isolated)[0]
    shutil.copy(main, tmp_path / "backup.sqlite3")
    for path in ledger_files(isolated):
        path.unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.sqlite3", main)
    assert sorted(ledger_states(isolated).values()) == ["deferred"] * DEFERRED + ["sent"] * SENT

    server.recorder.faults.data_delay = 0
    code, _out, err = cli("send", ISSUE, "--yes")
    unknown = settle(isolated, server, emails, connections=1)
    assert code == (3 if unknown else 0), err


def test_a_deleted_journal_is_written_anew_from_the_ledger(
    isolated: Path, partial: tuple[SmtpServer, list[str]]
) -> None:
    server, emails = partial
    journal = isolated / ".mailer" / "journal"
    journal.unlink()
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)
    assert journal.stat().st_size > 0
    # The new journal is complete: a ledger lost now is rebuilt with everyone sent.
    cut_to_zero(isolated)
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert f"sent 0 now; {SENT + DEFERRED} sent in all" in out
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)


def test_check_and_rebuild_bring_back_a_ledger_cut_to_0_bytes(
    isolated: Path, partial: tuple[SmtpServer, list[str]]
) -> None:
    server, emails = partial
    cut_to_zero(isolated)
    report = check_ledger(isolated)
    assert not report.healthy
    assert report.behind == SENT + DEFERRED
    aside, applied = rebuild_ledger(isolated)
    assert aside is not None and aside.exists()
    assert applied > 0
    assert check_ledger(isolated).healthy
    assert sorted(ledger_states(isolated).values()) == ["deferred"] * DEFERRED + ["sent"] * SENT
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)


def has_ledger_command() -> bool:
    """Say whether the CLI has a `mailer ledger` command group."""
    return "ledger" in typer.main.get_group(app).commands


NO_LEDGER_COMMAND = (
    "mailer/cli has no `ledger` command yet: check_ledger and rebuild_ledger exist only in "
    "mailer.ledger (tested above)"
)


def test_mailer_ledger_check_and_rebuild(
    isolated: Path, partial: tuple[SmtpServer, list[str]]
) -> None:
    if not has_ledger_command():
        pytest.skip(NO_LEDGER_COMMAND)
    server, emails = partial
    cut_to_zero(isolated)
    code, out, err = cli("ledger", "check")
    assert code != 0 and "behind" in out + err
    code, _out, err = cli("ledger", "rebuild")
    assert code == 0, err
    code, _out, err = cli("ledger", "check")
    assert code == 0, err
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)


def test_the_commands_a_damaged_ledger_points_at_exist(
    isolated: Path, partial: tuple[SmtpServer, list[str]]
) -> None:
    ledger_files(isolated)[0].write_bytes(b"not a database, just text " * 200)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 1
    assert "`mailer ledger check`" in err and "`mailer ledger rebuild`" in err
    code, _out, err = cli("ledger", "check")
    assert code != 2, err  # 2: "No such command 'ledger'"
