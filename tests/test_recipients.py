"""The recipients file, read from real files the way spreadsheets export them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.addresses import validate_address
from mailer.errors import RecipientsError
from mailer.recipients import (
    append_unsubscribed,
    iter_recipients,
    load_unsubscribed,
    scan_recipients,
)

NOW = datetime(2023, 10, 20, 9, 0, tzinfo=UTC)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def write(text: str, *, name: str = "recipients.csv", bom: bool = False) -> Path:
    """Write text as UTF-8 bytes exactly as given (no newline translation)."""
    path = Path(name)
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def messages(path: Path) -> list[str]:
    """Return the scan's problems as the user would read them."""
    return [str(problem) for problem in scan_recipients(path).problems]


def error_of(path: Path, encoding: str = "utf-8-sig") -> str:
    """Return the message of the RecipientsError that scanning raises."""
    with pytest.raises(RecipientsError) as caught:
        scan_recipients(path, encoding=encoding)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "bom"),
    [
        ("email,First Name\na@x.org,Ann\nb@y.org,Bob\n", True),
        ("Email;First Name\r\na@x.org;Ann\r\nb@y.org;Bob\r\n", False),
        ("EMAIL\tfirst-name\na@x.org\tAnn\nb@y.org\tBob", True),
        (" Email , First  Name \r\na@x.org , Ann \r\n\r\nb@y.org,Bob\r\n", False),
        ("E-mail Address;First Name\r\na@x.org;Ann\r\nb@y.org;Bob\r\n", True),
        ("Email Address,First Name,,\r\na@x.org,Ann,,\r\nb@y.org,Bob,,\r\n", False),
    ],
    ids=[
        "bom-comma",
        "semicolon-crlf",
        "tab-no-final-newline",
        "spaces-and-empty-row",
        "outlook-e-mail-address",
        "mailchimp-email-address-empty-columns",
    ],
)
def test_reads_what_spreadsheets_export(text: str, bom: bool) -> None:
    path = write(text, bom=bom)
    scan = scan_recipients(path)
    assert [c for c in scan.columns if c] == ["email", "first_name"]
    assert (scan.valid, scan.duplicates, scan.unsubscribed, scan.problems) == (2, 0, 0, [])
    people = list(iter_recipients(path))
    assert [dict(r.fields) for r in people] == [
        {"email": "a@x.org", "first_name": "Ann"},
        {"email": "b@y.org", "first_name": "Bob"},
    ]
    assert people[0].line == 2
    assert people[1].line == (4 if "\r\n\r\n" in text else 3)


def test_a_single_email_column_needs_no_delimiter() -> None:
    path = write("email\na@x.org\nb@y.org\n")
    assert [r.email for r in iter_recipients(path)] == ["a@x.org", "b@y.org"]


def test_quoted_line_break_is_reported_at_the_row_start_and_later_lines_stay_right() -> None:
    path = write('email,name\na@x.org,Ann\nb@y.org,"Bo\nb"\nc@z.org,Cy\nbad,Dee\n')
    assert messages(path) == [
        "recipients.csv:3: name: line break inside the value (the row goes on to line 4); "
        "make the value one line",
        'recipients.csv:6: email: invalid address "bad": no "@"',
    ]
    assert [(r.email, r.line) for r in iter_recipients(path)] == [("a@x.org", 2), ("c@z.org", 5)]


def test_ragged_rows_are_reported_with_their_lines() -> None:
    path = write("email;name\r\na@x.org;Ann\r\nb@y.org;Bob;extra\r\nc@z.org\r\nd@w.org;Dee\r\n")
    assert messages(path) == [
        "recipients.csv:3: 3 value(s), but the header has 2 columns; put quotes around a value "
        "that contains a semicolon, or remove the extra semicolon",
        "recipients.csv:4: 1 value(s), but the header has 2 columns; add the missing values "
        "(an empty value still needs its semicolon)",
    ]
    assert [r.email for r in iter_recipients(path)] == ["a@x.org", "d@w.org"]


def test_missing_email_column_lists_the_one_column_found_and_hints_at_the_delimiter() -> None:
    message = error_of(write("email|first name\na@x.org|Ann\n"))
    assert message == (
        "recipients.csv:1: no email column; found one column 'email|first name' "
        "— is the file separated by something other than , ; or tab?"
    )


