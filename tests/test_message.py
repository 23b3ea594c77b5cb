"""Messages: exact headers, valid quoted-printable filled per recipient, no header injection."""

from __future__ import annotations

import email
import email.policy
import quopri
import re
import shutil
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mailer.mime.factory
from mailer.config import Settings
from mailer.errors import SettingsError
from mailer.folder import load_settings
from mailer.issue import load_issue
from mailer.mime import (
    BuiltMessage,
    MessageError,
    MessageFactory,
    encode_part,
    read_unsubscribe_token,
    unsubscribe_token,
    verify_unsubscribe_token,
)
from mailer.render import Rendered, render_issue
from tests.conftest import REPO_DIR

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
GOLDEN_DIR = Path(__file__).parent / "golden"
ISSUE_ID = "2023-10-20-ld-newsletter"
SECRET = "test-secret"
NOW = datetime.fromisoformat("2023-10-20T09:00:00+01:00")
SAM = {"email": "sam.taylor@northfield-safeguarding.example", "first_name": "Sam"}
HEADERS = [
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
]  # fmt: skip
# Placeholders at a paragraph's start, two side by side, mid-sentence and in a link.
PLACEHOLDER_ISSUE = """subject: "News for {{ recipient.nick | default('you') }}"
date: 2023-10-20
blocks:
  - type: text
    body: |
      {{ recipient.first_name }}{{ recipient.team }}

      Dear {{ recipient.first_name | default("colleague") }}, team {{ recipient.team }}.
      See [your page](https://example.org/me?team={{ recipient.team }}).
"""
INJECTIONS = [
    "\r\nBcc: x@evil.example",
    "\nBcc: x@evil.example",
    "\rBcc: x@evil.example",
    "=?utf-8?q?a=0D=0ABcc:_x@evil.example?=",
    "=?utf-8?b?YQ0KQmNjOiB4QGV2aWwuZXhhbXBsZQ==?=",
    "a\u2028Bcc: x@evil.example",
    "a\u2029b",
    "a\x85Bcc: x@evil.example",
    "a\x00b",
    "a\tb",
    "a\x1bb",
]
# Text that stresses quoted-printable: "=", spaces and tabs before line ends, dots and "From "
# at line starts, long words, multi-byte characters, every kind of line end.
QP_EDGES = st.lists(
    st.one_of(
        st.sampled_from(["=", " ", "\t", " \n", "\t\r\n", "\n.", ".", "\nFrom ", "\r", "\r\n"]),
        st.sampled_from(["é", "€", "🎉", "=?utf-8?q?x?=", "&<>\"'", "x" * 90, "=3D" * 30]),
        st.text(max_size=20),
    ),
    max_size=12,
).map("".join)
HEADER_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=80)


def render(folder: Path, issue_path: Path, config: Settings | None = None) -> Rendered:
    """Render an issue with the folder's settings."""
    return render_issue(folder, load_issue(issue_path), config or load_settings(folder))


def sample(folder: Path) -> tuple[Settings, Rendered]:
    """Render the sample issue in the newsletter folder."""
    path = folder / "issues" / SAMPLE.name
    shutil.copy(SAMPLE, path)
    return load_settings(folder), render(folder, path)


def placeholder_issue(folder: Path) -> tuple[Settings, Rendered]:
    """Render an issue with placeholders in awkward places."""
    path = folder / "issues" / "placeholders.yaml"
    path.write_text(PLACEHOLDER_ISSUE, encoding="utf-8")
    return load_settings(folder), render(folder, path)


def factory(config: Settings, rendered: Rendered, *, test: bool = False) -> MessageFactory:
    """Prepare a factory for the test issue id and secret."""
    return MessageFactory.prepare(config, rendered, ISSUE_ID, unsubscribe_secret=SECRET, test=test)


