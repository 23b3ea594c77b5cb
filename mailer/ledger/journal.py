"""The journal: an append-only file of every state a delivery reached, beside the ledger.

The ledger is a SQLite file that a sync tool, a restore from an old backup or a lost `-wal`
file can set back in time. The journal is written before each ledger change (one JSON line
per change, with the same fsync points as the ledger), so at open the ledger is brought
forward from it: nobody the journal says may have the issue can look pending again.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailer.errors import LedgerError


@dataclass(frozen=True)
class Entry:
    """One change: a delivery's new state, or (state "started") an issue's content hash."""

    issue: str
    state: str
    at: str
    key: str = ""
    email: str = ""
    message_id: str = ""
    code: int | None = None
    text: str | None = None
    boot: str | None = None  # for "reserved": the boot of the run that reserved it
    content_hash: str = ""  # for "started"

    def line(self) -> bytes:
        """Return the entry as one line of JSON, without its empty fields."""
        fields: dict[str, object] = {"issue": self.issue, "state": self.state, "at": self.at}
        for name in _OPTIONAL:  # by hand: dataclasses.asdict deep-copies, 0.2 ms an entry
            value = getattr(self, name)
            if value not in ("", None):
                fields[name] = value
        return _ENCODER.encode(fields).encode() + b"\n"


_OPTIONAL = ("key", "email", "message_id", "code", "text", "boot", "content_hash")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class Journal:
    """The journal file, opened for appending (each handle its own descriptor)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: int | None = None
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise LedgerError(f"{path}: cannot open the send journal ({err.strerror})") from err
        if self.size() == 0:
            # Its first line names this journal: a ledger knows which journal it was current
            # with, so one restored or rewritten is never read as the same file.
            self.append([Entry("", "journal", "", content_hash=uuid.uuid4().hex)], durable=True)
        self.id = self._first_id()

    def _first_id(self) -> str:
        with open(self.path, "rb") as source:
            first = source.readline()
        try:
            entry = Entry(**json.loads(first))
        except (ValueError, TypeError):
            return ""
        return entry.content_hash if entry.state == "journal" else ""

    def _read_fd(self) -> int:
        if self._reader is None:
            self._reader = os.open(self.path, os.O_RDONLY)
        return self._reader

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)
        if self._reader is not None:
            os.close(self._reader)

    def append(self, entries: list[Entry], *, durable: bool) -> int:
        """Append entries in one write; with durable, fsync. Return the byte offset they end at.

        The ledger keeps that offset on each row it changes (jpos), so a replay applies to a
        row only what came after its last change: nothing twice.
        """
        data = b"".join(entry.line() for entry in entries)
        try:
            # A write cut short (a full disk) leaves half a line: start on a fresh one, so the
            # torn line stays alone and is skipped when read.
            end = os.fstat(self._fd).st_size
            if end and os.pread(self._read_fd(), 1, end - 1) != b"\n":
                data = b"\n" + data
            written = os.write(self._fd, data)
            if written != len(data):  # a full disk takes part of a write
                raise OSError(28, "No space left on device")
            if durable:
                os.fsync(self._fd)
            # O_APPEND put this descriptor at the end of the file, then after our write.
            return os.lseek(self._fd, 0, os.SEEK_CUR)
        except OSError as err:
            raise LedgerError(
                f"{self.path}: cannot write the send journal ({err.strerror}); nothing more "
                "is sent; free some space, then run the same command again"
            ) from err

    def sync(self) -> None:
        """Make what was appended so far durable (fsync)."""
        try:
            os.fsync(self._fd)
        except OSError as err:
            raise LedgerError(
                f"{self.path}: cannot write the send journal ({err.strerror}); nothing more "
                "is sent; free some space, then run the same command again"
            ) from err

    def size(self) -> int:
        """Return the file's length in bytes."""
        return os.fstat(self._fd).st_size

    def read(self, offset: int = 0, end: int | None = None) -> Iterator[tuple[int, Entry]]:
        """Yield (the offset it ends at, entry) from offset to end.

        A torn line (a write cut short by a crash or a full disk) never reached the ledger,
        whose change comes after it: it is skipped.
        """
        with open(self.path, "rb") as source:
            source.seek(offset)
            position = offset
            for line in source:
                position += len(line)
                if end is not None and position > end:
                    return
                try:
                    entry = Entry(**json.loads(line))
                except (ValueError, TypeError):
                    continue
                if entry.state != "journal":
                    yield position, entry
