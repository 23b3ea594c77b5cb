"""`mailer ledger check` and `mailer ledger rebuild`, and a ledger set back in time."""

from __future__ import annotations

from pathlib import Path

from tests.sending import ISSUE, addresses, cli, deliveries, make_folder
from tests.smtp_servers import MakeServer


def test_check_agrees_after_a_send_and_rebuild_restores_a_lost_ledger(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(5)
    make_folder(isolated, server, emails)
    assert cli("send", ISSUE, "--yes")[0] == 0
    code, out, err = cli("ledger", "check")
    assert code == 0, err
    assert "5 deliveries" in out and "agrees with its journal" in out

    ledger = isolated / ".mailer" / "ledger.sqlite3"
    ledger.write_bytes(b"")  # a sync tool, a restore: the ledger cut to 0 bytes
    code, _out, err = cli("ledger", "check")
    assert code == 1 and "5 deliveries are behind the journal" in err

    code, out, err = cli("ledger", "rebuild")
    assert code == 0, err
    assert "moved the old ledger aside" in out and "rebuilt" in out
    assert cli("ledger", "check")[0] == 0
    assert sorted(p.name for p in ledger.parent.glob("ledger.sqlite3.*")), "the old one is kept"
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)


def test_a_ledger_cut_to_nothing_sends_nobody_twice_without_any_command(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(6)
    make_folder(isolated, server, emails[:4])
    assert cli("send", ISSUE, "--yes")[0] == 0
    ledger = isolated / ".mailer" / "ledger.sqlite3"
    ledger.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        Path(str(ledger) + suffix).unlink(missing_ok=True)
    make_folder(isolated, server, emails)  # two more people joined the list
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)


def test_rebuild_without_a_journal_refuses_and_says_what_to_do(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    make_folder(isolated, make_smtp_server(), addresses(1))
    code, _out, err = cli("ledger", "rebuild")
    assert code == 1
    assert "no journal to rebuild the ledger from" in err and "backup" in err
