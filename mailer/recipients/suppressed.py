"""suppressed.csv: who is not sent to and why, one row per event, the last row per address wins.

    email,action,reason,issue,at,source,detail
    kim@example.org,suppressed,hard-bounce,2023-10-20-ld-newsletter,2023-10-21T08:00:00+00:00,...

action is `suppressed` or `reinstated` (`mailer unsubscribe --undo`); reason is one of REASONS;
detail is the server's words, or the note of a reinstatement. unsubscribed.csv stays the list
people edit by hand; this file is written by mailer, atomically (a new file renamed over the old),
and is a history: nothing is ever rewritten away. The queue file (.mailer/suppress-queue.csv)
holds rows in the same columns, without a header, while a send holds the folder lock; readers
take both, so a queued row counts at once.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from mailer.addresses import address_key
from mailer.errors import RecipientsError
from mailer.filelock import wait_lock

COLUMNS = ("email", "action", "reason", "issue", "at", "source", "detail")
REASONS = ("hard-bounce", "soft-bounce", "complaint", "unsubscribe", "refused", "reinstated")
Action = Literal["suppressed", "reinstated"]
_DETAIL_MAX = 300
_ACTIONS: dict[str, Action] = {"suppressed": "suppressed", "reinstated": "reinstated"}


@dataclass(frozen=True)
class Suppression:
    """One event in suppressed.csv."""

    email: str
    action: Action
    reason: str
    issue: str
    at: str
    source: str
    detail: str = ""

    @property
    def key(self) -> str:
        """Return the address's identity."""
        return address_key(self.email)

    def cells(self) -> list[str]:
        """Return the row as CSV cells, each one line (a server's text may have had several)."""
        values = asdict(self)
        return [_cell(str(values[name]), name == "detail") for name in COLUMNS]


def _cell(value: str, text: bool) -> str:
    value = " ".join(value.split())
    if text:
        value = value[:_DETAIL_MAX]
        # A server's words are anyone's words: keep a spreadsheet from running them (CWE-1236).
        if value[:1] in ("=", "+", "-", "@"):
            value = "'" + value
    return value


def read_suppressions(path: Path, *, header: bool = True) -> list[Suppression]:
    """Return the rows of suppressed.csv (or of the queue: no header); none when it is absent."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as err:
        raise RecipientsError(f"{path}: cannot read ({err}); restore it from a backup") from err
    if not header and text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a row cut short by a crash was never acknowledged
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Suppression] = []
    for number, cells in enumerate(reader, start=1):
        if header and number == 1:
            if [c.strip().lower() for c in cells[:2]] != ["email", "action"]:
                raise RecipientsError(
                    f"{path}:1: not a suppression list (its header should be "
                    f"{','.join(COLUMNS)}); move it aside, mailer writes this file itself"
                )
            continue
        if not cells or not "".join(cells).strip():
            continue
        cells = [*cells, *[""] * (len(COLUMNS) - len(cells))]
        email, action, reason, issue, at, source, detail = cells[: len(COLUMNS)]
        kind = _ACTIONS.get(action)
        if kind is None:
            raise RecipientsError(
                f'{path}:{number}: action "{action}": use suppressed or reinstated'
            )
        rows.append(Suppression(email, kind, reason, issue, at, source, detail))
    return rows


def suppressed_now(rows: Iterable[Suppression]) -> dict[str, Suppression]:
    """Return each address still suppressed, by key, with the row that suppressed it."""
    current: dict[str, Suppression] = {}
    for row in rows:
        if row.action == "suppressed":
            current.setdefault(row.key, row)
        else:
            current.pop(row.key, None)
    return current


def write_suppressions(path: Path, rows: Iterable[Suppression]) -> None:
    """Replace path with these rows, atomically: a reader sees the old file or the new."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(row.cells() for row in rows)
    replace_file(path, buffer.getvalue().encode("utf-8"))


def append_queued(path: Path, rows: Iterable[Suppression]) -> None:
    """Append rows to the queue in one write, durably, under the queue's own flock."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(row.cells() for row in rows)
    data = buffer.getvalue().encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked_queue(path) as fd:
            os.write(fd, data)
            os.fsync(fd)
    except OSError as err:
        raise RecipientsError(f"{path}: cannot write ({err.strerror}); check the disk") from err


@contextlib.contextmanager
def drained_queue(path: Path) -> Iterator[list[Suppression]]:
    """Yield the queued rows; when the block succeeds, the queue is gone with them.

    The queue's flock is held throughout, so a row appended meanwhile waits for the next drain
    instead of being removed unread.
    """
    if not path.exists():
        yield []
        return
    with _locked_queue(path):
        rows = read_suppressions(path, header=False)
        yield rows
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def _locked_queue(path: Path) -> Iterator[int]:
    """Open the queue for appending under an exclusive flock, on the file the path names now."""
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            wait_lock(fd)
            # Drained and unlinked while we waited: that inode is gone, open the new one.
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                yield fd
                return
        finally:
            os.close(fd)  # closing drops the flock


def replace_file(path: Path, data: bytes) -> None:
    """Write path atomically: a new file, fsynced, renamed over the old one."""
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        if os.name != "nt":  # Windows cannot open a folder to sync it (NTFS logs the rename)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself survives a power cut
            finally:
                os.close(directory)
    except OSError as err:
        raise RecipientsError(f"{path}: cannot write ({err.strerror}); check the disk") from err
