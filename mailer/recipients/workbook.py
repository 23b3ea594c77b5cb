"""A list kept in Excel: the first sheet of an .xlsx workbook, read as the CSV rules read a file.

openpyxl in read-only mode streams the sheet's XML row by row, as the CSV reader streams
lines: a list of 100,000 rows is never all in memory. Row numbers are the ones Excel shows
at the left, so `staff.xlsx:58` is row 58 of the sheet. Cells become text as Excel shows
them in a plain cell: 42 not 42.0, a date as 2023-01-05, TRUE and FALSE.

Which reader opens a list is decided by what the file holds, not its name: a workbook saved
as recipients.csv is still read, and an old .xls (or a password-protected .xlsx, stored the
same way) is refused with what to do.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Protocol

from mailer.errors import RecipientsError
from mailer.recipients.csvfile import CsvFile, check_columns, normalise_column

_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and any Office file with a password
# A staff list of 100,000 rows is ~30 MB of XML; far more is a zip bomb or not a list.
MAX_UNPACKED_BYTES = 512_000_000
SAVE_AS = "in Excel: File > Save As > Excel Workbook (.xlsx), or CSV UTF-8"


class ListFile(Protocol):
    """A recipients list being read: its header and its rows with their line numbers."""

    shown: str
    raw_columns: list[str]
    columns: list[str]
    email_index: int

    def rows(self) -> Iterator[tuple[int, int, list[str]]]: ...

    def width_problem(self, count: int, width: int) -> tuple[str, str]: ...

    def close(self) -> None: ...


def open_list(path: Path, encoding: str) -> ListFile:
    """Open a recipients list: an .xlsx workbook's first sheet, or a CSV file."""
    try:
        with open(path, "rb") as file:
            magic = file.read(8)
    except OSError:
        magic = b""  # CsvFile says what is wrong (no such file, no permission)
    if magic.startswith(_OLE2):
        raise RecipientsError(
            f"{path}: an Excel 97-2003 workbook (.xls) or a password-protected file; "
            f"remove any password and save it {SAVE_AS}"
        )
    if magic.startswith(_ZIP):
        return Workbook(path)
    return CsvFile(path, encoding)


def cell_text(value: Any) -> str:
    """Return a cell's value as text, as Excel shows it in a cell with no number format."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime):
        if value.time() == time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


class Workbook:
    """The first sheet of an .xlsx workbook: row 1 (or the first row with text) is the header."""

    def __init__(self, path: Path) -> None:
        from openpyxl import load_workbook  # imported late: most lists are CSV

        self.path = path
        self.shown = str(path)
        self._check_unpacked_size()
        # A file, not a path: openpyxl would refuse a workbook named .csv by its name alone.
        self._file = open(path, "rb")  # noqa: SIM115  # closed by close()
        try:
            self._book = load_workbook(self._file, read_only=True, data_only=True)
        except Exception as err:  # zipfile, KeyError, InvalidFileException: not a workbook
            self._file.close()
            raise RecipientsError(
                f"{self.shown}: cannot be read as an Excel workbook ({type(err).__name__}: "
                f"{err}); save it {SAVE_AS}"
            ) from err
        try:
            self._read_header()
        except BaseException:
            self.close()
            raise

    def _check_unpacked_size(self) -> None:
        try:
            with zipfile.ZipFile(self.path) as archive:
                unpacked = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError) as err:
            raise RecipientsError(
                f"{self.shown}: a damaged or unfinished workbook ({err}); save it {SAVE_AS}"
            ) from err
        if unpacked > MAX_UNPACKED_BYTES:
            raise RecipientsError(
                f"{self.shown}: unpacks to {unpacked / 1e6:.0f} MB, far more than a list of "
                f"people; save just the list {SAVE_AS}"
            )

    def _read_header(self) -> None:
        sheet = self._book.worksheets[0]
        self.sheet = sheet.title
        sheet.reset_dimensions()  # some programs write a wrong size; read every row there is
        self._sheet_rows = sheet.iter_rows(min_row=1)
        self._rows = enumerate(self._sheet_rows, start=1)
        named = ((n, [cell_text(c.value).strip() for c in cells]) for n, cells in self._rows)
        number, names = next(((n, names) for n, names in named if any(names)), (0, []))
        if not number:
            raise RecipientsError(
                f'{self.shown}: the first sheet ("{self.sheet}") is empty; its first row '
                "must name an email column"
            )
        while names and not names[-1]:
            names.pop()
        self.header_row = number
        self.raw_columns = names
        self.columns = [normalise_column(name) for name in names]
        check_columns(self.shown, number, self.raw_columns, self.columns, "")
        self.email_index = self.columns.index("email")

    def rows(self) -> Iterator[tuple[int, int, list[str]]]:
        """Yield (row number, row number, cells) for every row after the header."""
        width = len(self.columns)
        for number, cells in self._rows:
            values = [cell_text(cell.value) for cell in cells]
            extra = values[width:]
            values = values[:width] + [""] * (width - len(values))
            if any(value.strip() for value in extra):  # a value beyond the named columns
                values += extra
                while not values[-1].strip():
                    values.pop()
            yield number, number, values

    def width_problem(self, count: int, width: int) -> tuple[str, str]:
        """Return where a value lies beyond the named columns (count is one past the last)."""
        from openpyxl.utils import get_column_letter

        return (
            f"a value in column {get_column_letter(count)}, which has no heading in row "
            f"{self.header_row}",
            "give the column a heading or delete the value",
        )

    def close(self) -> None:
        """Close the workbook (read-only mode keeps the file open while rows are read)."""
        rows = getattr(self, "_sheet_rows", None)
        if rows is not None:
            rows.close()  # the sheet's XML stream, opened by the first row read
        self._book.close()
        self._file.close()
