"""The recipients file: a CSV as people really export it, read in one streaming pass."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, NamedTuple

from mailer.addresses import address_key, validate_address
from mailer.errors import Problem, RecipientsError
from mailer.recipients.workbook import ListFile, open_list
from mailer.values import cell_problem

Status = Literal["sendable", "duplicate", "unsubscribed", "invalid"]


@dataclass(frozen=True)
class Recipient:
    """One sendable row of the recipients file."""

    email: str
    key: str
    fields: Mapping[str, str] = field(hash=False)
    line: int


LISTED = 20  # duplicates, and empty cells per column, shown by name; the rest are counted


@dataclass
class EmptyCells:
    """The sendable rows whose cell in one column is empty: how many, and the first lines."""

    column: str  # as the header writes it
    count: int = 0
    lines: list[int] = field(default_factory=list)


@dataclass
class RecipientScan:
    """What one pass over the recipients file found."""

    path: Path
    columns: list[str]
    valid: int = 0
    duplicates: int = 0
    unsubscribed: int = 0
    problems: list[Problem] = field(default_factory=list)
    duplicate_rows: list[Problem] = field(default_factory=list)  # the first LISTED
    empty_cells: dict[str, EmptyCells] = field(default_factory=dict)  # of the needed columns

    def check(self) -> None:
        """Raise RecipientsError listing every invalid row, if there is any."""
        if self.problems:
            count = len(self.problems)
            raise RecipientsError(
                f"{self.path}: {count} problem(s); fix them and run again", self.problems
            )

    def duplicate_warnings(self) -> list[str]:
        """Return the duplicates as warnings: each with both its lines, then how many in all."""
        if not self.duplicates:
            return []
        listed = len(self.duplicate_rows)
        more = f" (the first {listed} listed)" if self.duplicates > listed else ""
        return [
            *(str(duplicate) for duplicate in self.duplicate_rows),
            f"{self.path}: {self.duplicates} duplicate row(s) skipped{more}: each address "
            "gets the issue once, as its first row says; delete the later rows to silence this",
        ]


class _Row(NamedTuple):
    status: Status
    line: int
    recipient: Recipient | None = None
    problems: Sequence[Problem] = ()
    email: str = ""
    first: int = 0  # for a duplicate: the line it repeats


def _classify(source: ListFile, unsubscribed: AbstractSet[str]) -> Iterator[_Row]:
    seen: dict[str, int] = {}
    width = len(source.columns)
    for start, end, cells in source.rows():
        if not any(cell.strip() for cell in cells):
            continue
        problems = _row_problems(source, start, end, cells, width)
        if problems:
            yield _Row("invalid", start, problems=problems)
            continue
        email = cells[source.email_index].strip()
        key = address_key(email)
        first = seen.setdefault(key, start)
        if first != start:
            yield _Row("duplicate", start, email=email, first=first)
            continue
        if key in unsubscribed:
            yield _Row("unsubscribed", start)
            continue
        values = {
            name: cell.strip() for name, cell in zip(source.columns, cells, strict=True) if name
        }
        yield _Row("sendable", start, Recipient(email, key, MappingProxyType(values), start))


def _row_problems(
    source: ListFile, start: int, end: int, cells: list[str], width: int
) -> list[Problem]:
    def problem(where: str, message: str, hint: str = "") -> Problem:
        return Problem(source.shown, start, None, where, message, hint)

    if len(cells) != width:
        return [problem("", *source.width_problem(len(cells), width))]
    found: list[Problem] = []
    joined = "".join(cells)  # most rows are clean: check them in one go
    clean = "=?" not in joined and cell_problem(joined) is None
    for index, (name, raw, cell) in enumerate(
        zip(source.columns, source.raw_columns, cells, strict=True)
    ):
        where = raw.strip() or f"column {index + 1}"
        if "\r" in cell or "\n" in cell:
            rest = f" (the row goes on to line {end})" if end > start else ""
            found.append(
                problem(where, f"line break inside the value{rest}", "make the value one line")
            )
        elif "\x00" in cell:  # what a UTF-16 file read as UTF-8 looks like
            found.append(problem(where, "NUL byte in the value", "re-export the file as CSV UTF-8"))
        elif not clean and (reason := cell_problem(cell.strip())):
            found.append(problem(where, reason))
        elif name == "email" and (reason := validate_address(cell)):
            found.append(problem(where, f'invalid address "{cell.strip()[:80]}": {reason}'))
    return found


def scan_recipients(
    path: Path,
    unsubscribed: AbstractSet[str] = frozenset(),
    *,
    encoding: str = "utf-8-sig",
    needed: Collection[str] = (),
) -> RecipientScan:
    """Count the recipients and collect every invalid row; raise RecipientsError for the file.

    needed: columns that must not be empty (placeholders without a default use them).
    """
    source = open_list(path, encoding)
    try:
        scan = RecipientScan(path, list(source.columns))
        raw = dict(zip(source.columns, source.raw_columns, strict=True))
        watched = [name for name in needed if name in raw]
        for row in _classify(source, unsubscribed):
            if row.recipient is not None:
                scan.valid += 1
                for name in watched:
                    if not row.recipient.fields.get(name):
                        _note_empty(scan, name, raw[name].strip(), row.line)
            elif row.status == "duplicate":
                scan.duplicates += 1
                if len(scan.duplicate_rows) < LISTED:
                    message = f"duplicate of line {row.first} ({row.email})"
                    scan.duplicate_rows.append(Problem(source.shown, row.line, None, "", message))
            elif row.status == "unsubscribed":
                scan.unsubscribed += 1
            scan.problems.extend(row.problems)
        return scan
    finally:
        source.close()


def _note_empty(scan: RecipientScan, name: str, shown: str, line: int) -> None:
    empty = scan.empty_cells.setdefault(name, EmptyCells(shown))
    empty.count += 1
    if len(empty.lines) < LISTED:
        empty.lines.append(line)


def iter_recipients(
    path: Path, unsubscribed: AbstractSet[str] = frozenset(), *, encoding: str = "utf-8-sig"
) -> Iterator[Recipient]:
    """Yield each sendable recipient once, in file order, skipping invalid and unsubscribed rows."""
    source = open_list(path, encoding)
    try:
        for row in _classify(source, unsubscribed):
            if row.recipient is not None:
                yield row.recipient
    finally:
        source.close()
