"""unsubscribed.csv: the addresses never to send to again."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from mailer.addresses import SEPARATORS, address_key, validate_address
from mailer.errors import Problem, RecipientsError
from mailer.folder import Newsletter
from mailer.recipients.csvfile import CsvFile
from mailer.recipients.suppressed import read_suppressions, replace_file, suppressed_now


def load_unsubscribed(path: Path) -> set[str]:
    """Return the address keys in unsubscribed.csv (none when it does not exist)."""
    if not path.exists():
        return set()
    source = CsvFile(path, "utf-8-sig")
    try:
        keys: set[str] = set()
        for _start, _end, cells in source.rows():
            if len(cells) > source.email_index:
                # Over-match on purpose: a cell with two addresses suppresses both.
                keys.update(
                    address_key(part)
                    for part in SEPARATORS.split(cells[source.email_index])
                    if part
                )
        return keys
    finally:
        source.close()


def append_unsubscribed(path: Path, addresses: Iterable[str], now: datetime) -> list[str]:
    """Append the addresses not yet in path (creating it with a header); return those added."""
    wanted = [address.strip() for address in addresses]
    problems = [
        Problem(f'"{address}"', None, None, "", f"not a valid address: {reason}")
        for address in wanted
        if (reason := validate_address(address))
    ]
    if problems:
        raise RecipientsError(f"{len(problems)} invalid address(es); nothing was added", problems)
    known = load_unsubscribed(path)
    added: list[str] = []
    for address in wanted:
        if address_key(address) not in known:
            known.add(address_key(address))
            added.append(address)
    if not added:
        return added
    columns, delimiter, newline = ["email", "unsubscribed_at"], ",", "\n"
    if path.exists() and path.stat().st_size:
        # Follow a hand-edited file's layout, or the new row lands in the wrong column.
        source = CsvFile(path, "utf-8-sig")
        columns, delimiter, newline = source.columns, source.delimiter, source.newline
        source.close()
    stamp = now.astimezone(UTC).isoformat(timespec="seconds")
    try:
        with open(path, "a", encoding="utf-8", newline="") as out:
            if out.tell() == 0:
                out.write(delimiter.join(columns) + newline)
            elif not _ends_with_newline(path):
                out.write(newline)
            writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
            for address in added:
                values = {"email": address, "unsubscribed_at": stamp}
                writer.writerow([values.get(name, "") for name in columns])
            out.flush()
            os.fsync(out.fileno())
    except OSError as err:
        raise RecipientsError(f"{path}: cannot write ({err.strerror})") from err
    return added


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as raw:
        raw.seek(-1, os.SEEK_END)
        return raw.read(1) in (b"\n", b"\r")


def load_suppressed(newsletter: Newsletter) -> set[str]:
    """Return every address key not to send to: unsubscribed.csv, suppressed.csv, the queue."""
    # The queue first: a drain moves its rows into suppressed.csv before removing it.
    queued = read_suppressions(newsletter.suppress_queue_path, header=False)
    rows = read_suppressions(newsletter.suppressed_path) + queued
    return load_unsubscribed(newsletter.unsubscribed_path) | suppressed_now(rows).keys()


def remove_unsubscribed(path: Path, keys: set[str]) -> list[str]:
    """Take the rows of these address keys out of unsubscribed.csv; return their addresses.

    Every other line stays byte for byte; the file is replaced atomically.
    """
    if not path.exists():
        return []
    source = CsvFile(path, "utf-8-sig")
    drop: set[int] = set()
    removed: list[str] = []
    try:
        for start, end, cells in source.rows():
            cell = cells[source.email_index] if len(cells) > source.email_index else ""
            found = [p for p in SEPARATORS.split(cell) if p and address_key(p) in keys]
            if found:
                drop.update(range(start, end + 1))
                removed += found
    finally:
        source.close()
    if removed:
        lines = path.read_bytes().splitlines(keepends=True)
        kept = b"".join(line for number, line in enumerate(lines, 1) if number not in drop)
        replace_file(path, kept)
    return removed
