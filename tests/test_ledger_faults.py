"""The fenced ledger under kill -9, over a pipelined connection, and across a reboot.

Every test counts what a real server on 127.0.0.1 received per envelope recipient (the
messages whose data ended, acknowledged or not: a server with the final dot may deliver it)
and compares it with what the ledger and `mailer status` say.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mailer.errors import LedgerError
from mailer.ledger import Ledger, current_boot_id
from mailer.mime import MessageError, MessageFactory
from tests.crashes import LOST, STEM, kill_when, ledger_states, settle
from tests.sending import ISSUE, SECRET, addresses, cli, cli_process, deliveries, make_folder
from tests.smtp_servers import MakeServer, SmtpServer, wait_until

LIMITS = "per_second = 10000\nretry_delay = 0.01\nconnections = {}\n"


# (connections, commands the server has handled, then seconds) before the kill: points all
# over the cycle of a pipelined message (replies in flight, data going out, outcome unsaved).
# Slow as a set (~15 s); the two tests after them pin the riskiest moments in ~2 s each.
TRIALS = [(1, 3, 0.0), (1, 10, 0.002), (1, 17, 0.0045), (2, 5, 0.001), (2, 14, 0.003)]
TRIALS += [(2, 24, 0.0), (2, 31, 0.0035)]


@pytest.mark.slow
@pytest.mark.parametrize(("connections", "commands", "after"), TRIALS)
def test_a_pipelined_send_killed_anywhere_sends_nobody_twice_and_loses_nobody(
    isolated: Path, make_smtp_server: MakeServer, connections: int, commands: int, after: float
) -> None:
    emails = addresses(16)
    server = make_smtp_server(pipelining=True, reply_delay=0.003)
    make_folder(isolated, server, emails, limits=LIMITS.format(connections))
    first = cli_process(isolated, "send", ISSUE, "--yes")
    kill_when(first, lambda: len(server.commands) >= commands, after)
    assert len(deliveries(server, unacknowledged=True)) < len(emails), "killed too late"

    code, _out, err = cli("send", ISSUE, "--yes")
    unknown = settle(isolated, server, emails, connections=connections)
    assert code == (3 if unknown else 0), err


def huge_for(folder: Path, emails: list[str], huge: str) -> None:
    """Make one recipient's message ~9 MB (more than both sockets' buffers hold)."""
    with (folder / "recipients.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First Name", "Lines"])
        writer.writerows(
            [email, f"Name{n}", 80_000 if email == huge else 0] for n, email in enumerate(emails)
        )
    issue = folder / ISSUE
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\\n"
    padding = f'{{{{ "{line}" * (recipient.lines | default(0) | int) }}}}'
    issue.write_text(
        issue.read_text(encoding="utf-8").replace(
            "blocks:\n", f"blocks:\n  - type: text\n    body: |\n      {padding}\n\n", 1
        ),
        encoding="utf-8",
    )


def test_killed_between_the_sending_commit_and_the_final_dot(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    # The server stops reading after its 354 to the huge message, so the client is held in
    # the write of the data, after `sending` was committed and before its final dot.
    emails = addresses(6)
    huge = emails[0]
    server = make_smtp_server(pipelining=True, stall_data_for=huge)
    make_folder(isolated, server, emails, limits=LIMITS.format(2))
    huge_for(isolated, emails, huge)
    first = cli_process(isolated, "send", ISSUE, "--yes")
    kill_when(
        first,
        lambda: bool(server.recorder.stalled) and ledger_states(isolated).get(huge) == "sending",
        0.2,
    )
    server.resume()  # whatever the killed client had written still arrives, then its FIN
    assert wait_until(lambda: not server.recorder.live, timeout=10)
    assert huge not in deliveries(server, unacknowledged=True), "the final dot went out"

    code, _out, err = cli("send", ISSUE, "--yes")
    assert settle(isolated, server, emails, connections=2) == {huge}
    assert code == 3, err


def test_killed_after_the_final_dot_before_the_reply(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(6)
    server = make_smtp_server(pipelining=True, data_delay=5)
    make_folder(isolated, server, emails, limits=LIMITS.format(1))
    first = cli_process(isolated, "send", ISSUE, "--yes")
    kill_when(first, lambda: "DATA" in server.commands, 0.05)
    assert ledger_states(isolated)[emails[0]] == "sending"
    assert wait_until(lambda: len(server.unacknowledged) == 1)
    server.recorder.faults.data_delay = 0

    code, _out, err = cli("send", ISSUE, "--yes")
    assert settle(isolated, server, emails, connections=1) == {emails[0]}
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)
    assert code == 3, err


def test_a_pipelined_refusal_sends_no_data_and_leaves_the_others_alone(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(4)
    refused = emails[1]
    # The reply to each message's data takes 0.2 s: long enough to see what the client wrote
    # before it (the next message's commands, pipelined) and what it waited for.
    server = make_smtp_server(pipelining=True, reject={refused}, data_delay=0.2)
    make_folder(isolated, server, emails, limits=LIMITS.format(1))
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 3, err
    assert deliveries(server, unacknowledged=True) == {e: 1 for e in emails if e != refused}
    # DATA is noted when a message's data has ended; the refused one's DATA got a 503.
    assert (
        server.commands
        == ["EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "RSET"]
        + [
            "MAIL",
            "RCPT",
            "DATA",
        ]
        * 2
    ), "RSET after a completed transaction, or not after the refusal"
    inbound = b"".join(chunk.data for chunk in server.transcript if chunk.incoming)
    assert inbound.count(refused.encode()) == 1, "data went out for the refused recipient"
    assert inbound.count(b"\r\n.\r\n") == 3
    mails, before_each_reply = 0, []
    for chunk in server.transcript:
        if chunk.incoming:
            mails += chunk.data.count(b"MAIL FROM:")
        elif chunk.data.startswith(b"250 2.0.0"):
            before_each_reply.append(mails)
    # The next message's MAIL arrived before the reply to the data it followed.
    assert before_each_reply == [2, 4, 4], "the client waited before the next message"
    assert ledger_states(isolated) == {e: "failed" if e == refused else "sent" for e in emails}
    code, out, _err = cli("status", STEM)
    assert f"{refused}: failed after 1 attempt(s): 550" in out


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_message_built_ahead_that_fails_does_not_cost_the_one_in_flight_its_outcome(
    isolated: Path, make_smtp_server: MakeServer, monkeypatch: pytest.MonkeyPatch, pipelining: bool
) -> None:
    # The next message is built while the current one is in flight. Fault injection: the
    # second recipient's message cannot be built, and the ledger cannot record that (its
    # disk refuses the write). The first, delivered meanwhile, must still be recorded sent.
    emails = addresses(3)
    server = make_smtp_server(pipelining=pipelining, reply_delay=0.05)
    make_folder(isolated, server, emails, limits=LIMITS.format(1))
    build = MessageFactory.build

    def refuse_the_second(self: MessageFactory, fields: dict[str, str], *, now: datetime) -> Any:
        if fields["email"] == emails[1]:
            raise MessageError("a value we refuse to send")
        return build(self, fields, now=now)

    def full_disk(*_args: object) -> None:
        raise LedgerError("cannot write the send journal (No space left on device)")

    monkeypatch.setattr(MessageFactory, "build", refuse_the_second)
    monkeypatch.setattr(Ledger, "mark_failed", full_disk)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 4, err
    assert deliveries(server, unacknowledged=True) == {emails[0]: 1}
    left = dict.fromkeys(emails[1:], "pending")
    assert ledger_states(isolated) == {emails[0]: "sent", **left}


@pytest.fixture
def reserved_then_killed(
    isolated: Path, make_smtp_server: MakeServer
) -> tuple[SmtpServer, list[str]]:
    """Kill a send -9 right after it reserved its batch, before any message went out."""
    emails = addresses(6)
    server = make_smtp_server(reply_delay=1.0)  # holds the EHLO while the batch is reserved
    make_folder(isolated, server, emails)
    first = cli_process(isolated, "send", ISSUE, "--yes")
    kill_when(first, lambda: set(ledger_states(isolated).values()) == {"reserved"}, 0)
    assert ledger_states(isolated) == dict.fromkeys(emails, "reserved")
    assert "MAIL" not in server.commands
    server.recorder.faults.reply_delay = 0
    return server, emails


def test_reserved_rows_of_a_killed_run_are_sent_on_the_same_boot(
    isolated: Path, reserved_then_killed: tuple[SmtpServer, list[str]]
) -> None:
    server, emails = reserved_then_killed
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)
    assert ledger_states(isolated) == dict.fromkeys(emails, "sent")


@pytest.mark.parametrize(
    ("boot", "after"),
    [("", "pending"), ("another-boot", "unknown")],
    ids=["same-boot", "another-boot"],
)
def test_recover_turns_reserved_rows_by_boot(
    isolated: Path, reserved_then_killed: tuple[SmtpServer, list[str]], boot: str, after: str
) -> None:
    _server, emails = reserved_then_killed
    with Ledger.open(isolated, boot_id=boot or current_boot_id()) as ledger:
        ledger.reconcile()
        assert ledger.recover(STEM) == (len(emails) if after == "unknown" else 0)
    assert ledger_states(isolated) == dict.fromkeys(emails, after)


FAKE_BOOT = "00000000-0000-4000-8000-00000000b007"
ON_ANOTHER_BOOT = 'mount --bind "$0" /proc/sys/kernel/random/boot_id && exec "$@"'


@pytest.fixture
def another_boot(tmp_path: Path) -> list[str]:
    """Return a command prefix under which /proc says another boot id (a private mount)."""
    boot = tmp_path / "boot_id"
    boot.write_text(FAKE_BOOT + "\n", encoding="ascii")
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", ON_ANOTHER_BOOT]
    prefix.append(str(boot))
    try:
        probe = subprocess.run(
            [*prefix, "cat", "/proc/sys/kernel/random/boot_id"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError as err:
        pytest.skip(f"no unshare(1) to fake a reboot: {err}")
    if probe.stdout.strip() != FAKE_BOOT:
        pytest.skip(f"cannot bind-mount over the boot id (needs root): {probe.stderr.strip()}")
    return prefix


def test_after_a_reboot_reserved_rows_are_unknown_and_not_sent(
    isolated: Path, reserved_then_killed: tuple[SmtpServer, list[str]], another_boot: list[str]
) -> None:
    # mailer has no option to override the boot id: the re-run is a real `mailer send` in a
    # private mount namespace where /proc/sys/kernel/random/boot_id says another boot.
    server, emails = reserved_then_killed
    env = {**os.environ, "MAILER_UNSUBSCRIBE_SECRET": SECRET}
    rerun = subprocess.run(
        [*another_boot, sys.executable, "-m", "mailer", "send", ISSUE, "--yes"],
        cwd=isolated,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rerun.returncode == 3, rerun.stderr
    assert f"{len(emails)} recipients were mid-send when an earlier run stopped" in rerun.stderr
    assert server.received == [] and server.unacknowledged == []
    assert ledger_states(isolated) == dict.fromkeys(emails, "unknown")
    code, out, _err = cli("status", STEM)
    assert all(f"{email}: unknown after 0 attempt(s): {LOST}" in out for email in emails), out

    code, _out, err = cli("send", ISSUE, "--yes", "--resend-unknown")
    assert code == 0, err
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)
