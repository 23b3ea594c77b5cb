"""`mailer inbox` end to end: a real send, real report formats back, the next send skips them."""

from __future__ import annotations

import csv
import mailbox
import shutil
import sqlite3
from pathlib import Path

import pytest

import mailer.inbox.run
from mailer.errors import RecipientsError
from mailer.folder import Newsletter
from mailer.inbox import LocalMailbox, process_inbox
from mailer.recipients import load_suppressed
from mailer.send import utc_now
from tests.conftest import REPO_DIR
from tests.sending import ISSUE, SAMPLE, SECRET, cli, deliveries, make_folder
from tests.smtp_servers import MakeServer, SmtpServer

FIXTURES = REPO_DIR / "tests" / "fixtures" / "inbox"
OTHER = REPO_DIR / "tests" / "fixtures" / "other-issue.yaml"
BOUNCED = {
    "left.staff@example.org": "hard-bounce",  # Postfix DSN, 5.1.1
    "gone@example.com": "hard-bounce",  # Exchange Online NDR, prose, 5.1.10
    "nobody@example.net": "hard-bounce",  # Gmail, prose, 5.1.1
    "complainer@example.org": "complaint",  # ARF, the recipient redacted
    "leaver@example.org": "unsubscribe",  # mailto with its token, sent by someone else
    "plain.reader@example.org": "unsubscribe",  # mailto without a token, from the reader
}
KEPT = ["full.box@example.org", "away@example.org", "keeper@example.org"]  # soft, OOO, forged
RECIPIENTS = [*BOUNCED, *KEPT]


def fixture_bytes() -> list[bytes]:
    """Return every report in tests/fixtures/inbox."""
    return [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]


def make_maildir(path: Path, messages: list[bytes]) -> Path:
    """Deliver messages into a new Maildir, as a local MTA would."""
    box = mailbox.Maildir(path, create=True)
    for data in messages:
        box.add(data)
    box.close()
    return path


def make_mbox(path: Path, messages: list[bytes]) -> Path:
    """Write messages to an mbox file, as a mail program's export does."""
    box = mailbox.mbox(path, create=True)
    for data in messages:
        box.add(data)
    box.close()
    return path


def suppressed(folder: Path) -> dict[str, str]:
    """Return suppressed.csv's rows as address -> reason (the last row wins)."""
    with (folder / "suppressed.csv").open(encoding="utf-8", newline="") as handle:
        found: dict[str, str] = {}
        for row in csv.DictReader(handle):
            if row["action"] == "suppressed":
                found[row["email"]] = row["reason"]
            else:
                found.pop(row["email"], None)
        return found


def ledger_ids(folder: Path, issue: str) -> dict[str, str]:
    """Return the Message-ID the send gave each recipient of an issue."""
    with sqlite3.connect(folder / ".mailer" / "ledger.sqlite3") as db:
        rows = db.execute("SELECT email, message_id FROM deliveries WHERE issue_id = ?", (issue,))
        return dict(rows.fetchall())


def sent_to(server: SmtpServer) -> set[str]:
    """Return everyone the server has a message for."""
    return set(deliveries(server))


@pytest.fixture
def sent(isolated: Path, make_smtp_server: MakeServer) -> SmtpServer:
    """Send the sample issue to RECIPIENTS through a real SMTP server."""
    server = make_smtp_server()
    make_folder(isolated, server, RECIPIENTS)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    return server


def test_the_fixtures_carry_the_message_ids_the_send_gave(sent: SmtpServer, isolated: Path) -> None:
    ids = ledger_ids(isolated, Path(ISSUE).stem)
    text = "".join(data.decode("utf-8", "replace") for data in fixture_bytes())
    text = text.replace("=\n", "")  # the Exchange NDR's quoted-printable line breaks
    for address in [*BOUNCED, "full.box@example.org"]:
        if BOUNCED.get(address) != "unsubscribe":
            assert ids[address] in text, address


