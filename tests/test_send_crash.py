"""Killed mid-send, or run twice at once: still nobody twice, nobody lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from mailer.ledger import Ledger
from tests.sending import ISSUE, addresses, cli, cli_process, deliveries, make_folder
from tests.smtp_servers import MakeServer, wait_until

STEM = Path(ISSUE).stem


@pytest.mark.parametrize("kill_after", [3, 11])
def test_a_send_killed_with_sigkill_resumes_without_sending_twice(
    isolated: Path, make_smtp_server: MakeServer, kill_after: int
) -> None:
    emails = addresses(25)
    server = make_smtp_server(data_delay=0.02)
    make_folder(isolated, server, emails)
    first = cli_process(isolated, "send", ISSUE, "--yes")
    try:
        assert wait_until(lambda: len(server.received) >= kill_after, timeout=30)
        first.send_signal(signal.SIGKILL)
    finally:
        first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert len(server.received) < len(emails), "killed too late to test anything"

    code, _out, err = cli("send", ISSUE, "--yes")
    with Ledger.open(isolated) as ledger:
        unknown = {row.email for row in ledger.problems(STEM) if row.state == "unknown"}
    counts = deliveries(server)
    assert max(counts.values()) == 1, "somebody got the issue twice"
    assert {e for e in emails if counts.get(e) != 1} <= unknown, "somebody was lost"
    assert len(unknown) <= 1  # at most the one message in flight when the kill came
    assert code == (3 if unknown else 0), err


def test_a_second_send_at_the_same_time_exits_75(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(15)
    server = make_smtp_server(data_delay=0.05)
    make_folder(isolated, server, emails)
    first = cli_process(isolated, "send", ISSUE, "--yes")
    try:
        assert wait_until(lambda: len(server.received) >= 1, timeout=30)
        started = time.monotonic()
        code, _out, err = cli("send", ISSUE, "--yes")
        assert code == 75
        assert "another send is already running" in err
        assert time.monotonic() - started < 5
    finally:
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)


@pytest.mark.slow
def test_ctrl_c_says_it_is_stopping_and_a_rerun_finishes_the_job(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(30)
    server = make_smtp_server(data_delay=0.05)
    make_folder(isolated, server, emails)
    first = cli_process(isolated, "send", ISSUE, "--yes")
    try:
        assert wait_until(lambda: len(server.received) >= 3, timeout=30)
        first.send_signal(signal.SIGINT)
    finally:
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "stopping: waiting for the server's answer" in err
    assert len(server.received) < len(emails)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
