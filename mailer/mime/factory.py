"""Build each recipient's MIME message: pure, no I/O, cheap per recipient.

Once per issue, MessageFactory.prepare formats the fixed headers and encodes every static piece of
the text and HTML parts as quoted-printable, and dot-stuffs it for SMTP. Per recipient, build()
only encodes (and stuffs) the short placeholder values and lists the pieces: QP allows a soft
line break ("=" CRLF, RFC 2045 6.7 rule 5) anywhere, so every encoded chunk ends with one and the
next starts on a fresh line, and the decoded join is exactly the personalised text.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr
from functools import cached_property

from mailer.addresses import address_key, ascii_domain, validate_address, wire_address
from mailer.config import Settings
from mailer.errors import SettingsError, TemplateError
from mailer.mime.headers import (
    MessageError,
    check_header_line,
    format_fixed_header,
    format_header,
    needs_encoding,
    phrase,
    text_value,
)
from mailer.mime.quoted_printable import LINE_ENDS, encode_part, encode_pieces, fill_pieces
from mailer.mime.tokens import unsubscribe_token
from mailer.render import InlineImage, Rendered
from mailer.values import line_problem

TEST_PREFIX = "[TEST] "
_PART_HEADERS = (
    'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
)


@dataclass(frozen=True)
class BuiltMessage:
    """One recipient's message, in pieces joined when asked for.

    Each piece starts a line, or starts with CRLF: dot-stuffed one by one, they are the
    message dot-stuffed.
    """

    recipient: str  # the To address (its domain in ASCII, as it goes on the wire)
    message_id: str
    subject: str
    chunks: tuple[bytes, ...]
    stuffed: tuple[bytes, ...]  # the same pieces dot-stuffed (most of them once per issue)

    @cached_property
    def data(self) -> bytes:
        """Return the message (for a file, or a test)."""
        return b"".join(self.chunks)

    @cached_property
    def wire(self) -> bytes:
        """Return the message as SMTP DATA carries it: dot-stuffed (RFC 5321 4.5.2), ending
        in CRLF, without the final dot."""
        return b"".join(self.stuffed)


def stuff_dots(chunk: bytes) -> bytes:
    """Return a piece that starts a line with the "." doubled at the start of any of its lines."""
    if chunk.startswith(b"."):
        chunk = b"." + chunk
    return chunk.replace(b"\n.", b"\n..") if b"\n." in chunk else chunk


class MessageFactory:
    """One issue's MIME structure, encoded once; build() fills in one recipient."""

    def __init__(
        self, settings: Settings, rendered: Rendered, issue_id: str, secret: str, test: bool
    ) -> None:
        self._settings = settings
        self._rendered = rendered
        self._issue_id = issue_id
        self._secret = secret
        self._test = test
        self._domain = ascii_domain(settings.sender_domain)
        self._issue_label = re.sub(r"[^A-Za-z0-9-]+", "-", issue_id).strip("-")[:40] or "issue"
        self._mailto = (
            f"mailto:{wire_address(settings.unsubscribe_mailto)}?subject=unsubscribe"
            if settings.unsubscribe_mailto
            else None
        )
        self._text = encode_pieces(rendered.text.pieces)
        self._html = encode_pieces(rendered.html.pieces)
        # Dot-stuffed once here: a newsletter's ~90 KB would cost more to stuff than to build.
        self._text_stuffed = _stuffed(self._text)
        self._html_stuffed = _stuffed(self._html)
        digest = hashlib.sha256(issue_id.encode("utf-8"))
        for chunk in (*self._text, *self._html):
            digest.update(chunk if isinstance(chunk, bytes) else b"%d" % chunk)
        for image in rendered.images:
            digest.update(image.content_id.encode("ascii"))
        # "=_" never occurs in QP output (RFC 2045 6.7), so no content line can match it.
        boundary = f"=_mailer_{digest.hexdigest()[:32]}"
        headers = _fixed_headers(settings, boundary)
        # Fixed headers are formatted here; a str names one that build() formats per recipient.
        self._layout = [
            name if value is None else format_fixed_header(name, value) for name, value in headers
        ]
        self._start_text = f"\r\n--{boundary}\r\n{_PART_HEADERS.format('plain')}".encode("ascii")
        self._start_html = f"\r\n--{boundary}\r\n{_PART_HEADERS.format('html')}".encode("ascii")
        self._close = f"\r\n--{boundary}--\r\n".encode("ascii")
        if rendered.images:
            self._start_html, self._close = _related(boundary, rendered.images)

    @classmethod
    def prepare(
        cls,
        settings: Settings,
        rendered: Rendered,
        issue_id: str,
        *,
        unsubscribe_secret: str | None,
        test: bool = False,
    ) -> MessageFactory:
        """Encode the issue's fixed headers and static text once; raise SettingsError."""
        if settings.unsubscribe_url and not unsubscribe_secret:
            raise SettingsError(
                "MAILER_UNSUBSCRIBE_SECRET is not set: unsubscribe_url is set, so every "
                "recipient's unsubscribe link carries a signed token (RFC 8058); set it to a long "
                "random string and keep it the same between sends, e.g. the output of "
                '`python3 -c "import secrets; print(secrets.token_urlsafe(32))"`'
            )
        return cls(settings, rendered, issue_id, unsubscribe_secret or "", test)

    @property
    def envelope_sender(self) -> str:
        """Return the From address as SMTP's MAIL FROM carries it (IDNA domain)."""
        return wire_address(self._settings.from_address)

    def message_id(self, recipient_key: str) -> str:
        """Return the Message-ID for this recipient: the same on every retry, no address in it."""
        # A proof must not share the real send's id: Gmail drops a Message-ID it has seen.
        seed = f"{self._settings.list_id}\0{self._issue_id}\0{self._test}\0{recipient_key}"
        digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
        return f"<{digest}.{self._issue_label}@{self._domain}>"

    def unsubscribe_url(self, address_key: str) -> str:
        """Return this recipient's one-click unsubscribe URL, or the mailto one."""
        return self._links(address_key)[0]

    def unsubscribe_mailto(self, address_key: str) -> str | None:
        """Return the mailto link, its subject carrying this recipient's token when we can."""
        return self._links(address_key)[1]

    def _links(self, address_key: str) -> tuple[str, str | None]:
        """Return the unsubscribe URL (the mailto link without one) and the mailto link."""
        token = (
            unsubscribe_token(self._secret, self._settings.list_id, address_key)
            if self._secret
            else None
        )
        mailto = self._mailto
        if mailto is not None and token is not None:
            # The token, not the From of the request, says who leaves: one reader cannot
            # unsubscribe another, and a forwarded link still unsubscribes the right one.
            mailto = f"{mailto}%20{token}"
        base = self._settings.unsubscribe_url
        if base is None:
            return mailto or "", mailto
        separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
        return f"{base}{separator}token={token}", mailto  # opaque: no address in the URL

    def build(self, fields: Mapping[str, str], *, now: datetime) -> BuiltMessage:
        """Return one recipient's message; raise MessageError for a header we refuse."""
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        address = fields["email"].strip()
        problem = validate_address(address) or line_problem(address)
        if problem:
            raise MessageError(f"{address!r}: To: not a single plain address ({problem})")
        to_address = wire_address(address)
        key = address_key(address)
        # One line break is one line break: a CR ending a field must not pair with an LF
        # after its placeholder (on the wire every line break is CRLF).
        if any("\r" in value for value in fields.values()):
            fields = {name: LINE_ENDS.sub("\n", value) for name, value in fields.items()}
        unsubscribe, mailto = self._links(key)
        try:
            values = self._rendered.table.evaluate(fields, {"unsubscribe_url": unsubscribe})
        except TemplateError as err:  # this recipient's data, e.g. a number that is not one
            raise MessageError(str(err)) from err
        subject = self._rendered.subject.fill(values, escape=False)
        subject = TEST_PREFIX + subject if self._test else subject
        problem = line_problem(subject)
        if problem:
            raise MessageError(f"{address}: Subject: {problem}; refusing to send")
        message_id = self.message_id(key)
        links = [f"<{unsubscribe}>"] if self._settings.unsubscribe_url else []
        links += [f"<{mailto}>"] if mailto else []
        personal = {
            "To": format_header("To", to_address, address),
            "Subject": format_header("Subject", text_value(subject), address),
            "Date": f"Date: {format_datetime(now)}\r\n".encode("ascii"),
            "Message-ID": f"Message-ID: {message_id}\r\n".encode("ascii"),
            "List-Unsubscribe": format_header("List-Unsubscribe", ", ".join(links), address),
        }
        # Check each per-recipient header as formatted: an injected or doubled header is
        # refused, whatever slipped past the checks above. The fixed ones were checked once.
        for name, line in personal.items():
            check_header_line(line, name, address)
        # Header lines never start with "." (a folded line starts with a space): the head is
        # its own stuffed form. Every piece of the parts starts a line (see encode_pieces).
        head = [item if isinstance(item, bytes) else personal[item] for item in self._layout]
        text = [encode_part(value) for value in values]
        markup = [encode_part(html.escape(value)) for value in values]
        chunks, stuffed = [*head, self._start_text], [*head, self._start_text]
        fill_pieces(chunks, self._text, text)
        fill_pieces(stuffed, self._text_stuffed, text, stuff_dots)
        for out in (chunks, stuffed):
            out.append(self._start_html)
        fill_pieces(chunks, self._html, markup)
        fill_pieces(stuffed, self._html_stuffed, markup, stuff_dots)
        for out in (chunks, stuffed):
            out.append(self._close)
        return BuiltMessage(to_address, message_id, subject, tuple(chunks), tuple(stuffed))