def test_after_inbox_the_next_send_skips_exactly_the_bounced_and_unsubscribed(
    sent: SmtpServer, isolated: Path
) -> None:
    box = make_maildir(isolated.parent / "bounces", fixture_bytes())
    code, out, err = cli("inbox", "--maildir", str(box))
    assert code == 0, err
    assert suppressed(isolated) == BOUNCED, out
    assert "full.box@example.org: soft bounce 1 of 3" in out
    assert "9 new message(s)" in out and "left alone: 2" in out, out

    before = (isolated / "suppressed.csv").read_bytes()
    code, out, err = cli("inbox", "--maildir", str(box))
    assert code == 0, err
    assert "0 new message(s); 9 processed before" in out
    assert (isolated / "suppressed.csv").read_bytes() == before  # nothing counted twice

    code, out, _err = cli("status")
    assert "suppressed: 6 address(es) no send reaches" in out, out
    assert "3 hard-bounce" in out and "2 unsubscribe" in out and "1 complaint" in out

    first = len(sent.received)
    shutil.copy(OTHER, isolated / "issues" / "2023-11-17-ld-newsletter.yaml")
    code, out, err = cli("send", "issues/2023-11-17-ld-newsletter.yaml", "--yes")
    assert code == 0, err
    second = {r for received in sent.received[first:] for r in received.recipients}
    assert second == set(KEPT)
    assert "6 unsubscribed" in out


def test_verbose_lists_what_was_left_alone(sent: SmtpServer, isolated: Path) -> None:
    box = make_maildir(isolated.parent / "bounces", fixture_bytes())
    code, out, _err = cli("-v", "inbox", "--maildir", str(box))
    assert code == 0
    assert 'auto-reply: from away@example.org, "Automatic reply: L&D Newsletter' in out
    assert "unrecognised" not in out  # the forged request is an unsubscribe that failed:
    assert "from mallory@example.net" in out and "no valid token" in out


def test_an_mbox_export_is_read_the_same_way(sent: SmtpServer, isolated: Path) -> None:
    path = make_mbox(isolated.parent / "bounces.mbox", fixture_bytes())
    code, _out, err = cli("inbox", "--mbox", str(path))
    assert code == 0, err
    assert suppressed(isolated) == BOUNCED


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(
    sent: SmtpServer, isolated: Path
) -> None:
    box = make_maildir(isolated.parent / "bounces", fixture_bytes())
    code, out, err = cli("inbox", "--maildir", str(box), "--dry-run")
    assert code == 0, err
    assert "would suppress left.staff@example.org: hard-bounce" in out
    assert "dry run: nothing was recorded" in out
    assert not (isolated / "suppressed.csv").exists()
    assert not (isolated / ".mailer" / "inbox.sqlite3").exists()
    code, out, _err = cli("inbox", "--maildir", str(box))
    assert "9 new message(s)" in out  # the dry run remembered nothing


def _soft_bounce_for(message_id: str) -> bytes:
    template = (FIXTURES / "postfix-mailbox-full.eml").read_bytes()
    old = b"<fcdb8178a62f003f04137c083e854991.2023-10-20-ld-newsletter@northfield-safeguarding"
    return template.replace(old + b".example>", message_id.encode()).replace(
        b"Message-Id: <20231020080112", b"Message-Id: <" + message_id[1:9].encode()
    )


def test_soft_bounces_suppress_after_three_separate_issues(
    sent: SmtpServer, isolated: Path
) -> None:
    box = isolated.parent / "bounces"
    issues = [Path(ISSUE).stem]
    for name in ("2023-10-27-ld-newsletter", "2023-11-03-ld-newsletter"):
        (isolated / "issues" / f"{name}.yaml").write_bytes(SAMPLE.read_bytes())
        code, _out, err = cli("send", f"issues/{name}.yaml", "--yes")
        assert code == 0, err
        issues.append(name)
    full = "full.box@example.org"
    bounces = [_soft_bounce_for(ledger_ids(isolated, issue)[full]) for issue in issues]
    make_maildir(box, [bounces[0], bounces[0]])  # twice for one issue counts once
    cli("inbox", "--maildir", str(box))
    make_maildir(box, [bounces[1]])
    code, out, _err = cli("inbox", "--maildir", str(box))
    assert f"{full}: soft bounce 2 of 3" in out and full not in load_suppressed(
        Newsletter(isolated)
    )
    make_maildir(box, [bounces[2]])
    code, out, _err = cli("inbox", "--maildir", str(box))
    assert f"suppressed {full}: soft-bounce" in out, out
    assert suppressed(isolated) == {full: "soft-bounce"}


