"""A list kept in Excel: the first sheet of an .xlsx workbook, with Excel's row numbers."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

import mailer.recipients.workbook
from mailer.errors import RecipientsError
from mailer.recipients import iter_recipients, scan_recipients
from tests.sending import ISSUE, cli, make_folder
from tests.smtp_servers import MakeServer


def workbook(path: Path, rows: list[list[Any]], *, title_rows: int = 0) -> Path:
    """Save rows as the first sheet of a workbook (after title_rows empty rows), and a second."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Staff"
    for _ in range(title_rows):
        sheet.append([])
    for row in rows:
        sheet.append(row)
    old = book.create_sheet("Old list")  # only the first sheet is the list
    old.append(["Email"])
    old.append(["never@example.org"])
    book.save(path)
    return path


STAFF: list[list[Any]] = [
    ["E-mail Address", "First Name", "Team", "Started", "Staff no"],
    ["kim@example.org", "Kim", "Early Help", date(2023, 1, 5), 1042],
    [None, None, None, None, None],
    ["sean@example.org", "Seán", "Adults", datetime(2023, 2, 1, 9, 30), 7.0],
    ["not-an-address", "Pat", "Adults", None, None],
    ["KIM@example.org", "Kim again", None, None, None],
]


def test_the_first_sheet_is_read_with_excels_row_numbers(tmp_path: Path) -> None:
    path = workbook(tmp_path / "staff.xlsx", STAFF)
    scan = scan_recipients(path)
    assert scan.columns == ["email", "first_name", "team", "started", "staff_no"]
    assert scan.valid == 2 and scan.duplicates == 1
    (problem,) = scan.problems
    assert str(problem).startswith(f'{path}:5: E-mail Address: invalid address "not-an-address"')
    assert "duplicate of line 2" in str(scan.duplicate_rows[0])
    assert scan.duplicate_rows[0].line == 6
    people = list(iter_recipients(path))
    assert [(p.line, dict(p.fields)) for p in people] == [
        (
            2,
            {
                "email": "kim@example.org",
                "first_name": "Kim",
                "team": "Early Help",
                "started": "2023-01-05",
                "staff_no": "1042",
            },
        ),
        (
            4,
            {
                "email": "sean@example.org",
                "first_name": "Seán",
                "team": "Adults",
                "started": "2023-02-01 09:30",
                "staff_no": "7",
            },
        ),
    ]


def test_a_header_below_empty_rows_and_a_value_beyond_it(tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        ["Email", "Name"],
        ["a@example.org", "A"],
        ["b@example.org", "B", None, "stray"],
    ]
    path = workbook(tmp_path / "list.xlsx", rows, title_rows=2)
    scan = scan_recipients(path)
    assert scan.valid == 1
    (problem,) = scan.problems
    assert str(problem) == (
        f"{path}:5: a value in column D, which has no heading in row 3; "
        "give the column a heading or delete the value"
    )


def test_a_workbook_without_an_email_column_says_what_it_found(tmp_path: Path) -> None:
    path = workbook(tmp_path / "list.xlsx", [["Name", "Team"], ["A", "B"]])
    with pytest.raises(RecipientsError) as caught:
        scan_recipients(path)
    assert str(caught.value) == (
        f'{path}:1: no email column; found "Name", "Team"; name the address column email'
    )


def test_a_workbook_saved_with_a_csv_name_is_still_read(tmp_path: Path) -> None:
    path = workbook(tmp_path / "recipients.csv", STAFF)
    assert scan_recipients(path).valid == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "Excel 97-2003 workbook (.xls)"),
        (b"PK\x03\x04 not really a zip", "a damaged or unfinished workbook"),
    ],
)
def test_an_old_or_broken_workbook_says_what_to_do(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "staff.xlsx"
    path.write_bytes(content)
    with pytest.raises(RecipientsError) as caught:
        scan_recipients(path)
    assert expected in str(caught.value)
    assert "Save As > Excel Workbook (.xlsx), or CSV UTF-8" in str(caught.value)


def test_a_workbook_that_unpacks_to_far_too_much_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = workbook(tmp_path / "staff.xlsx", STAFF)
    monkeypatch.setattr(mailer.recipients.workbook, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(RecipientsError, match="far more than a list of people"):
        scan_recipients(path)


def test_a_send_from_a_workbook_reaches_everyone_once(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, [])
    rows = [row for row in STAFF if row[0] != "not-an-address"]
    workbook(isolated / "staff.xlsx", rows)
    code, _out, err = cli("send", ISSUE, "--recipients", "staff.xlsx", "--yes")
    assert code == 0, err
    assert sorted(r for m in server.received for r in m.recipients) == [
        "kim@example.org",
        "sean@example.org",
    ]
    parts = [m.message.get_body(("plain",)) for m in server.received]
    texts = [str(part.get_content()) for part in parts if part is not None]
    assert any("Good morning Seán," in text for text in texts)


def test_an_invalid_row_in_a_workbook_stops_the_send_naming_the_row(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, [])
    workbook(isolated / "staff.xlsx", STAFF)
    code, _out, err = cli("send", ISSUE, "--recipients", "staff.xlsx", "--dry-run")
    assert code == 1
    assert "staff.xlsx:5: E-mail Address: invalid address" in err and "Traceback" not in err
    assert server.received == []
