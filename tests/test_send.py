"""Sending against real SMTP servers on 127.0.0.1: everyone once, whatever goes wrong."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailer.ledger import Ledger
from tests.sending import ISSUE, addresses, cli, deliveries, make_folder, write_recipients
from tests.smtp_servers import MakeServer

STEM = Path(ISSUE).stem


def states(folder: Path) -> dict[str, int]:
    """Return the ledger's counts for the sample issue."""
    with Ledger.open(folder) as ledger:
        return ledger.counts(STEM)


def test_everyone_gets_it_once_and_a_rerun_sends_nothing(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(20)
    make_folder(isolated, server, emails)
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert server.connections == 1
    assert "done: everyone on the list has the issue" in out
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert len(server.received) == 20
    message = server.received[0].message
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["To"] == emails[0]


def test_a_refused_address_fails_alone_and_is_named(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(5)
    server = make_smtp_server(reject={emails[2]})
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 3
    assert deliveries(server) == {e: 1 for e in emails if e != emails[2]}
    assert f"{emails[2]}: failed (550" in _out + err
    assert states(isolated)["failed"] == 1
    code, out, _err = cli("status", STEM)
    assert code == 0
    assert f"{emails[2]}: failed after 1 attempt(s): 550" in out


def test_a_451_twice_then_success_is_retried_within_the_run(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(3)
    server = make_smtp_server(defer={emails[1]: 2})
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    with Ledger.open(isolated) as ledger:
        row = ledger.row(STEM, emails[1])
    assert row is not None and (row.state, row.attempts) == ("sent", 3)


def test_a_lasting_451_is_deferred_to_the_next_run(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(3)
    server = make_smtp_server(defer={emails[0]: 4})
    make_folder(
        isolated, server, emails, limits="per_second = 10000\nretry_delay = 0\nretries = 2\n"
    )
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 3
    assert "run the same command later" in err
    assert states(isolated)["deferred"] == 1
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)


def test_a_421_mid_session_reconnects_and_loses_no_one(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(12)
    server = make_smtp_server(shutdown_at=5)
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert server.connections == 2


def test_a_drop_before_the_reply_leaves_that_recipient_unknown_and_no_one_else(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(6)
    server = make_smtp_server(hang_up_at="DATA_END", hang_up_for=emails[3])
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 3
    assert deliveries(server) == {e: 1 for e in emails if e != emails[3]}
    assert [r.recipients for r in server.unacknowledged] == [(emails[3],)]
    assert states(isolated)["unknown"] == 1
    cli("send", ISSUE, "--yes")
    assert len(server.received) == 5, "an unknown recipient is not sent again by default"
    code, _out, err = cli("send", ISSUE, "--yes", "--resend-unknown")
    assert code == 0, err
    assert deliveries(server)[emails[3]] == 1


def test_a_drop_mid_session_is_resent_on_a_new_connection(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(6)
    server = make_smtp_server(hang_up_at="RCPT", hang_up_for=emails[2])
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)


def test_a_server_that_closes_every_five_messages(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(23)
    server = make_smtp_server(close_every=5)
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert server.connections == 5


def test_messages_per_connection_reconnects_on_purpose(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(10)
    server = make_smtp_server()
    make_folder(
        isolated, server, emails, limits="per_second = 10000\nmessages_per_connection = 4\n"
    )
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert server.connections == 3


def test_four_connections_deliver_everyone_once(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(40)
    server = make_smtp_server(reply_delay=0.005)
    make_folder(isolated, server, emails, limits="per_second = 10000\nconnections = 4\n")
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert server.connections == 4


def test_a_refused_login_exits_4_and_never_shows_the_password(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(tls="starttls", logins={"news": "right"}, refuse_login=True)
    make_folder(isolated, server, addresses(3), smtp='username = "news"\n')
    password = "S3cret-Pa55word"
    code, out, err = cli("-v", "send", ISSUE, "--yes", env={"MAILER_SMTP_PASSWORD": password})
    assert code == 4
    assert f"127.0.0.1:{server.port}: login refused" in err
    assert password not in out + err
    assert server.received == []
    assert states(isolated)["pending"] == 3


def test_an_untrusted_certificate_sends_nothing(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(tls="starttls")
    make_folder(isolated, server, addresses(3))
    settings = isolated / "mailer.toml"
    settings.write_text(
        "\n".join(
            line for line in settings.read_text().splitlines() if not line.startswith("ca_file")
        )
    )
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 4
    assert "certificate" in err
    assert server.received == []


def test_starttls_is_required_when_configured(isolated: Path, make_smtp_server: MakeServer) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    code, _out, err = cli("send", ISSUE, "--yes", env={"MAILER_SMTP_SECURITY": "starttls"})
    assert code == 4
    assert "does not offer STARTTLS" in err
    assert server.received == []


def test_too_many_failures_in_a_row_stop_the_run(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(30)
    server = make_smtp_server(reject=set(emails))
    make_folder(
        isolated, server, emails, limits="per_second = 10000\nmax_consecutive_failures = 5\n"
    )
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 4
    assert "stopped after 5 failures in a row" in err
    counts = states(isolated)
    assert counts["failed"] == 5
    assert counts["pending"] >= 20


def test_new_rows_are_sent_on_a_rerun(isolated: Path, make_smtp_server: MakeServer) -> None:
    server = make_smtp_server()
    emails = addresses(4)
    make_folder(isolated, server, emails)
    assert cli("send", ISSUE, "--yes")[0] == 0
    more = emails + addresses(3, start=100)
    write_recipients(isolated, more)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(more, 1)


def test_a_changed_issue_stops_the_rerun_unless_allowed(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(defer={"person00001@example.org": 9})
    make_folder(isolated, server, addresses(3), limits="per_second = 10000\nretries = 0\n")
    assert cli("send", ISSUE, "--yes")[0] == 3
    issue = isolated / ISSUE
    text = issue.read_text()
    issue.write_text(text.replace('subject: "L&D Newsletter, issue 12"', 'subject: "Corrected"'))
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 1
    assert "changed since it was first sent (2 already sent)" in err and "--allow-changes" in err
    assert len(server.received) == 2
    code, _out, err = cli("send", ISSUE, "--yes", "--allow-changes")
    assert code == 3  # still deferred by the server, but the new version was tried
    assert states(isolated)["deferred"] == 1


def test_duplicates_and_unsubscribed_are_skipped_and_counted(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(4)
    make_folder(isolated, server, [*emails, emails[0].upper()])
    assert cli("unsubscribe", emails[1])[0] == 0
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == {e: 1 for e in emails if e != emails[1]}
    assert "skipped: 1 duplicate, 1 unsubscribed, 0 invalid" in out


def test_invalid_rows_stop_the_send_unless_skipped(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, [*addresses(2), "bob@"])
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 1
    assert "recipients.csv:4:" in err and "--skip-invalid" in err
    assert server.received == []
    code, _out, err = cli("send", ISSUE, "--yes", "--skip-invalid")
    assert code == 0, err
    assert len(server.received) == 2


def test_a_proof_goes_only_to_the_test_address(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(3))
    code, out, err = cli("send", ISSUE, "--test", "editor@example.org")
    assert code == 0, err
    assert "editor@example.org: sent" in out
    assert [r.recipients for r in server.received] == [("editor@example.org",)]
    assert server.received[0].message["Subject"].startswith("[TEST] ")
    assert not (isolated / ".mailer" / "ledger.sqlite3").exists()


def test_without_a_terminal_it_refuses_to_send_without_yes(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    code, _out, err = cli("send", ISSUE)
    assert code == 2
    assert "pass --yes" in err
    assert server.received == []


def test_a_dry_run_writes_every_message_and_opens_no_socket(
    isolated: Path, make_smtp_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_smtp_server()
    emails = addresses(7)
    make_folder(isolated, server, emails)

    def refuse(*args: object) -> None:
        raise AssertionError("a dry run opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    code, out, err = cli("send", ISSUE, "--dry-run")
    assert code == 0, err
    outbox = isolated / "build" / "outbox" / STEM
    assert len(list(outbox.glob("*.eml"))) == 7
    assert emails[6] in (outbox / "index.html").read_text()
    assert "nothing was sent" in out
    assert not (isolated / ".mailer").exists()
    assert server.received == []


def test_a_missing_unsubscribe_secret_is_named_before_anything_is_sent(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    code, _out, err = cli("send", ISSUE, "--yes", env={"MAILER_UNSUBSCRIBE_SECRET": ""})
    assert code == 1
    assert "MAILER_UNSUBSCRIBE_SECRET" in err
    assert server.received == []


def test_check_errors_stop_a_send_unless_forced(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    issue = isolated / ISSUE
    issue.write_text(issue.read_text().replace("date: 2023-11-02", "date: 2023-10-02", 1))
    for args in (("--dry-run",), ("--yes",)):
        code, _out, err = cli("send", ISSUE, *args)
        assert code == 1
        assert "error(s) found by `mailer check`" in err and "--force" in err
    assert server.received == []
    code, _out, err = cli("send", ISSUE, "--yes", "--force")
    assert code == 0, err
    assert "despite 1 error(s)" in err
    assert len(server.received) == 2


def test_someone_taken_off_the_list_is_removed_and_the_issue_finishes(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(4)
    server = make_smtp_server(defer={emails[3]: 9})
    make_folder(isolated, server, emails, limits="per_second = 10000\nretries = 0\n")
    assert cli("send", ISSUE, "--yes")[0] == 3
    write_recipients(isolated, emails[:3])
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert states(isolated)["removed"] == 1
    with Ledger.open(isolated) as ledger:
        assert ledger.mark_finished(STEM, datetime.now(UTC))
    write_recipients(isolated, emails)  # back on the list: pending again, and sent
    server.recorder.faults.defer.clear()
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)


def test_the_list_comes_from_dir_never_from_the_current_directory(
    isolated: Path, make_smtp_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_smtp_server()
    folder = isolated / "news-b"
    folder.mkdir()
    make_folder(folder, server, ["b-reader@example.org"])
    write_recipients(isolated, ["a-reader@example.org"])  # a stray list where we stand
    code, _out, err = cli("--dir", str(folder), "send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == {"b-reader@example.org": 1}


def test_a_sender_refused_for_good_stops_the_run_and_loses_no_one(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(5)
    server = make_smtp_server(refuse_sender=True)
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 4
    assert "refuses mail from learning@northfield-safeguarding.example (550" in err
    assert states(isolated)["pending"] == 5
    server.recorder.faults.refuse_sender = False
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)


def test_an_internationalised_from_domain_goes_out_in_its_ascii_form(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    settings = isolated / "mailer.toml"
    settings.write_text(
        settings.read_text().replace(
            'from = "learning@northfield-safeguarding.example"', 'from = "news@bücher.example"'
        )
    )
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert {r.sender for r in server.received} == {"news@xn--bcher-kva.example"}


def test_a_mail_to_an_eszett_domain_goes_to_its_idna_2008_form(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, ["anna@straße.de"])
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == {"anna@xn--strae-oqa.de": 1}  # not strasse.de (IDNA 2003)
    assert server.received[0].message["To"] == "anna@xn--strae-oqa.de"


def test_a_non_ascii_password_is_a_clear_error_not_a_crash(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(tls="starttls", logins={"news": "right"})
    make_folder(isolated, server, addresses(2), smtp='username = "news"\n')
    code, out, err = cli("send", ISSUE, "--yes", env={"MAILER_SMTP_PASSWORD": "pässwörd"})
    assert code == 4
    assert "non-ASCII" in err and "pässwörd" not in out + err
    assert states(isolated)["pending"] == 2


def test_the_unicode_and_ascii_forms_of_an_address_are_one_recipient(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, ["bob@bücher.example", "BOB@xn--bcher-kva.example"])
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == {"bob@xn--bcher-kva.example": 1}
    assert "1 duplicate" in out
    make_folder(isolated, server, ["amy@xn--bcher-kva.example"])
    assert cli("unsubscribe", "amy@bücher.example")[0] == 0
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 1 and "no one to send to" in err


def test_a_dry_run_never_deletes_files_that_are_not_its_own(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    make_folder(isolated, make_smtp_server(), addresses(2))
    mail = isolated / "Mail"
    mail.mkdir()
    (mail / "keep.eml").write_text("mine")
    code, _out, err = cli("send", ISSUE, "--dry-run", "--outbox", "Mail")
    assert code == 1
    assert "not empty and not an outbox" in err
    assert (mail / "keep.eml").read_text() == "mine"
    assert cli("send", ISSUE, "--dry-run", "--outbox", "proofs")[0] == 0
    assert cli("send", ISSUE, "--dry-run", "--outbox", "proofs")[0] == 0  # its own: rewritten
    assert len(list((isolated / "proofs").glob("*.eml"))) == 2


def test_a_proof_needs_no_recipients_file(isolated: Path, make_smtp_server: MakeServer) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(1))
    (isolated / "recipients.csv").unlink()
    code, _out, err = cli("send", ISSUE, "--test", "editor@example.org")
    assert code == 0, err
    assert len(server.received) == 1


def test_unwritable_outputs_are_errors_not_tracebacks(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(reject={"person00000@example.org"})
    make_folder(isolated, server, addresses(1))
    (isolated / "afile").write_text("")
    for args in (
        ("send", ISSUE, "--dry-run", "--outbox", "afile"),
        ("compose", ISSUE, "--no-open", "--out", "afile"),
    ):
        code, _out, err = cli(*args)
        assert code == 1, args
        assert "afile" in err and "Traceback" not in err
    cli("send", ISSUE, "--yes")
    code, _out, err = cli("status", "--csv", "nodir/x.csv")
    assert code == 1 and "nodir/x.csv: cannot write" in err


def test_an_unreadable_reply_is_retried_and_costs_no_one(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(4)
    server = make_smtp_server(garble_for=emails[1])
    make_folder(isolated, server, emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert server.connections == 2


def test_a_placeholder_naming_no_column_stops_the_send(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    issue = isolated / ISSUE
    issue.write_text(
        issue.read_text().replace(
            'subject: "L&D Newsletter, issue 12"', 'subject: "Hi {{ recipient.firstname }}"'
        )
    )
    code, _out, err = cli("send", ISSUE, "--dry-run")
    assert code == 1
    assert '"{{ recipient.firstname }}" uses "firstname"' in err and "first_name" in err
    assert server.received == []


def test_proofs_go_to_several_addresses(isolated: Path, make_smtp_server: MakeServer) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(1))
    code, _out, err = cli("send", ISSUE, "--test", "a@example.org, b@example.org")
    assert code == 0, err
    assert sorted(r.recipients[0] for r in server.received) == ["a@example.org", "b@example.org"]


def test_a_username_without_a_password_is_a_settings_error(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(1), smtp='username = "news"\n')
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 1
    assert "set MAILER_SMTP_PASSWORD, or remove the username" in err


def test_status_and_unsubscribe_refuse_a_folder_that_is_not_a_newsletter(isolated: Path) -> None:
    for args in (("status",), ("unsubscribe", "x@example.org")):
        code, _out, err = cli("--dir", "elsewhere", *args)
        assert code == 1 and "no settings file" in err
    assert not (isolated / "elsewhere" / "unsubscribed.csv").exists()