def test_missing_email_column_lists_the_columns_found() -> None:
    message = error_of(write("Name;Contact\nAnn;a@x.org\n"))
    assert 'found "Name", "Contact" (semicolon separated)' in message
    assert "name the address column email" in message


def test_columns_that_normalise_alike_are_an_error() -> None:
    message = error_of(write("email,First Name,first-name\na@x.org,Ann,Ann\n"))
    assert message.startswith('recipients.csv:1: columns "First Name" and "first-name"')


def test_a_file_that_is_not_utf8_names_the_line_and_the_fix() -> None:
    path = Path("recipients.csv")
    path.write_bytes("email,name\na@x.org,Ann\nb@y.org,Zoë\n".encode("cp1252"))
    message = error_of(path)
    assert message.startswith("recipients.csv:3: not UTF-8 text")
    assert message.endswith("save it as UTF-8 or pass --encoding")
    people = list(iter_recipients(path, encoding="cp1252"))
    assert people[1].fields["name"] == "Zoë"


def test_unknown_encoding_is_a_user_error() -> None:
    assert "unknown encoding 'klingon'" in error_of(write("email\n"), encoding="klingon")


def test_iteration_streams_rows_before_reading_the_whole_file() -> None:
    path = Path("recipients.csv")
    path.write_bytes(
        b"email\n"
        + b"a@x.org\n" * 2
        + b"".join(b"u%d@x.org\n" % i for i in range(20000))
        + b"\xff\n"
    )
    people = iter_recipients(path)
    assert next(people).email == "a@x.org"
    with pytest.raises(RecipientsError, match=r"recipients.csv:20004: not UTF-8"):
        list(people)


def test_addresses_differing_in_case_are_one_recipient() -> None:
    path = write("email,name\nAnn@X.org,first\nann@x.ORG,second\n ANN@x.org ,third\n")
    scan = scan_recipients(path)
    assert (scan.valid, scan.duplicates) == (1, 2)
    assert [(r.email, r.key, r.fields["name"]) for r in iter_recipients(path)] == [
        ("Ann@X.org", "ann@x.org", "first")
    ]


def test_unsubscribed_addresses_are_skipped_and_counted() -> None:
    write("email\nunsub@x.org\nkeep@x.org\n", name="unsubscribed.csv")
    path = write("email\nkeep@x.org\nUnsub@X.org\nunsub@x.org\nother@y.org\n")
    gone = load_unsubscribed(Path("unsubscribed.csv"))
    scan = scan_recipients(path, frozenset({"nobody@x.org"}) | gone)
    assert (scan.valid, scan.unsubscribed, scan.duplicates) == (1, 2, 1)
    assert [r.email for r in iter_recipients(path, gone)] == ["other@y.org"]


@pytest.mark.parametrize("cell", ['"a@x.org, b@y.org"', "a@x.org;b@y.org", "a@x.org b@y.org"])
def test_several_addresses_in_a_cell_are_reported(cell: str) -> None:
    path = write(f"email\nok@x.org\n{cell}\n")
    [problem] = messages(path)
    assert problem.startswith("recipients.csv:3: email: invalid address")
    assert problem.endswith("several addresses in one cell; put one address per row")


def test_a_nul_byte_is_reported() -> None:
    path = write("email,name\na@x.org,An\x00n\nb@y.org,Bob\n")
    assert messages(path) == [
        "recipients.csv:2: name: NUL byte in the value; re-export the file as CSV UTF-8"
    ]
    assert [r.email for r in iter_recipients(path)] == ["b@y.org"]


def test_every_invalid_row_is_reported_at_once() -> None:
    path = write("email\nbob@\n@x.org\nAnn <a@x.org>\nok@x.org\nx@localhost\n")
    scan = scan_recipients(path)
    assert scan.valid == 1
    assert [problem.line for problem in scan.problems] == [2, 3, 4, 6]
    with pytest.raises(RecipientsError) as caught:
        scan.check()
    assert caught.value.problems == scan.problems


def test_whole_file_problems() -> None:
    assert "copy recipients.example.csv" in error_of(Path("missing.csv"))
    assert "the file is empty" in error_of(write("\n\n"))
    header_only = scan_recipients(write("email,name\n"))
    assert (header_only.valid, header_only.problems) == (0, [])


