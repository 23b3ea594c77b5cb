"""Whole-file locks that the OS drops when the holder dies: flock on Unix, msvcrt on Windows.

The one place that knows the platform's locking call, so that every module that locks a file
(the send lock, the suppression queue, the inbox's run lock) imports on Windows too.

On Windows, msvcrt.locking locks a byte range, and a locked range cannot even be read by
others; so the lock is one byte far beyond anything written (LOCK_OFFSET): the pid written at
the start of a lock file stays readable for the "another send is running (pid ...)" message.
Windows drops the locks of a process when it ends, as Unix drops an flock.
"""

from __future__ import annotations

import os
import sys
import time

LOCK_OFFSET = 1 << 30  # far past any content; locking past the end of a file is allowed
_RETRY_SECONDS = 0.05

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:  # EACCES or EDEADLOCK: another process holds the byte
            return False
        return True

    def _wait_lock(fd: int) -> None:
        # LK_LOCK gives up after 10 tries; a long send holds the lock for longer.
        while not _try_lock(fd):
            time.sleep(_RETRY_SECONDS)

    def _unlock(fd: int) -> None:
        os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _wait_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file fd; return False at once if another has it."""
    return _try_lock(fd)


def wait_lock(fd: int) -> None:
    """Take an exclusive lock on the open file fd, waiting for as long as another holds it."""
    _wait_lock(fd)


def unlock(fd: int) -> None:
    """Release the lock on fd (closing fd releases it too)."""
    _unlock(fd)


def read_at(fd: int, size: int, offset: int) -> bytes:
    """Read up to size bytes at offset (os.pread is Unix-only)."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


def write_at(fd: int, data: bytes, offset: int) -> None:
    """Write data at offset (os.pwrite is Unix-only)."""
    if hasattr(os, "pwrite"):
        os.pwrite(fd, data, offset)
        return
    os.lseek(fd, offset, os.SEEK_SET)
    os.write(fd, data)
