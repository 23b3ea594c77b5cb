"""Windows, simulated: no fcntl, no os.pread/pwrite, and msvcrt's byte-range locks.

The simulation runs in a fresh process: `fcntl` cannot be imported, os.pread and os.pwrite
are gone, and mailer.filelock is imported as on Windows (sys.platform is "win32" while it
loads) with an msvcrt whose locking() takes a real byte-range lock (POSIX lockf, which like
Windows' LockFileEx is per process and dropped when the process dies).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO_DIR

ENV = {**os.environ, "PYTHONPATH": str(REPO_DIR)}
ISSUE = "issues/2023-10-20-ld-newsletter.yaml"

WINDOWS = textwrap.dedent(
    """
    import errno, fcntl as _posix, os, sys, types

    msvcrt = types.ModuleType("msvcrt")
    msvcrt.LK_UNLCK, msvcrt.LK_LOCK, msvcrt.LK_NBLCK = 0, 1, 2
    msvcrt.calls = []

    def locking(fd, mode, nbytes):
        start = os.lseek(fd, 0, os.SEEK_CUR)
        msvcrt.calls.append((mode, start))
        if mode == msvcrt.LK_UNLCK:
            _posix.lockf(fd, _posix.LOCK_UN, nbytes, start)
            return
        try:
            _posix.lockf(fd, _posix.LOCK_EX | _posix.LOCK_NB, nbytes, start)
        except OSError:
            raise PermissionError(errno.EACCES, "Permission denied") from None

    msvcrt.locking = locking
    sys.modules["fcntl"] = None  # import fcntl now raises ImportError, as on Windows
    del os.pread, os.pwrite
    # Only mailer.filelock sees Windows: the standard library (subprocess looks for msvcrt)
    # must go on as on this machine.
    platform, sys.platform = sys.platform, "win32"
    sys.modules["msvcrt"] = msvcrt
    import mailer.filelock
    sys.platform = platform
    del sys.modules["msvcrt"]
    assert mailer.filelock.msvcrt is msvcrt
    """
)

HOLD = WINDOWS + textwrap.dedent(
    """
    import time
    from pathlib import Path
    from mailer.ledger import folder_lock
    with folder_lock(Path(sys.argv[1])):
        assert msvcrt.calls and msvcrt.calls[-1][0] == msvcrt.LK_NBLCK, msvcrt.calls
        print("locked", flush=True)
        time.sleep(120)
    """
)

TRY = WINDOWS + textwrap.dedent(
    """
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
)

DRY_RUN = WINDOWS + textwrap.dedent(
    """
    from mailer.cli import entry
    sys.argv = ["mailer", "--dir", sys.argv[1], "send", sys.argv[2], "--dry-run"]
    entry()
    """
)


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**ENV, "MAILER_UNSUBSCRIBE_SECRET": "s" * 40},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_send_lock_works_with_msvcrt_and_shows_the_holders_pid(isolated: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(isolated)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        refused = run(TRY, str(isolated))
        assert refused.returncode == 75, refused.stderr
        assert f"(pid {holder.pid})" in refused.stdout  # the pid stays readable beside the lock
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        after = run(TRY, str(isolated))
        assert (after.returncode, after.stdout) == (0, "acquired\n"), after.stderr
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=60)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_dry_run_works_without_fcntl(newsletter: Path) -> None:
    shutil.copy(REPO_DIR / ISSUE, newsletter / ISSUE)
    shutil.copy(REPO_DIR / "recipients.example.csv", newsletter / "recipients.csv")
    result = run(DRY_RUN, str(newsletter), ISSUE)
    assert result.returncode == 0, result.stderr
    written = list((newsletter / "build" / "outbox").rglob("*.eml"))
    assert len(written) >= 3
