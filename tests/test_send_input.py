"""Send and bad input around the list: it stops or warns, saying where and what to do."""

from __future__ import annotations

from pathlib import Path

from tests.sending import ISSUE, addresses, cli, make_folder
from tests.smtp_servers import MakeServer


def test_a_short_unsubscribe_secret_is_refused_and_never_shown(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(2))
    short = "only-thirty-one-characters-long"
    assert len(short) == 31
    for args in (("--yes",), ("--dry-run",)):
        code, out, err = cli("send", ISSUE, *args, env={"MAILER_UNSUBSCRIBE_SECRET": short})
        assert code == 1
        assert "MAILER_UNSUBSCRIBE_SECRET: shorter than 32 characters" in err
        assert 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"' in err
        assert short not in out + err
        assert "Traceback" not in err
    assert server.received == []
    code, _out, err = cli("send", ISSUE, "--yes", env={"MAILER_UNSUBSCRIBE_SECRET": "x" * 32})
    assert code == 0, err
    assert len(server.received) == 2


def rewrite_line(folder: Path, number: int, old: str, new: str) -> None:
    """Edit one line of recipients.csv as someone would in a text editor."""
    path = folder / "recipients.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert old in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")


def test_an_unclosed_quote_stops_the_send_even_with_skip_invalid(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(1000))
    rewrite_line(isolated, 3, ",Name1", ',"Name1')
    for args in (("--yes", "--skip-invalid"), ("--dry-run", "--skip-invalid"), ("--yes",)):
        code, _out, err = cli("send", ISSUE, *args)
        assert code == 1, err
        assert (
            "recipients.csv:3:25: First Name: this quote is never closed, so lines 3 to 1001" in err
        )
        assert "--skip-invalid does not skip it" in err
        assert "Traceback" not in err
    assert server.received == []
    assert not (isolated / "build" / "outbox").exists()
    assert not (isolated / ".mailer" / "ledger.sqlite3").exists()


def test_an_empty_cell_without_a_default_warns_in_a_dry_run_and_stops_a_send(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, addresses(4))
    rewrite_line(isolated, 3, ",Name1", ",")
    rewrite_line(isolated, 5, ",Name3", ", ")
    issue = isolated / ISSUE
    greeting = '{{ recipient.first_name | default("colleague") }}'
    text = issue.read_text(encoding="utf-8")
    assert greeting in text
    issue.write_text(text.replace(greeting, "{{ recipient.first_name }}"), encoding="utf-8")
    rows = [
        f'recipients.csv:{line}: First Name: empty, and "{{{{ recipient.first_name }}}}" has no '
        "default for it"
        for line in (3, 5)
    ]
    code, out, err = cli("send", ISSUE, "--dry-run")
    assert code == 0, err
    assert "2 empty cell(s)" in err and "A real send refuses to start" in err
    assert all(row in err for row in rows)
    assert "wrote 4 messages" in out
    for args in (("--yes",), ("--yes", "--skip-invalid")):
        code, _out, err = cli("send", ISSUE, *args)
        assert code == 1
        assert "nothing was sent" in err
        assert '{{ recipient.first_name | default("...") }}' in err
        assert all(row in err for row in rows)
    assert server.received == []
    code, _out, err = cli("send", ISSUE, "--test", "editor@example.org")
    assert code == 0, err  # a proof does not read the list
    issue.write_text(text, encoding="utf-8")
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert "empty" not in err
    assert len(server.received) == 5


def test_duplicates_are_listed_with_both_lines_in_a_dry_run_and_with_skip_invalid(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(3)
    make_folder(isolated, server, [*emails, emails[0].upper(), "bob@", emails[2]])
    duplicates = [
        f"recipients.csv:5: duplicate of line 2 ({emails[0].upper()})",
        f"recipients.csv:7: duplicate of line 4 ({emails[2]})",
        "2 duplicate row(s) skipped",
    ]
    code, _out, err = cli("send", ISSUE, "--dry-run", "--skip-invalid")
    assert code == 0, err
    assert all(line in err for line in duplicates)
    code, out, err = cli("send", ISSUE, "--yes", "--skip-invalid")
    assert code == 0, err
    assert 'skipped: recipients.csv:6: Email: invalid address "bob@"' in err
    assert all(line in err for line in duplicates)
    assert "skipped: 2 duplicate, 0 unsubscribed, 1 invalid" in out
    assert sorted(r.recipients[0] for r in server.received) == emails


def test_a_bidi_override_or_a_second_at_sign_is_an_invalid_row_named_with_its_column(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(4)
    make_folder(isolated, server, emails)
    rewrite_line(isolated, 3, ",Name1", ",Name\u202e1")
    rewrite_line(isolated, 4, emails[2], f"@x{emails[2]}")
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 1
    assert (
        "recipients.csv:3: First Name: contains the bidirectional control U+202E "
        "(RIGHT-TO-LEFT OVERRIDE)" in err
    )
    assert f'recipients.csv:4: Email: invalid address "@x{emails[2]}": 2 "@" signs' in err
    assert server.received == []
    code, _out, err = cli("send", ISSUE, "--yes", "--skip-invalid")
    assert code == 0, err
    assert sorted(r.recipients[0] for r in server.received) == [emails[0], emails[3]]