def _stuffed(pieces: tuple[bytes | int, ...]) -> tuple[bytes | int, ...]:
    return tuple(stuff_dots(piece) if isinstance(piece, bytes) else piece for piece in pieces)


def _related(boundary: str, images: tuple[InlineImage, ...]) -> tuple[bytes, bytes]:
    """Return the HTML part's start and the message's end when images travel inside it.

    multipart/alternative holds the text, then multipart/related: the HTML and its images,
    each with the Content-ID its cid: link names (RFC 2387, RFC 2392). The images are
    base64-encoded here, once per issue.
    """
    related = f"{boundary}_related"  # "=_" never occurs in QP or base64 content
    start = (
        f"\r\n--{boundary}\r\n"
        f'Content-Type: multipart/related; boundary="{related}"; type="text/html"\r\n\r\n'
        f"--{related}\r\n{_PART_HEADERS.format('html')}"
    ).encode("ascii")
    parts = []
    for image in images:
        encoded = base64.encodebytes(image.data).replace(b"\n", b"\r\n")  # 76-character lines
        parts.append(
            (
                f"\r\n--{related}\r\n"
                f'Content-Type: {image.content_type}; name="{image.filename}"\r\n'
                "Content-Transfer-Encoding: base64\r\n"
                f"Content-ID: <{image.content_id}>\r\n"
                f'Content-Disposition: inline; filename="{image.filename}"\r\n\r\n'
            ).encode("ascii")
            + encoded.rstrip(b"\r\n")
        )
    end = f"\r\n--{related}--\r\n--{boundary}--\r\n".encode("ascii")
    return start, b"".join(parts) + end


def _fixed_headers(settings: Settings, boundary: str) -> list[tuple[str, str | None]]:
    """Return the headers in order, with the value of those the same for every recipient."""
    name, sender = settings.from_name or settings.name, wire_address(settings.from_address)
    plain = formataddr((name, sender))  # quotes the name when it has specials (RFC 5322 3.4)
    headers: list[tuple[str, str | None]] = [
        ("From", f"{phrase(name)} <{sender}>" if needs_encoding(name) else plain),
        ("To", None), ("Subject", None), ("Date", None), ("Message-ID", None),
    ]  # fmt: skip
    if settings.reply_to:
        headers.append(("Reply-To", wire_address(settings.reply_to)))
    headers += [("List-Id", phrase(settings.name) + f" <{settings.list_id}>")]
    headers += [("List-Unsubscribe", None)]
    if settings.unsubscribe_url:
        # RFC 8058 3.1: one-click unsubscription by a POST to the https URL.
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return [
        *headers,
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
