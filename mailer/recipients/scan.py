"""The recipients file: a CSV as people really export it, read in one streaming pass."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from mailer.addresses import address_key, validate_address
from mailer.errors import Problem, RecipientsError
from mailer.recipients.csvfile import SHOWN_DELIMITERS, CsvFile

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
