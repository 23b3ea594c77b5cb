"""Quotes that break a CSV file's structure: where they open, and what went wrong after.

A quote left open (or closed in the wrong place) makes the CSV reader take the following lines
as part of one value: the rows after it vanish into a cell. Such a file cannot be read
row by row any more, so it is a problem for the whole file, never a row to skip.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass

SHOWN_ROW = 60  # characters of a swallowed row to quote in a message


_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


@dataclass(frozen=True)
class Quoted:
    """One quoted value in the physical lines of a row (line indexes count from 0)."""

    field: int
    line: int
    column: int  # of the opening quote, from 1
    closed_line: int | None  # None: still open where the lines end
    after: str  # the character after the closing quote when it is not a separator or line end


@dataclass(frozen=True)
class BrokenQuote:
    """Where the quote that broke the file opened (as indexes into the row), and what to say."""

    field: int
    line: int
    column: int
    message: str


def quoted_values(lines: Sequence[str], delimiter: str) -> list[Quoted]:
    """Return the quoted values of one CSV row, read as the csv module reads them."""
    found: list[Quoted] = []
    field, at_start = 0, True
    current: tuple[int, int, int] | None = None  # field, line, column of an open quote
    for index, line in enumerate(lines):
        pos = 0
        while pos < len(line):
            char = line[pos]
            if current is not None:
                if char == '"':
                    if line.startswith('"', pos + 1):  # "" is a quote inside the value
                        pos += 2
                        continue
                    following = line[pos + 1 : pos + 2]
                    after = "" if following in ("", "\r", "\n", delimiter) else following
                    found.append(Quoted(*current, index, after))
                    current = None
            elif char == '"' and at_start:
                current = (field, index, pos + 1)
            elif char == delimiter:
                field += 1
                at_start = True
                pos += 1
                continue
            at_start = False
            pos += 1
    if current is not None:
        found.append(Quoted(*current, None, ""))
    return found


def unreadable_quote(
    lines: Sequence[str], delimiter: str, first: int, *, at_end: bool
) -> BrokenQuote | None:
    """Describe the quote the csv module stopped at (the row's lines start at line first).

    at_end: the reader reached the end of the file (rather than its limit on a value's size).
    """
    quotes = quoted_values(lines, delimiter)
    if not quotes:
        return None
    quote = quotes[-1]
    opened, last = first + quote.line, first + len(lines) - 1
    fix = "close it where the value ends, or remove it"
    if quote.closed_line is None and not at_end:
        message = (
            f"this quote is not closed within {csv.field_size_limit()} characters, so lines "
            f"{opened} to {last} and on read as one value; {fix}"
        )
    elif quote.closed_line is None:
        span = f", so lines {opened} to {last} (the end of the file) read as one value"
        message = f"this quote is never closed{span if last > opened else ''}; {fix}"
    elif quote.closed_line == quote.line:
        message = (
            f'text after the closing quote ("{quote.after}"); put the whole value in quotes '
            'and write a quote inside it as two ("")'
        )
    else:
        closed = first + quote.closed_line
        message = (
            f'this quote is closed only on line {closed} (followed by "{quote.after}"), so '
            f"lines {opened} to {closed} read as one value; {fix}"
        )
    return BrokenQuote(quote.field, quote.line, quote.column, message)


def swallowing_quote(
    lines: Sequence[str], cells: Sequence[str], delimiter: str, first: int
) -> BrokenQuote | None:
    """Describe a quoted value that took in lines that look like rows of their own, or None.

    A value may hold a line break (an address typed in two lines); one whose later lines
    hold a separator or an email address is far more likely rows swallowed by a quote left
    open.
    """
    for field, cell in enumerate(cells):
        parts = cell.splitlines()
        row_like = [
            k for k, text in enumerate(parts) if k and (delimiter in text or _ADDRESS.search(text))
        ]
        if not row_like:
            continue
        spanning = (
            q
            for q in quoted_values(lines, delimiter)
            if q.field == field and q.closed_line is not None and q.closed_line > q.line
        )
        quote = next(spanning, None)
        if quote is None or quote.closed_line is None:
            continue
        opened, closed = first + quote.line, first + quote.closed_line
        shown = parts[row_like[0]].strip()[:SHOWN_ROW]
        message = (
            f"this quoted value runs on to line {closed} and takes in what look like rows "
            f'(line {opened + row_like[0]}: "{shown}"); close the quote where the value ends, '
            "or remove it"
        )
        return BrokenQuote(field, quote.line, quote.column, message)
    return None
