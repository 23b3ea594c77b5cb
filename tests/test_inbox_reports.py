"""Reading returned mail: each real report format, hard against soft, what is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.inbox.dsn import bounce_kind
from mailer.inbox.reports import Reading, read_message
from mailer.mime import read_unsubscribe_token, unsubscribe_token
from tests.sending import SECRET
from tests.test_inbox import FIXTURES

LIST_ID = "ld-newsletter.northfield-safeguarding.example"
UNSUBSCRIBE = "unsubscribe@northfield-safeguarding.example"
NEWSLETTER_ID = "2023-10-20-ld-newsletter@northfield-safeguarding.example>"


def read(data: bytes) -> Reading:
    """Read a message as `mailer inbox` does, with the test secret."""
    return read_message(
        data,
        unsubscribe_address=UNSUBSCRIBE,
        open_token=lambda token: read_unsubscribe_token(SECRET, LIST_ID, token),
    )


@pytest.mark.parametrize(
    ("name", "kind", "status", "recipient"),
    [
        ("postfix-user-unknown", "hard-bounce", "5.1.1", "left.staff@example.org"),
        ("postfix-mailbox-full", "soft-bounce", "5.2.2", "full.box@example.org"),
        ("exchange-online-ndr", "hard-bounce", "5.1.10", "gone@example.com"),
        ("gmail-address-not-found", "hard-bounce", "5.1.1", "nobody@example.net"),
        ("arf-complaint", "complaint", "", "redacted@example.org"),
    ],
)
def test_each_report_format_is_read_with_its_original_message_id(
    name: str, kind: str, status: str, recipient: str
) -> None:
    reading = read((FIXTURES / f"{name}.eml").read_bytes())
    assert (reading.kind, reading.status) == (kind, status)
    assert recipient in reading.recipients
    assert reading.original_ids and reading.original_ids[0].endswith(NEWSLETTER_ID)


def test_an_out_of_office_is_left_alone_though_it_answers_our_message() -> None:
    reading = read((FIXTURES / "out-of-office.eml").read_bytes())
    assert reading.kind == "auto-reply"


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-generated\nSubject: Re: L&D Newsletter",
        "X-Autoreply: yes\nSubject: Re: L&D Newsletter",
        "Precedence: auto_reply\nSubject: Re: L&D Newsletter",
        "Subject: Out of Office: L&D Newsletter",
        "Subject: Abwesenheitsnotiz: L&D Newsletter",
    ],
)
def test_auto_replies_are_recognised_by_header_or_subject(headers: str) -> None:
    data = f"From: a@example.org\nTo: learning@x.example\n{headers}\n\nAway.\n".encode()
    assert read(data).kind == "auto-reply"


def test_the_unsubscribe_token_names_the_reader_whoever_sends_it() -> None:
    reading = read((FIXTURES / "unsubscribe-with-token.eml").read_bytes())
    assert reading.kind == "unsubscribe" and reading.token_address == "leaver@example.org"
    assert unsubscribe_token(SECRET, LIST_ID, "leaver@example.org") in reading.subject


def test_a_forged_or_missing_token_names_nobody() -> None:
    for name in ("unsubscribe-forged", "unsubscribe-from-listed"):
        reading = read((FIXTURES / f"{name}.eml").read_bytes())
        assert reading.kind == "unsubscribe" and reading.token_address is None


def test_a_bounce_of_an_unsubscribe_mail_is_not_an_unsubscribe_request() -> None:
    data = (
        b"From: MAILER-DAEMON@relay.example\nTo: " + UNSUBSCRIBE.encode() + b"\n"
        b"Subject: unsubscribe failed\n\nNot delivered.\n"
    )
    assert read(data).kind != "unsubscribe"


@pytest.mark.parametrize(
    ("status", "detail", "kind"),
    [
        ("5.1.1", "", "hard-bounce"),
        ("5.1.10", "", "hard-bounce"),
        ("5.2.1", "mailbox disabled", "hard-bounce"),
        ("5.0.0", "smtp; 550 5.1.1 <x@y>: user unknown", "hard-bounce"),
        ("5.0.0", "smtp; 550 No such user here", "hard-bounce"),
        ("5.2.2", "mailbox full", "soft-bounce"),
        ("4.4.7", "delivery time expired", "soft-bounce"),
        ("5.7.1", "message rejected as spam", "soft-bounce"),  # our reputation, not their box
        ("5.1.8", "bad sender address", "soft-bounce"),  # our sender, not their box
        ("5.0.0", "smtp; 554 transaction failed", "soft-bounce"),
    ],
)
def test_only_a_missing_mailbox_is_a_hard_bounce(status: str, detail: str, kind: str) -> None:
    assert bounce_kind(status, detail) == kind


def test_a_delay_notice_is_left_alone() -> None:
    data = (FIXTURES / "postfix-mailbox-full.eml").read_bytes()
    data = data.replace(b"Action: failed", b"Action: delayed").replace(b"5.2.2", b"4.2.2")
    assert read(data).kind == "delay"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_are_read_without_an_exception(data: bytes) -> None:
    assert read(data).kind in (
        "hard-bounce", "soft-bounce", "delay", "complaint", "unsubscribe", "auto-reply",
        "unrecognised",
    )  # fmt: skip


def test_the_fixtures_are_all_covered() -> None:
    names = {path.stem for path in Path(FIXTURES).glob("*.eml")}
    assert len(names) == 9
