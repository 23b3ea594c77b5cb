"""The list's input rules: broken quotes stop the file, bad cells are rows, duplicates are named."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.errors import RecipientsError
from mailer.recipients import iter_recipients, load_unsubscribed, scan_recipients

SKIP_HINT = "A broken quote hides the rows after it, so --skip-invalid does not skip it"
REFUSED = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)] + list(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def write(text: str, name: str = "recipients.csv") -> Path:
    """Write text as UTF-8 bytes exactly as given."""
    path = Path(name)
    path.write_bytes(text.encode())
    return path


def rows(count: int, start: int = 0) -> str:
    """Return count well-formed rows of email,name."""
    return "".join(f"person{n}@example.org,Name{n}\n" for n in range(start, start + count))


def refusal(path: Path) -> str:
    """Return the message of the RecipientsError the scan raises for the whole file."""
    with pytest.raises(RecipientsError) as caught:
        scan_recipients(path)
    assert not caught.value.problems, "a broken file is one error, not a list of rows"
    return str(caught.value)


def test_an_unclosed_quote_stops_the_file_at_the_line_it_opened() -> None:
    path = write('email,name\na@x.org,Ann\nb@y.org,"Bob\n' + rows(997))
    assert refusal(path) == (
        "recipients.csv:3:9: name: this quote is never closed, so lines 3 to 1000 (the end of "
        "the file) read as one value; close it where the value ends, or remove it. "
        f"{SKIP_HINT}: fix it and run again"
    )
    with pytest.raises(RecipientsError, match=r"^recipients.csv:3:9: "):
        list(iter_recipients(path))


def test_a_quote_closed_many_lines_later_names_both_lines() -> None:
    path = write('email,name\nb@y.org,"Bob\n' + rows(50) + 'c@z.org,"Smith, J"\n' + rows(5, 50))
    assert refusal(path).startswith(
        'recipients.csv:2:9: name: this quote is closed only on line 53 (followed by "S"), '
        "so lines 2 to 53 read as one value"
    )


def test_a_value_that_takes_in_rows_is_a_broken_quote_even_when_it_parses() -> None:
    path = write('email,name\nb@y.org,"Bob\nc@z.org,Cy\nd@w.org,Dee"\n' + rows(3))
    assert refusal(path).startswith(
        "recipients.csv:2:9: name: this quoted value runs on to line 4 and takes in what look "
        'like rows (line 3: "c@z.org,Cy"); close the quote where the value ends, or remove it.'
    )


def test_a_value_that_takes_in_bare_addresses_is_a_broken_quote() -> None:
    path = write('email\n"a@x.org\nb@x.org\nc@x.org"\nd@x.org\n')
    assert refusal(path).startswith(
        "recipients.csv:2:1: email: this quoted value runs on to line 4 and takes in what look "
        'like rows (line 3: "b@x.org")'
    )


def test_text_after_a_closing_quote_is_named_with_its_column() -> None:
    path = write('email;name\r\na@x.org;Ann\r\nb@y.org;"Bob" Jr\r\nc@z.org;Cy\r\n')
    assert refusal(path).startswith(
        'recipients.csv:3:9: name: text after the closing quote (" "); put the whole value in '
        'quotes and write a quote inside it as two ("")'
    )


def test_a_quote_left_open_in_the_header_is_named() -> None:
    path = write('"email,name\na@x.org,Ann\n')
    assert refusal(path).startswith("recipients.csv:1:1: this quote is never closed")


def test_a_quote_left_open_in_a_long_file_stops_at_the_csv_size_limit() -> None:
    path = write('email,name\nb@y.org,"Bob\n' + "".join(rows(1) * 2000) * 5)
    message = refusal(path)
    assert message.startswith("recipients.csv:2:9: name: this quote is not closed within")
    assert SKIP_HINT in message


def test_an_unsubscribed_file_with_an_open_quote_stops_rather_than_forgetting_people() -> None:
    path = write('email,note\na@x.org,"by phone\nb@x.org,by mail\n', name="unsubscribed.csv")
    with pytest.raises(RecipientsError, match=r"^unsubscribed.csv:2:9: note: this quote is never"):
        load_unsubscribed(path)


def test_a_value_with_a_plain_line_break_is_still_only_its_own_row() -> None:
    path = write('email,street\na@x.org,"Flat 2\nHigh Street"\nb@y.org,Mill Lane\n')
    [problem] = scan_recipients(path).problems
    assert str(problem).startswith("recipients.csv:2: street: line break inside the value")
    assert [r.email for r in iter_recipients(path)] == ["b@y.org"]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("Ann\u202egnp.exe", "bidirectional control U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("\u2066Ann\u2069", "bidirectional control U+2066 (LEFT-TO-RIGHT ISOLATE)"),
        ("Ann\tSmith", "control character U+0009 (a tab)"),
        ("Ann\x1b[31m", "control character U+001B (escape)"),
        ("Ann\x7f", "control character U+007F"),
        ("Ann\x85Smith", "must be one line"),
        ("Ann\u2028Smith", "must be one line"),
        ("=?utf-8?q?Ann=E2=80=AE?=", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ],
)
def test_a_cell_with_a_control_or_bidi_character_is_an_invalid_row(cell: str, reason: str) -> None:
    path = Path("recipients.csv")
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(
            [["email", "First Name", ""], ["a@x.org", cell, ""], ["b@y.org", "Bob", ""]]
        )
    [problem] = scan_recipients(path).problems
    assert str(problem).startswith("recipients.csv:2: First Name: ")
    assert reason in str(problem)
    assert [r.email for r in iter_recipients(path)] == ["b@y.org"]


def test_every_column_is_checked_even_the_unnamed_and_the_address() -> None:
    path = write("email,,note\na@x.org,x\u202ey,\nb\u202e@x.org,,\n")
    assert [str(problem).split(": contains")[0] for problem in scan_recipients(path).problems] == [
        "recipients.csv:2: column 2",
        "recipients.csv:3: email",
    ]


AROUND = st.text(st.characters(codec="utf-8", blacklist_characters=",@"), max_size=4)


@settings(max_examples=100, deadline=None)
@given(
    # Around it: no separator or "@", which after a line break would look like rows swallowed
    # by an open quote (a broken file, not an invalid row: test_send_input.py).
    name=st.tuples(AROUND, st.sampled_from(REFUSED), AROUND).map("".join)
)
def test_any_refused_character_inside_a_cell_makes_its_row_invalid(name: str) -> None:
    path = Path("recipients.csv")
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([["email", "name"], ["a@x.org", f"x{name}x"], ["b@y.org", "B"]])
    scan = scan_recipients(path)
    assert [(p.line, p.where) for p in scan.problems] == [(2, "name")]
    assert scan.valid == 1


def test_duplicates_are_listed_with_both_lines() -> None:
    path = write("email\nalex@example.org\nsam@example.org\nALEX@example.org\nsam@example.org\n")
    scan = scan_recipients(path)
    assert scan.duplicates == 2
    assert scan.duplicate_warnings() == [
        "recipients.csv:4: duplicate of line 2 (ALEX@example.org)",
        "recipients.csv:5: duplicate of line 3 (sam@example.org)",
        "recipients.csv: 2 duplicate row(s) skipped: each address gets the issue once, as its "
        "first row says; delete the later rows to silence this",
    ]


def test_a_list_of_ten_thousand_names_the_first_twenty_duplicates_and_counts_them_all() -> None:
    path = write("email,name\n" + rows(9000) + rows(1000))
    scan = scan_recipients(path)
    assert (scan.valid, scan.duplicates) == (9000, 1000)
    warnings = scan.duplicate_warnings()
    assert len(warnings) == 21
    assert warnings[0] == "recipients.csv:9002: duplicate of line 2 (person0@example.org)"
    assert warnings[-1].startswith(
        "recipients.csv: 1000 duplicate row(s) skipped (the first 20 listed)"
    )


def test_empty_cells_of_needed_columns_are_collected_for_sendable_rows_only() -> None:
    write("email\ngone@x.org\n", name="unsubscribed.csv")
    path = write(
        "email,First Name,team\n"
        "a@x.org,Ann,\n"  # team is not needed
        "b@x.org,,L&D\n"
        "bad,,\n"  # invalid: not sent, so not counted
        "gone@x.org,,\n"  # unsubscribed
        "b@x.org,,\n" + "".join(f"p{n}@x.org,,\n" for n in range(30))  # duplicate
    )
    scan = scan_recipients(path, load_unsubscribed(Path("unsubscribed.csv")), needed=["first_name"])
    assert list(scan.empty_cells) == ["first_name"]
    empty = scan.empty_cells["first_name"]
    assert (empty.column, empty.count) == ("First Name", 31)
    assert empty.lines == [3, *range(7, 26)]
    assert scan_recipients(path, needed=["nickname"]).empty_cells == {}
