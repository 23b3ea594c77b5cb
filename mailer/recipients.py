"""The recipients file: a CSV as people really export it, read in one streaming pass."""

from __future__ import annotations

import contextlib
import csv
import functools
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from mailer.csvfile import (
    DELIMITERS,
    SHOWN_DELIMITERS,
    CsvFile,
    normalise_column,
    sniff_delimiter,
)
from mailer.errors import Problem, RecipientsError

__all__ = [
    "DELIMITERS",
    "Recipient",
    "RecipientScan",
    "Status",
    "address_key",
    "append_unsubscribed",
    "iter_recipients",
    "load_unsubscribed",
    "normalise_column",
    "scan_recipients",
    "sniff_delimiter",
    "validate_address",
]

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
_LOCAL_BAD = re.compile(r'[^!-~]|[<>(),;:"\[\]\\]')  # ASCII printable, no space or specials
_SEPARATORS = re.compile(r"[,;\s]+")

Status = Literal["sendable", "duplicate", "unsubscribed", "invalid"]


@dataclass(frozen=True)
class Recipient:
    """One sendable row of the recipients file."""

    email: str
    key: str
    fields: Mapping[str, str] = field(hash=False)
    line: int


@dataclass
class RecipientScan:
    """What one pass over the recipients file found."""

    path: Path
    columns: list[str]
    valid: int = 0
    duplicates: int = 0
    unsubscribed: int = 0
    problems: list[Problem] = field(default_factory=list)

    def check(self) -> None:
        """Raise RecipientsError listing every invalid row, if there is any."""
        if self.problems:
            count = len(self.problems)
            raise RecipientsError(
                f"{self.path}: {count} problem(s); fix them and run again", self.problems
            )


def validate_address(text: str) -> str | None:
    """Return why text is not exactly one sendable address, or None when it is."""
    address = text.strip()
    if not address:
        return "no address"
    if "<" in address or ">" in address:
        return "write the address alone, without a display name or <>"
    parts = [part for part in _SEPARATORS.split(address) if part]
    if len(parts) > 1:
        if sum("@" in part for part in parts) > 1:
            return "several addresses in one cell; put one address per row"
        return "contains a space, comma or semicolon"
    local, at, domain = address.rpartition("@")
    if not at:
        return 'no "@"'
    if not local:
        return 'nothing before "@"'
    if not domain:
        return 'nothing after "@"'
    return _local_problem(local) or _domain_problem(local, domain)


def address_key(address: str) -> str:
    """Return an address's identity: lower case, the domain in its IDNA (xn--) form.

    bob@bücher.de and BOB@xn--bcher-kva.de are one mailbox on the wire, so one recipient,
    and unsubscribing either form stops both.
    """
    local, _at, domain = unicodedata.normalize("NFC", address.strip()).rpartition("@")
    with contextlib.suppress(UnicodeError):  # an invalid domain keeps its form; it is reported
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}".lower()


def _local_problem(local: str) -> str | None:
    if len(local) > 64:
        return "the part before @ is longer than 64 characters (RFC 5321)"
    bad = _LOCAL_BAD.search(local)
    if bad:
        return f"the part before @ may not contain {bad.group()!r}"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before @ may not start or end with a dot or have two dots in a row"
    return None


def _domain_problem(local: str, domain: str) -> str | None:
    problem, length = _check_domain(domain)
    if problem is None and len(local) + 1 + length > 254:
        return "longer than 254 characters (RFC 5321)"
    return problem


@functools.lru_cache(maxsize=4096)
def _check_domain(domain: str) -> tuple[str | None, int]:
    """Return why the domain is invalid (or None) and its ASCII length; lists share domains."""
    try:
        # The stdlib codec (IDNA 2003) turns bücher.de into xn--bcher-kva.de; labels checked below.
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return f'"{domain}" is not a valid domain', 0
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        return f'the domain "{domain}" has no dot', 0
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return f'"{domain}" is not a valid domain', 0
    return None, len(ascii_domain)


def _classify(
    source: CsvFile, unsubscribed: AbstractSet[str]
) -> Iterator[tuple[Status, Recipient | None, list[Problem]]]:
    seen: set[str] = set()
    width = len(source.columns)
    for start, end, cells in source.rows():
        if not any(cell.strip() for cell in cells):
            continue
        problems = _row_problems(source, start, end, cells, width)
        if problems:
            yield "invalid", None, problems
            continue
        email = cells[source.email_index].strip()
        key = address_key(email)
        if key in seen:
            yield "duplicate", None, []
            continue
        seen.add(key)
        if key in unsubscribed:
            yield "unsubscribed", None, []
            continue
        values = {
            name: cell.strip() for name, cell in zip(source.columns, cells, strict=True) if name
        }
        yield "sendable", Recipient(email, key, MappingProxyType(values), start), []


def _row_problems(
    source: CsvFile, start: int, end: int, cells: list[str], width: int
) -> list[Problem]:
    def problem(where: str, message: str, hint: str = "") -> Problem:
        return Problem(source.shown, start, None, where, message, hint)

    if len(cells) != width:
        sep = SHOWN_DELIMITERS[source.delimiter]
        if len(cells) > width:
            hint = f"put quotes around a value that contains a {sep}, or remove the extra {sep}"
        else:
            hint = f"add the missing values (an empty value still needs its {sep})"
        return [problem("", f"{len(cells)} value(s), but the header has {width} columns", hint)]
    found: list[Problem] = []
    for name, raw, cell in zip(source.columns, source.raw_columns, cells, strict=True):
        if "\r" in cell or "\n" in cell:
            rest = f" (the row goes on to line {end})" if end > start else ""
            found.append(
                problem(raw, f"line break inside the value{rest}", "check for an unclosed quote")
            )
        elif "\x00" in cell:
            found.append(problem(raw, "NUL byte in the value", "re-export the file as CSV UTF-8"))
        elif name == "email" and (reason := validate_address(cell)):
            found.append(problem(raw, f'invalid address "{cell.strip()[:80]}": {reason}'))
    return found


def scan_recipients(
    path: Path, unsubscribed: AbstractSet[str] = frozenset(), *, encoding: str = "utf-8-sig"
) -> RecipientScan:
    """Count the recipients and collect every invalid row; raise RecipientsError for the file."""
    source = CsvFile(path, encoding)
    try:
        scan = RecipientScan(path, list(source.columns))
        for status, _recipient, problems in _classify(source, unsubscribed):
            if status == "sendable":
                scan.valid += 1
            elif status == "duplicate":
                scan.duplicates += 1
            elif status == "unsubscribed":
                scan.unsubscribed += 1
            scan.problems.extend(problems)
        return scan
    finally:
        source.close()


def iter_recipients(
    path: Path, unsubscribed: AbstractSet[str] = frozenset(), *, encoding: str = "utf-8-sig"
) -> Iterator[Recipient]:
    """Yield each sendable recipient once, in file order, skipping invalid and unsubscribed rows."""
    source = CsvFile(path, encoding)
    try:
        for _status, recipient, _problems in _classify(source, unsubscribed):
            if recipient is not None:
                yield recipient
    finally:
        source.close()


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
                    for part in _SEPARATORS.split(cells[source.email_index])
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