def parse(built: BuiltMessage) -> EmailMessage:
    """Parse a built message the way a receiving client would."""
    parsed = email.message_from_bytes(built.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def contents(message: EmailMessage) -> list[str]:
    """Return the decoded content of each part, as a mail client shows it."""
    return [part.get_content() for part in message.iter_parts()]


def raw_parts(built: BuiltMessage) -> list[tuple[bytes, bytes]]:
    """Return (headers, encoded body) of each part, split at the boundary by hand."""
    boundary = re.search(rb'boundary="([^"]+)"', built.data)
    assert boundary is not None
    delimiter = b"\r\n--" + boundary.group(1)
    _, text, html, end = built.data.split(delimiter)
    assert end == b"--\r\n"
    return [tuple(part.removeprefix(b"\r\n").split(b"\r\n\r\n", 1)) for part in (text, html)]  # type: ignore[misc]


def assert_valid_qp(encoded: bytes) -> None:
    """Check RFC 2045 6.7: CRLF lines of at most 76, no trailing space, "=" only as an escape."""
    assert b"\n" not in encoded.replace(b"\r\n", b""), "a bare LF"
    assert b"\r" not in encoded.replace(b"\r\n", b""), "a bare CR"
    for line in encoded.split(b"\r\n"):
        assert len(line) <= 76, line
        assert not line.endswith((b" ", b"\t")), line
        assert re.fullmatch(rb"(?:[\t !-<>-~]|=[0-9A-F]{2})*=?", line), line


def wire_text(text: str) -> str:
    """Return text with every line end as CRLF, as the message carries it."""
    return re.sub(r"\r\n?|\n", "\r\n", text)


def one_line_breaks(fields: dict[str, str]) -> dict[str, str]:
    """Return fields with CR LF and CR as LF: each is one line break in the message."""
    return {name: re.sub(r"\r\n?", "\n", value) for name, value in fields.items()}


def assert_parts_equal(built: BuiltMessage, rendered: Rendered, fields: dict[str, str]) -> None:
    """Check both parts decode exactly to what rendered.personalise gives for these fields."""
    extras = {"unsubscribe_url": unsubscribe_link(built)}
    expected = rendered.personalise(one_line_breaks(fields), extras)
    for (headers, body), want in zip(raw_parts(built), (expected.text, expected.html), strict=True):
        assert b"Content-Transfer-Encoding: quoted-printable" in headers
        assert_valid_qp(body)
        assert quopri.decodestring(body).decode("utf-8") == wire_text(want)
    assert contents(parse(built)) == [wire_text(expected.text), wire_text(expected.html)]


def unsubscribe_link(built: BuiltMessage) -> str:
    """Return the https unsubscribe URL the message's List-Unsubscribe carries."""
    found = re.search(r"<(https://[^>]+)>", str(parse(built)["List-Unsubscribe"]))
    assert found is not None
    return found.group(1)


def test_a_message_has_exactly_the_product_headers_and_both_parts(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    built = factory(config, rendered).build(SAM, now=NOW)
    message = parse(built)
    assert list(message.keys()) == HEADERS
    assert (
        message["From"] == "Learning & Development Team <learning@northfield-safeguarding.example>"
    )
    assert message["To"] == SAM["email"] == built.recipient
    assert message["Subject"] == "L&D Newsletter, issue 12" == built.subject
    assert message["Date"] == "Fri, 20 Oct 2023 09:00:00 +0100"
    assert message["Message-ID"] == built.message_id
    assert built.message_id.endswith(".2023-10-20-ld-newsletter@northfield-safeguarding.example>")
    assert message["Reply-To"] == "learning@northfield-safeguarding.example"
    assert message["List-Id"] == '"L&D Newsletter" <ld-newsletter.northfield-safeguarding.example>'
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert "=_" in message.get_boundary("")
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert [part.get_content_charset() for part in message.iter_parts()] == ["utf-8", "utf-8"]
    assert not message.defects
    assert_parts_equal(built, rendered, SAM)
    assert built.data.isascii()
    assert all(len(line) <= 998 for line in built.data.split(b"\r\n"))


def test_the_sample_message_matches_its_golden_eml(newsletter: Path, update_golden: bool) -> None:
    config, rendered = sample(newsletter)
    data = factory(config, rendered).build(SAM, now=NOW).data
    path = GOLDEN_DIR / "sample.eml"
    if update_golden:
        path.write_bytes(data)
    assert data == path.read_bytes(), (
        "sample.eml changed: review it, then run pytest --update-golden"
    )


def test_the_same_input_gives_the_same_bytes(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    first = factory(config, rendered).build(SAM, now=NOW)
    assert factory(config, rendered).build(SAM, now=NOW) == first


def test_the_message_id_is_stable_per_recipient_and_reveals_no_address(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    made = factory(config, rendered)
    sam, alex = made.message_id("sam@x.org"), made.message_id("alex@x.org")
    assert sam == factory(config, rendered).message_id("sam@x.org")
    assert sam != alex
    assert re.fullmatch(
        r"<[0-9a-f]{32}\.2023-10-20-ld-newsletter@northfield-safeguarding\.example>", sam
    )
    assert "sam" not in sam
    other_issue = MessageFactory.prepare(config, rendered, "13", unsubscribe_secret=SECRET)
    assert other_issue.message_id("sam@x.org") != sam
    assert factory(config, rendered, test=True).message_id("sam@x.org") != sam


def test_a_proof_is_marked_in_the_subject(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    built = factory(config, rendered, test=True).build(SAM, now=NOW)
    assert parse(built)["Subject"] == "[TEST] L&D Newsletter, issue 12" == built.subject


def test_https_and_mailto_both_go_in_list_unsubscribe_with_one_click(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    made = factory(config, rendered)
    message = parse(made.build(SAM, now=NOW))
    url = made.unsubscribe_url(SAM["email"])
    assert url.startswith("https://northfield-safeguarding.example/newsletter/unsubscribe?token=")
    mailto = made.unsubscribe_mailto(SAM["email"])
    assert mailto == (
        "mailto:unsubscribe@northfield-safeguarding.example?subject=unsubscribe%20"
        + unsubscribe_token(SECRET, config.list_id, SAM["email"])
    )
    assert message["List-Unsubscribe"] == f"<{url}>, <{mailto}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = contents(message)
    assert f"Unsubscribe: {url}" in text
    assert f'href="{url.replace("&", "&amp;")}"' in html


def test_mailto_only_means_no_one_click_header_and_a_mailto_link(newsletter: Path) -> None:
    config, _ = sample(newsletter)
    config = config.model_copy(update={"unsubscribe_url": None})
    rendered = render(newsletter, newsletter / "issues" / SAMPLE.name, config)
    made = MessageFactory.prepare(config, rendered, ISSUE_ID, unsubscribe_secret=None)
    message = parse(made.build(SAM, now=NOW))
    mailto = "mailto:unsubscribe@northfield-safeguarding.example?subject=unsubscribe"
    assert made.unsubscribe_url(SAM["email"]) == mailto
    assert message["List-Unsubscribe"] == f"<{mailto}>"
    assert "List-Unsubscribe-Post" not in message
    assert list(message.keys()) == [name for name in HEADERS if name != "List-Unsubscribe-Post"]
    assert f"Unsubscribe: {mailto}" in contents(message)[0]


def test_https_only_means_one_link_and_one_click(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    config = config.model_copy(update={"unsubscribe_mailto": None, "reply_to": None})
    made = factory(config, rendered)
    message = parse(made.build(SAM, now=NOW))
    assert message["List-Unsubscribe"] == f"<{made.unsubscribe_url(SAM['email'])}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Reply-To" not in message


def test_an_https_unsubscribe_url_needs_the_secret(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    with pytest.raises(SettingsError, match="MAILER_UNSUBSCRIBE_SECRET") as caught:
        MessageFactory.prepare(config, rendered, ISSUE_ID, unsubscribe_secret=None)
    assert "secrets.token_urlsafe(32)" in str(caught.value)


def test_the_unsubscribe_token_verifies_and_a_tampered_one_does_not(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    url = factory(config, rendered).unsubscribe_url("sam@x.org")
    query = parse_qs(urlsplit(url).query)
    assert "sam" not in url and list(query) == ["token"]  # opaque: no address in clear
    [token] = query["token"]
    list_id = config.list_id
    assert token == unsubscribe_token(SECRET, list_id, "sam@x.org")
    assert read_unsubscribe_token(SECRET, list_id, token) == "sam@x.org"
    assert read_unsubscribe_token("other-secret", list_id, token) is None
    assert verify_unsubscribe_token(SECRET, list_id, "sam@x.org", token)
    assert verify_unsubscribe_token(SECRET, list_id, "Sam@X.org", token)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert not verify_unsubscribe_token(SECRET, list_id, "sam@x.org", tampered)
    assert not verify_unsubscribe_token(SECRET, list_id, "alex@x.org", token)
    assert not verify_unsubscribe_token("other-secret", list_id, "sam@x.org", token)
    assert not verify_unsubscribe_token(SECRET, "other.list", "sam@x.org", token)
    assert not verify_unsubscribe_token(SECRET, list_id, "sam@x.org", "é\udcff")


def test_non_ascii_names_and_subjects_round_trip(newsletter: Path) -> None:
    config = load_settings(newsletter).model_copy(
        update={
            "from_name": "Équipe Formation \N{EN DASH} Zoë",
            "name": "Lettre d'information “Été”",
        }
    )
    path = newsletter / "issues" / "accents.yaml"
    subject = (
        "Café für {{ recipient.first_name }}: the 🎉 autumn programme, with a long tail of words"
    )
    path.write_text(
        PLACEHOLDER_ISSUE.replace("News for {{ recipient.nick | default('you') }}", subject),
        encoding="utf-8",
    )
    rendered = render(newsletter, path, config)
    fields = {"email": "zoe@bücher.example", "first_name": "Zoë"}
    built = factory(config, rendered).build(fields, now=NOW)
    message = parse(built)
    assert message["From"].addresses[0].display_name == "Équipe Formation \N{EN DASH} Zoë"
    assert (
        message["List-Id"]
        == "Lettre d'information “Été” <ld-newsletter.northfield-safeguarding.example>"
    )
    assert (
        message["Subject"] == subject.replace("{{ recipient.first_name }}", "Zoë") == built.subject
    )
    assert message["To"] == built.recipient == "zoe@xn--bcher-kva.example"
    head = built.data.split(b"\r\n\r\n", 1)[0]
    subject_lines = re.search(rb"^Subject:.*?(?=\r\n\S)", head, re.MULTILINE | re.DOTALL)
    assert subject_lines is not None and subject_lines.group().count(b"\r\n") >= 1
    assert all(len(line) <= 78 for line in subject_lines.group().split(b"\r\n"))
    assert built.data.isascii()
    assert_parts_equal(built, rendered, fields)


@pytest.mark.parametrize(
    "address",
    [
        "Bob <bob@x.org>",
        "a@x.org, b@x.org",
        "a@x.org\r\nBcc: c@x.org",
        "bob",
        "=?utf-8?q?=0D?=@x.org",
    ],
)
def test_a_to_address_must_be_one_plain_address(newsletter: Path, address: str) -> None:
    config, rendered = sample(newsletter)
    with pytest.raises(MessageError, match="To:"):
        factory(config, rendered).build({"email": address}, now=NOW)


def test_now_must_be_aware(newsletter: Path) -> None:
    config, rendered = sample(newsletter)
    with pytest.raises(ValueError, match="aware"):
        factory(config, rendered).build(SAM, now=datetime(2023, 10, 20, 9))


@pytest.mark.parametrize(
    "text",
    [
        "a" * 200 + " =",  # no line end: b2a_qp would write its soft breaks as a bare LF
        "x\n" + "a" * 74 + " \nx",  # b2a_qp writes =20 past column 76 before a line end
        "b" * 74 + "\t\r\n",
        "é" * 40 + "\r",
    ],
)
def test_encode_part_gives_valid_quoted_printable(text: str) -> None:
    encoded = encode_part(text)
    assert_valid_qp(encoded)
    assert quopri.decodestring(encoded).decode("utf-8") == wire_text(text)


@given(text=QP_EDGES)
def test_encode_part_round_trips_any_text(text: str) -> None:
    encoded = encode_part(text)
    assert_valid_qp(encoded)
    assert quopri.decodestring(encoded).decode("utf-8") == wire_text(text)


def test_placeholder_values_give_valid_quoted_printable_that_decodes_exactly(
    newsletter: Path,
) -> None:
    config, rendered = placeholder_issue(newsletter)
    made = factory(config, rendered)

    @given(first_name=QP_EDGES, team=QP_EDGES)
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(first_name: str, team: str) -> None:
        fields = {"email": "sam@x.org", "first_name": first_name, "team": team}
        built = made.build(fields, now=NOW)
        assert_parts_equal(built, rendered, fields)
        assert built.wire == stuffed_as_smtplib_does(built.data)

    check()


@pytest.mark.parametrize(
    "value", [".", ".x", "x\n.", "a" * 74 + ".", "a" * 75 + ".", "é" * 25 + ".", "\n..\n."]
)
def test_the_wire_form_is_the_message_dot_stuffed(newsletter: Path, value: str) -> None:
    # Most of the wire form is stuffed once per issue, each piece on its own: it must be
    # what stuffing the whole message gives, wherever a value's dots fall.
    config, rendered = placeholder_issue(newsletter)
    fields = {"email": "sam@x.org", "first_name": value, "team": value}
    built = factory(config, rendered).build(fields, now=NOW)
    assert built.wire == stuffed_as_smtplib_does(built.data)
    assert b"\n." in built.data  # the case is exercised: some line starts with a dot
    sample_message = factory(*sample(newsletter)).build(SAM, now=NOW)
    assert sample_message.wire == stuffed_as_smtplib_does(sample_message.data)


def stuffed_as_smtplib_does(data: bytes) -> bytes:
    """Return data dot-stuffed by smtplib.SMTP.data()'s own rule."""
    return re.sub(rb"(?m)^\.", b"..", data)


def test_subject_values_round_trip_or_are_refused(newsletter: Path) -> None:
    config, rendered = placeholder_issue(newsletter)
    made = factory(config, rendered)

    @given(nick=HEADER_TEXT)
    @settings(max_examples=300, deadline=None)
    def check(nick: str) -> None:
        fields = {"email": "sam@x.org", "nick": nick}
        try:
            built = made.build(fields, now=NOW)
        except MessageError:
            assert "=?" in nick  # only an encoded word hiding a control character is refused
            return
        message = parse(built)
        assert list(message.keys()) == HEADERS
        assert message["Subject"] == built.subject == rendered.personalise(fields, {}).subject
        head = built.data.split(b"\r\n\r\n", 1)[0]
        assert all(len(line) <= 78 for line in head.split(b"\r\n") if line.startswith(b"Subject"))

    check()


def test_header_injection_through_a_placeholder_is_refused(newsletter: Path) -> None:
    config, rendered = placeholder_issue(newsletter)
    made = factory(config, rendered)

    @given(
        nick=st.tuples(st.text(max_size=5), st.sampled_from(INJECTIONS), st.text(max_size=5)).map(
            "".join
        )
    )
    @settings(max_examples=200, deadline=None)
    def check(nick: str) -> None:
        with pytest.raises(MessageError, match=re.escape("sam@x.org: Subject: ")):
            made.build({"email": "sam@x.org", "nick": nick}, now=NOW)

    check()


def test_the_parsed_back_header_names_catch_an_injection_the_checks_missed(
    newsletter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, rendered = placeholder_issue(newsletter)
    made = factory(config, rendered)
    monkeypatch.setattr(mailer.mime.factory, "line_problem", lambda value: None)
    for nick in ("x\r\nBcc: x@evil.example", "x\r\nSubject: again", "x\r\n\r\nbody"):
        with pytest.raises(MessageError, match="headers came out as"):
            made.build({"email": "sam@x.org", "nick": nick}, now=NOW)


def test_a_placeholder_that_fails_for_one_recipient_fails_only_that_message(
    newsletter: Path,
) -> None:
    path = newsletter / "issues" / "upper.yaml"
    issue = PLACEHOLDER_ISSUE.replace("Dear {{", "Hi {{ recipient.first_name.upper() }}, {{")
    path.write_text(issue, encoding="utf-8")
    made = factory(load_settings(newsletter), render(newsletter, path))
    assert "Hi SAM," in contents(parse(made.build(SAM, now=NOW)))[0]
    with pytest.raises(MessageError, match="failed for nobody@x"):
        made.build({"email": "nobody@x.org"}, now=NOW)