def test_a_send_refusal_for_good_is_suppressed_at_the_next_inbox_run(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(reject={"left.staff@example.org"})
    make_folder(isolated, server, ["left.staff@example.org", "keeper@example.org"])
    code, _out, _err = cli("send", ISSUE, "--yes")
    assert code == 3  # one failed for good
    make_maildir(isolated.parent / "empty", [])
    code, out, err = cli("inbox", "--maildir", str(isolated.parent / "empty"))
    assert code == 0, err
    assert suppressed(isolated) == {"left.staff@example.org": "refused"}
    assert "550 RCPT: 5.1.1" in (isolated / "suppressed.csv").read_text(encoding="utf-8")
    # Reinstated by hand, the old refusal does not suppress again.
    code, out, _err = cli("unsubscribe", "--undo", "left.staff@example.org", "--note", "back")
    assert "reinstated (was refused, issue 2023-10-20-ld-newsletter" in out, out
    cli("inbox", "--maildir", str(isolated.parent / "empty"))
    assert suppressed(isolated) == {}


def test_undo_reinstates_from_both_lists_with_a_note(sent: SmtpServer, isolated: Path) -> None:
    box = make_maildir(isolated.parent / "bounces", fixture_bytes())
    cli("inbox", "--maildir", str(box))
    cli("unsubscribe", "hand@example.org")
    code, out, err = cli(
        "unsubscribe", "--undo", "gone@example.com", "hand@example.org", "who@example.org",
        "--note", "moved back",
    )  # fmt: skip
    assert code == 0, err
    assert "gone@example.com: reinstated (was hard-bounce, issue 2023-10-20" in out
    assert "hand@example.org: reinstated (was in unsubscribed.csv)" in out
    assert "who@example.org: not suppressed" in out
    keys = load_suppressed(Newsletter(isolated))
    assert "gone@example.com" not in keys and "hand@example.org" not in keys
    text = (isolated / "suppressed.csv").read_text(encoding="utf-8")
    assert "gone@example.com,reinstated,reinstated" in text and "moved back; was" in text


def test_wrong_sources_are_usage_errors_without_a_traceback(
    isolated: Path, newsletter: Path
) -> None:
    code, _out, err = cli("inbox")
    assert code == 2 and "name one mailbox" in err
    code, _out, err = cli("inbox", "--maildir", "nowhere")
    assert code == 1 and "not a Maildir" in err and "Traceback" not in err
    (isolated / "file.txt").write_text("hello\n", encoding="utf-8")
    code, _out, err = cli("inbox", "--mbox", "file.txt")
    assert code == 1 and "file.txt:1: not an mbox file" in err
    code, _out, err = cli("inbox", "--imap")
    assert code == 1 and "no [inbox] host" in err


class _CrashOnMove(LocalMailbox):
    """A mailbox whose move fails, as if the process died after recording the batch."""

    def done(self, ids: list[str]) -> None:
        raise KeyboardInterrupt


def test_a_crash_after_recording_loses_nothing_and_counts_nothing_twice(
    sent: SmtpServer, isolated: Path
) -> None:
    box = make_maildir(isolated.parent / "bounces", fixture_bytes())
    newsletter = Newsletter(isolated, environ={"MAILER_UNSUBSCRIBE_SECRET": SECRET})
    with pytest.raises(KeyboardInterrupt):
        process_inbox(newsletter, _CrashOnMove(box, "maildir"), dry_run=False, now=utc_now())
    assert suppressed(isolated) == BOUNCED  # recorded before the move
    report = process_inbox(newsletter, LocalMailbox(box, "maildir"), dry_run=False, now=utc_now())
    assert (report.already, sum(report.kinds.values())) == (9, 0)
    assert suppressed(isolated) == BOUNCED


def test_a_crash_before_recording_reads_the_batch_again(
    sent: SmtpServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = make_maildir(isolated.parent / "bounces", fixture_bytes())
    newsletter = Newsletter(isolated, environ={"MAILER_UNSUBSCRIBE_SECRET": SECRET})

    def full_disk(*args: object, **kwargs: object) -> str:
        raise RecipientsError("suppressed.csv: cannot write (No space left on device)")

    monkeypatch.setattr(mailer.inbox.run, "record_suppressions", full_disk)
    with pytest.raises(RecipientsError):
        process_inbox(newsletter, LocalMailbox(box, "maildir"), dry_run=False, now=utc_now())
    monkeypatch.undo()
    report = process_inbox(newsletter, LocalMailbox(box, "maildir"), dry_run=False, now=utc_now())
    assert (report.already, sum(report.kinds.values())) == (0, 9)  # nothing was lost
    assert suppressed(isolated) == BOUNCED
