"""One send at a time per newsletter folder: an flock on its lock file."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailer.errors import LockedError
from mailer.folder import Newsletter

_held: set[Path] = set()  # folders this process has locked: taking it again is a no-op


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's send lock for the block; raise LockedError if another process has it.

    Re-entrant within a process: send-due holds it for its whole run, and each send inside
    takes it again.
    """
    key = folder.resolve()
    if key in _held:
        yield
        return
    _held.add(key)
    try:
        with _flock(folder):
            yield
    finally:
        _held.discard(key)


@contextmanager
def _flock(folder: Path) -> Iterator[None]:
    path = Newsletter(folder).lock_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # flock, not a pid file: the kernel drops the lock when the holder dies, even on SIGKILL,
    # so a crash never leaves a stale lock behind. The pid inside is only for the message.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(
                f"{folder}: another send is already running (pid {_holder(fd)}); "
                "wait for it to finish, or check with `mailer status`"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            # Never unlink the file: a process waiting on the old inode would lock a ghost.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """Return the pid the holder wrote, or "unknown" while it has not written it yet."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"
