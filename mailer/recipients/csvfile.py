"""A CSV file with an email column, read as people really export it: sniffed, decoded, checked."""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from mailer.errors import RecipientsError
from mailer.recipients.quotes import BrokenQuote, swallowing_quote, unreadable_quote

EMAIL_ALIASES = {"email_address", "e_mail", "e_mail_address", "mail", "mail_address"}
_SEP_LINE = re.compile(r"^sep=([,;\t|])\r?\n?$")
DELIMITERS = (",", ";", "\t")
SHOWN_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def normalise_column(name: str) -> str:
    """Return the column name as templates see it: `First Name` becomes `first_name`."""
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def sniff_delimiter(header: str) -> str:
    """Return the delimiter among , ; and tab that splits the header line into most columns."""
    counts = [len(next(csv.reader([header], delimiter=d), [])) for d in DELIMITERS]
    return DELIMITERS[counts.index(max(counts))]


def check_columns(
    shown: str, line: int, raw_columns: list[str], columns: list[str], separated: str
) -> None:
    """Check the header: no two columns alike, one email column (renaming an alias in columns).

    separated says how the file was split, for the message when no column is email.
    """
    seen: dict[str, str] = {}
    for raw, name in zip(raw_columns, columns, strict=True):
        if name and name in seen:
            raise RecipientsError(
                f'{shown}:{line}: columns "{seen[name]}" and "{raw}" are both "{name}" '
                "(case, spaces and hyphens do not count); rename or remove one"
            )
        seen[name] = raw
    if "email" in seen:
        return
    aliases = [name for name in columns if name in EMAIL_ALIASES]
    if len(aliases) == 1:
        # Outlook, Google and Mailchimp exports say "E-mail Address" or "Email Address":
        # that column is the address, and `recipient.email` in an issue means it.
        columns[columns.index(aliases[0])] = "email"
        return
    if len(raw_columns) == 1 and separated:
        raise RecipientsError(
            f"{shown}:{line}: no email column; found one column {raw_columns[0]!r} "
            "— is the file separated by something other than , ; or tab?"
        )
    found = ", ".join(f'"{raw}"' for raw in raw_columns)
    where = f" {separated}" if separated else ""
    raise RecipientsError(
        f"{shown}:{line}: no email column; found {found}{where}; name the address column email"
    )


class CsvFile:
    """An open CSV file with an email column: its header, and its rows with their line numbers."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.path = path
        self.shown = str(path)
        self.encoding = encoding
        self._file = self._open()
        try:
            self._read_header()
        except BaseException:
            self._file.close()
            raise

    def _open(self) -> TextIO:
        try:
            return open(self.path, encoding=self.encoding, newline="")
        except FileNotFoundError:
            raise RecipientsError(
                f"{self.shown}: no such file; copy recipients.example.csv to start one, "
                "or pass --recipients"
            ) from None
        except LookupError:
            raise RecipientsError(f"{self.shown}: unknown encoding {self.encoding!r}") from None
        except OSError as err:
            raise RecipientsError(f"{self.shown}: cannot read ({err.strerror})") from err

    def _read_header(self) -> None:
        self._skipped = 0
        header = ""
        declared = None
        for header in self._decoded(iter(self._file.readline, "")):
            # Excel writes "sep=;" above the header when asked to keep the separator.
            if declared is None and (found := _SEP_LINE.match(header)) and not self._skipped:
                declared = found.group(1)
                self._skipped += 1
                continue
            if header.strip():
                break
            self._skipped += 1
        if not header.strip():
            raise RecipientsError(
                f"{self.shown}: the file is empty; the first line must name an email column"
            )
        self.delimiter = declared or sniff_delimiter(header.rstrip("\r\n"))
        self.newline = "\r\n" if header.endswith("\r\n") else "\n"
        self.raw_columns: list[str] = []
        self._row_lines: list[str] = []  # the lines the row being read came from
        # strict: a quote closed in the middle of a value is an error, not glued on silently.
        self._reader = csv.reader(
            self._recorded(itertools.chain([header], self._decoded(self._file))),
            delimiter=self.delimiter,
            strict=True,
        )
        names = self._next_row(self._skipped + 1) or [""]
        self.raw_columns = names
        self.columns = [normalise_column(name) for name in names]
        self._check_columns(self._skipped + 1)
        self.email_index = self.columns.index("email")

    def _check_columns(self, line: int) -> None:
        separated = f"({SHOWN_DELIMITERS[self.delimiter]} separated)"
        check_columns(self.shown, line, self.raw_columns, self.columns, separated)

    def width_problem(self, count: int, width: int) -> tuple[str, str]:
        """Return what is wrong with a row of count values under a header of width, and hint."""
        sep = SHOWN_DELIMITERS[self.delimiter]
        if count > width:
            hint = f"put quotes around a value that contains a {sep}, or remove the extra {sep}"
        else:
            hint = f"add the missing values (an empty value still needs its {sep})"
        return f"{count} value(s), but the header has {width} columns", hint

    def _decoded(self, lines: Iterable[str]) -> Iterator[str]:
        try:
            yield from lines
        except UnicodeDecodeError as err:
            line = _first_undecodable_line(self.path, self.encoding)
            place = f"{self.shown}:{line}" if line else self.shown
            raise RecipientsError(
                f"{place}: not {self.encoding.removesuffix('-sig').upper()} text ({err.reason}); "
                "save it as UTF-8 or pass --encoding"
            ) from err

    def _recorded(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            self._row_lines.append(line)
            yield line

    def rows(self) -> Iterator[tuple[int, int, list[str]]]:
        """Yield (first line, last line, cells) for every row after the header.

        Raise RecipientsError where a quote breaks the file's structure: the rows after it
        cannot be told apart, so they can be neither trusted nor skipped.
        """
        while True:
            start = self._skipped + self._reader.line_num + 1
            cells = self._next_row(start)
            if cells is None:
                return
            yield start, self._skipped + self._reader.line_num, cells

    def _next_row(self, start: int) -> list[str] | None:
        self._row_lines.clear()
        try:
            cells = next(self._reader)
        except StopIteration:
            return None
        except csv.Error as err:
            at_end = "field limit" not in str(err)  # the csv module's own words
            broken = unreadable_quote(self._row_lines, self.delimiter, start, at_end=at_end)
            if broken is None:
                raise RecipientsError(
                    f"{self.shown}:{start}: cannot read this row ({err}); re-export the file as CSV"
                ) from err
            raise self._structure_error(start, broken) from err
        if len(self._row_lines) > 1:
            broken = swallowing_quote(self._row_lines, cells, self.delimiter, start)
            if broken is not None:
                raise self._structure_error(start, broken)
        return cells

    def _structure_error(self, start: int, broken: BrokenQuote) -> RecipientsError:
        names = self.raw_columns  # empty while the header is read
        name = names[broken.field] if broken.field < len(names) else ""
        where = f"{name}: " if name.strip() else ""
        return RecipientsError(
            f"{self.shown}:{start + broken.line}:{broken.column}: {where}{broken.message}. "
            "A broken quote hides the rows after it, so --skip-invalid does not skip it: "
            "fix it and run again"
        )

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    """Return the first line that does not decode (the decoder works in chunks, not lines)."""
    with open(path, "rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return None
