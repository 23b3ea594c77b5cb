"""What happens around a send: a full or read-only disk, a trickling server, a SIGTERM.

The disk faults are real: .mailer/ is a small tmpfs (root only), filled mid-run or mounted
read-only. chmod would prove nothing: root writes through it, and a file already open for
writing stays writable to anyone; a mount cannot become read-only while the send holds its
ledger open, so "read-only" is tested at the start of a run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.crashes import STEM, ledger_states, settle
from tests.sending import ISSUE, addresses, cli, cli_process, deliveries, make_folder
from tests.smtp_servers import MakeServer, SmtpServer, wait_until
from tests.smtp_trickle import Trickle, TricklingServer

LIMITS = "per_second = 10000\nretry_delay = 0.01\nconnections = 2\n"
PAGE = 4096  # tmpfs allocates whole pages


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    """Run mount(8) or umount(8) (the first argument) and return what it did."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=10, check=False)


@pytest.fixture
def small_disk(isolated: Path) -> Iterator[Path]:
    """Mount a 16 MB tmpfs on the folder's .mailer/ and return it (skip where one cannot)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = isolated / ".mailer"
    disk.mkdir()
    done = mount("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield disk
    finally:
        mount("umount", "-l", str(disk))


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte with one file; return it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 65536)
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0")
    return filler


@pytest.fixture
def full_mid_run(
    isolated: Path, small_disk: Path, make_smtp_server: MakeServer
) -> tuple[SmtpServer, list[str], subprocess.CompletedProcess[str]]:
    """Fill .mailer/ once 5 of 30 messages have arrived; return how the send ended."""
    emails = addresses(30)
    server = make_smtp_server(pipelining=True, reply_delay=0.003)
    make_folder(isolated, server, emails, limits=LIMITS)
    first = cli_process(isolated, "send", ISSUE, "--yes")
    try:
        assert wait_until(lambda: len(server.received) >= 5, timeout=30)
        filler = fill(small_disk)
    finally:
        out, err = first.communicate(timeout=60)
    assert len(deliveries(server, unacknowledged=True)) < len(emails), "filled too late"
    filler.unlink()
    return server, emails, subprocess.CompletedProcess(first.args, first.returncode, out, err)


def test_a_disk_full_mid_run_then_freed_sends_nobody_twice(
    isolated: Path, full_mid_run: tuple[SmtpServer, list[str], subprocess.CompletedProcess[str]]
) -> None:
    server, emails, first = full_mid_run
    assert first.returncode != 0
    code, _out, err = cli("send", ISSUE, "--yes")
    unknown = settle(isolated, server, emails, connections=2)
    assert code == (3 if unknown else 0), err


def test_a_disk_full_mid_run_is_a_clear_error_not_exit_1(
    full_mid_run: tuple[SmtpServer, list[str], subprocess.CompletedProcess[str]],
) -> None:
    _server, _emails, first = full_mid_run
    assert ".mailer/journal" in first.stderr or ".mailer/ledger.sqlite3" in first.stderr
    assert "No space left on device" in first.stderr or "full" in first.stderr
    assert "Traceback" not in first.stderr
    assert first.returncode in (3, 4), first.stderr  # 1 says "nothing was sent"
    assert f"{STEM}: sent " in first.stdout  # the summary: who has it so far


def pad_to_a_page(journal: Path) -> None:
    """Append a no-op entry (the issue's "started", padded) that ends at a 4 KB page boundary.

    tmpfs allocates whole pages: once the disk is full, the journal's next append then fails.
    """
    lines = journal.read_bytes().splitlines()
    started = next(line for line in lines if json.loads(line)["state"] == "started")
    slack = -journal.stat().st_size % PAGE
    while slack < len(started) + 1:
        slack += PAGE
    padded = started[:-1] + b" " * (slack - len(started) - 1) + b"}\n"
    with journal.open("ab") as handle:
        handle.write(padded)
    assert journal.stat().st_size % PAGE == 0


def test_a_journal_that_cannot_take_the_sending_mark_stops_the_message_before_its_dot(
    isolated: Path, small_disk: Path, make_smtp_server: MakeServer
) -> None:
    # The server holds back its 354 for the third message; meanwhile the journal's last page
    # is filled up, then the disk: the journal refuses that message's `sending`.
    emails = addresses(6)
    third = emails[2]
    server = make_smtp_server(pipelining=True, hold_354_for=third)
    make_folder(isolated, server, emails, limits=LIMITS.replace("= 2", "= 1"))
    first = cli_process(isolated, "send", ISSUE, "--yes")
    try:
        assert server.recorder.holding.wait(timeout=30)
        pad_to_a_page(small_disk / "journal")
        filler = fill(small_disk)
        server.recorder.go_on.set()
    finally:
        _out, err = first.communicate(timeout=60)
    assert first.returncode != 0
    assert "Traceback" not in err, err
    assert third not in deliveries(server, unacknowledged=True), "its final dot went out"
    assert ledger_states(isolated)[third] == "reserved"  # its `sending` never got in

    filler.unlink()
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)


def test_a_read_only_disk_stops_the_send_before_anyone_and_names_it(
    isolated: Path, small_disk: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(6)
    server = make_smtp_server(pipelining=True, defer={emails[2]: 1})
    make_folder(isolated, server, emails, limits=LIMITS + "retries = 0\n")
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 3, err
    done = mount("mount", "-o", "remount,ro", str(small_disk))
    assert done.returncode == 0, done.stderr
    rerun = cli_process(isolated, "send", ISSUE, "--yes")
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 1, out  # 1: nothing was sent
    assert ".mailer/" in err and "Traceback" not in err, err  # names what it cannot write
    assert len(server.received) == 5

    assert mount("mount", "-o", "remount,rw", str(small_disk)).returncode == 0
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)


def run_bounded(folder: Path, *args: str, limit: float) -> tuple[int, str, float]:
    """Run the CLI; return its exit code, stderr and seconds taken; fail if it outlives limit."""
    started = time.monotonic()
    process = cli_process(folder, *args)
    try:
        _out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"`mailer {' '.join(args)}` still running after {limit} s: it hangs")
    return process.returncode, err, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize(
    ("trickle", "said"),
    [
        ("greeting", "the connection, TLS and login took longer than 4 s"),
        ("MAIL", "the connection dropped 4 times in a row"),
    ],
    ids=["greeting", "MAIL"],
)
def test_a_trickling_server_cannot_hold_the_send(
    isolated: Path,
    trickling_server: Callable[[Trickle], TricklingServer],
    trickle: Trickle,
    said: str,
) -> None:
    # One byte every 0.3 s, never a whole reply; timeout = 1 bounds each reply (MAIL), and
    # four times that the handshake (greeting), however many bytes keep arriving.
    server = trickling_server(trickle)
    emails = addresses(3)
    make_folder(isolated, server, emails, limits=LIMITS, timeout=1)
    code, err, took = run_bounded(isolated, "send", ISSUE, "--yes", limit=30)
    assert code == 4, err
    assert f"127.0.0.1:{server.port}: " in err and said in err
    assert "Traceback" not in err
    assert took < 12, f"took {took:.1f} s"
    assert ledger_states(isolated) == dict.fromkeys(emails, "pending")


def test_sigterm_finishes_what_is_in_flight_summarises_and_exits_143(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(30)
    server = make_smtp_server(pipelining=True, data_delay=0.05)
    make_folder(isolated, server, emails, limits=LIMITS)
    first = cli_process(isolated, "send", ISSUE, "--yes")
    try:
        assert wait_until(lambda: len(server.received) >= 3, timeout=30)
        first.send_signal(signal.SIGTERM)
    finally:
        out, err = first.communicate(timeout=60)
    assert len(server.received) < len(emails), "signalled too late"
    log = (isolated / ".mailer" / "log").read_text(encoding="utf-8").splitlines()
    assert first.returncode == 143, err
    assert f"{STEM}: sent " in out
    assert log[-1].endswith("ended with exit code 143"), log[-1]
    assert "unknown" not in ledger_states(isolated).values()

    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server, unacknowledged=True) == dict.fromkeys(emails, 1)


def test_the_filler_really_fills(small_disk: Path) -> None:
    # The disk tests mean nothing if the "full" disk still takes a journal line.
    filler = fill(small_disk)
    with pytest.raises(OSError) as caught:
        (small_disk / "journal").write_bytes(b'{"issue":"x"}\n')
    assert caught.value.errno == errno.ENOSPC
    filler.unlink()