@pytest.mark.parametrize(
    "address",
    ["a@x.org", "  first.last+tag@sub.example.co.uk ", "o'neil@x.org", "ann@bücher.de", "A@X.ORG"],
)
def test_valid_addresses(address: str) -> None:
    assert validate_address(address) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("", "no address"),
        ("ann.x.org", 'no "@"'),
        ("ann@", 'nothing after "@"'),
        ("Ann <a@x.org>", "without a display name"),
        ("ann@localhost", "has no dot"),
        ("ann@-x.org", "not a valid domain"),
        ("ann@x..org", "not a valid domain"),
        ("ann@x.org.", "not a valid domain"),
        ("ann@1.2.3.4", "not a valid domain"),
        ("ann@x_y.org", "not a valid domain"),
        ("a(b)@x.org", "may not contain '('"),
        ("zoë@x.org", "may not contain 'ë'"),
        ("a..b@x.org", "two dots"),
        ("a" * 65 + "@x.org", "longer than 64"),
        ("a@" + ".".join(c * 62 for c in "bcde") + ".org", "254"),
        ("ann smith@x.org", "contains a space"),
    ],
)
def test_invalid_addresses(address: str, reason: str) -> None:
    assert reason in (validate_address(address) or "")


def test_append_unsubscribed_creates_the_file_and_skips_known_addresses() -> None:
    path = Path("unsubscribed.csv")
    assert load_unsubscribed(path) == set()
    assert append_unsubscribed(path, ["Ann@X.org", " bob@y.org "], NOW) == [
        "Ann@X.org",
        "bob@y.org",
    ]
    assert append_unsubscribed(path, ["ann@x.org", "cy@z.org", "CY@z.org"], NOW) == ["cy@z.org"]
    assert path.read_text() == (
        "email,unsubscribed_at\n"
        "Ann@X.org,2023-10-20T09:00:00+00:00\n"
        "bob@y.org,2023-10-20T09:00:00+00:00\n"
        "cy@z.org,2023-10-20T09:00:00+00:00\n"
    )
    assert load_unsubscribed(path) == {"ann@x.org", "bob@y.org", "cy@z.org"}


def test_append_unsubscribed_follows_a_hand_edited_file() -> None:
    path = write("Email;Note\r\nann@x.org;asked by phone", name="unsubscribed.csv")
    assert append_unsubscribed(path, ["bob@y.org"], NOW) == ["bob@y.org"]
    assert path.read_bytes() == b"Email;Note\r\nann@x.org;asked by phone\r\nbob@y.org;\r\n"
    assert load_unsubscribed(path) == {"ann@x.org", "bob@y.org"}


def test_append_unsubscribed_refuses_invalid_addresses_and_writes_nothing() -> None:
    path = Path("unsubscribed.csv")
    with pytest.raises(RecipientsError) as caught:
        append_unsubscribed(path, ["ok@x.org", "bob@"], NOW)
    assert '"bob@": not a valid address' in str(caught.value)
    assert not path.exists()


emails = st.from_regex(
    r"[A-Za-z0-9](?:[A-Za-z0-9_+.-]{0,8}[A-Za-z0-9])?@[a-cA-C]{1,3}\.org", fullmatch=True
).filter(lambda address: ".." not in address)
# Any one-line text a cell may hold: controls, line separators and bidi controls are refused.
names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=BIDI)
    | st.sampled_from([",", ";", '"', "'", " "]),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(emails, names), max_size=15),
    delimiter=st.sampled_from([",", ";", "\t"]),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_round_trip_gives_back_the_distinct_rows_in_order(
    rows: list[tuple[str, str]], delimiter: str, bom: bool, newline: str
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(["Email", "First Name"])
    writer.writerows(rows)
    path = write(buffer.getvalue(), bom=bom)
    expected: dict[str, dict[str, str]] = {}
    for email, name in rows:
        expected.setdefault(email.lower(), {"email": email, "first_name": name.strip()})
    assert [dict(r.fields) for r in iter_recipients(path)] == list(expected.values())
    scan = scan_recipients(path)
    assert (scan.valid, scan.duplicates, scan.problems) == (
        len(expected),
        len(rows) - len(expected),
        [],
    )


def test_excels_sep_line_sets_the_delimiter_and_keeps_line_numbers() -> None:
    path = write("sep=;\r\nEmail;Name\r\na@x.org;Ann, the first\r\nbob@;Bob\r\n")
    scan = scan_recipients(path)
    assert scan.columns == ["email", "name"]
    assert [dict(r.fields) for r in iter_recipients(path)] == [
        {"email": "a@x.org", "name": "Ann, the first"}
    ]
    assert [p.line for p in scan.problems] == [4]
