"""The folder lock, held and contested by real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailer.errors import LockedError
from mailer.ledger import folder_lock

REPO_DIR = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO_DIR)}

HOLD = """
import sys, time
from pathlib import Path
from mailer.ledger import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""

TRY = """
import sys
from pathlib import Path
from mailer.errors import LockedError
from mailer.ledger import folder_lock
try:
    with folder_lock(Path(sys.argv[1])):
        print("acquired")
except LockedError as err:
    print(err)
    sys.exit(err.exit_code)
"""


def run_try(folder: Path) -> subprocess.CompletedProcess[str]:
    """Try to take the lock from a fresh process and report what happened."""
    return subprocess.run(
        [sys.executable, "-c", TRY, str(folder)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def holder(isolated: Path) -> Iterator[subprocess.Popen[str]]:
    """Start a process that takes the lock and sleeps; kill it afterwards if still alive."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(isolated)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "locked\n"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=60)
    process.stdout.close()


def test_a_second_process_is_refused_until_the_holder_is_killed(
    isolated: Path, holder: subprocess.Popen[str]
) -> None:
    refused = run_try(isolated)
    assert refused.returncode == 75
    assert refused.stdout.strip() == (
        f"{isolated}: another send is already running (pid {holder.pid}); "
        "wait for it to finish, or check with `mailer status`"
    )
    with pytest.raises(LockedError, match=rf"\(pid {holder.pid}\)"), folder_lock(isolated):
        pass

    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=60) == -signal.SIGKILL
    after = run_try(isolated)
    assert (after.returncode, after.stdout) == (0, "acquired\n")


def test_the_lock_records_the_holder_and_is_released_on_exit(isolated: Path) -> None:
    lock_path = isolated / ".mailer" / "lock"
    with folder_lock(isolated):
        assert lock_path.read_text() == f"{os.getpid()}\n"
        assert run_try(isolated).returncode == 75
    assert lock_path.read_text() == ""
    assert run_try(isolated).stdout == "acquired\n"


def test_the_lock_is_released_when_the_block_raises(isolated: Path) -> None:
    with pytest.raises(RuntimeError), folder_lock(isolated):
        raise RuntimeError("boom")
    with folder_lock(isolated):
        pass


def test_a_nested_folder_is_created(isolated: Path) -> None:
    folder = isolated / "not" / "yet"
    with folder_lock(folder):
        assert (folder / ".mailer" / "lock").exists()


def test_a_holder_that_has_not_written_its_pid_yet_shows_unknown(isolated: Path) -> None:
    script = textwrap.dedent(
        """
        import fcntl, os, sys, time
        os.makedirs(sys.argv[1] + "/.mailer", exist_ok=True)
        fd = os.open(sys.argv[1] + "/.mailer/lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(isolated)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "locked\n"
        with pytest.raises(LockedError, match=r"\(pid unknown\)"), folder_lock(isolated):
            pass
    finally:
        process.kill()
        process.wait(timeout=60)
        if process.stdout is not None:
            process.stdout.close()
