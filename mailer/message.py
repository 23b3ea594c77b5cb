"""Build each recipient's MIME message: pure, no I/O, cheap per recipient.

Once per issue, MessageFactory.prepare formats the fixed headers and encodes every static piece of
the text and HTML parts as quoted-printable. Per recipient, build() only encodes the short
placeholder values and joins bytes: QP allows a soft line break ("=" CRLF, RFC 2045 6.7 rule 5)
anywhere, so every encoded chunk ends with one and the next starts on a fresh line, and the decoded
join is exactly the personalised text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, formataddr
from urllib.parse import quote

from mailer.config import Settings
from mailer.errors import MailerError, SettingsError, TemplateError
from mailer.recipients import address_key, validate_address
from mailer.render import Rendered

TEST_PREFIX = "[TEST] "
SOFT_BREAK = b"=\r\n"
MAX_LINE = 78  # RFC 5322 2.1.1: SHOULD; 998 is the MUST
QP_LINE = 76  # RFC 2045 6.7 rule 5, not counting CRLF
# Line breaks (header injection), other C0 and C1 controls, the Unicode line separators some
# clients break lines at, and lone surrogates (not encodable).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# RFC 2047 5(3): what an encoded word may carry unencoded anywhere, even in a phrase.
_Q_SAFE = frozenset(string.ascii_letters + string.digits + "!*+-/")
_Q_ROOM = 57  # "Subject: =?utf-8?q?" + 57 + "?=" is 78 characters
_SUBJECT_ROOM = MAX_LINE - len("Subject: ")
_FOLD_AT = re.compile(r"(?= [^ ])")  # before a space that starts a word (RFC 5322 3.2.2 FWS)
_LINE_ENDS = re.compile(r"\r\n?")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LIST_ID = re.compile(rf"^{_ATOM}(?:\.{_ATOM})+$")  # RFC 2919 2: a dot-atom with a dot
# The header names the feed parser finds do not depend on the policy; policy.default would also
# parse Content-Type when it closes (0.17 ms a message, more than all the rest of build()).
_PARSER = BytesHeaderParser(policy=compat32)
_PART_HEADERS = (
    'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
)


class MessageError(MailerError):
    """A header value for one recipient that we refuse to send."""


@dataclass(frozen=True)
class BuiltMessage:
    """One recipient's message, ready for SMTP DATA."""

    recipient: str  # the To address (its domain in ASCII, as it goes on the wire)
    message_id: str
    subject: str
    data: bytes


def encode_part(text: str) -> bytes:
    """Return text as UTF-8 quoted-printable with CRLF line ends, as it goes on the wire.

    The rendered HTML is one ~40 KB line: 7bit would break RFC 5322's 998-octet limit.
    binascii's C encoder is ~100x faster than the email package's pure-Python one.
    """
    normalised = _LINE_ENDS.sub("\n", text) if "\r" in text else text
    if "\n" in normalised:
        encoded = binascii.b2a_qp(normalised.replace("\n", "\r\n").encode("utf-8"), istext=True)
    else:
        # b2a_qp copies the input's first line end into its soft breaks; with none it uses LF.
        encoded = binascii.b2a_qp(normalised.encode("utf-8"), istext=True)
        encoded = encoded.replace(b"=\n", SOFT_BREAK)
    lines = encoded.split(b"\r\n")
    if max(map(len, lines)) <= QP_LINE:
        return encoded
    # b2a_qp writes a space or tab before a line end as =20 or =09 without checking the room
    # left, giving 77-character lines (SpamAssassin's MIME_QP_LONG_LINE); break them again.
    return b"\r\n".join(_refold(line) for line in lines)


def _refold(line: bytes) -> bytes:
    """Break an encoded line into lines of at most 76 with soft breaks, never inside =XY."""
    out = []
    while len(line) > QP_LINE:
        cut = QP_LINE - 1
        cut -= 1 if line[cut - 1 : cut] == b"=" else 2 if line[cut - 2 : cut - 1] == b"=" else 0
        out.append(line[:cut] + b"=")
        line = line[cut:]
    return b"\r\n".join([*out, line])


def unsubscribe_token(secret: str, list_id: str, address_key: str) -> str:
    """Return the token that proves an unsubscribe link was ours for this address (RFC 8058)."""
    message = f"mailer-unsubscribe-v1\0{list_id}\0{address_key.strip().lower()}"
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_unsubscribe_token(secret: str, list_id: str, address_key: str, token: str) -> bool:
    """Say whether token is the one for this address, in constant time."""
    expected = unsubscribe_token(secret, list_id, address_key).encode("ascii")
    return hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass"))


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
        self._domain = _ascii_domain(settings.sender_domain)
        self._issue_label = re.sub(r"[^A-Za-z0-9-]+", "-", issue_id).strip("-")[:40] or "issue"
        self._mailto = (
            f"mailto:{_ascii_address(settings.unsubscribe_mailto)}?subject=unsubscribe"
            if settings.unsubscribe_mailto
            else None
        )
        self._text = _encode_pieces(rendered.text.pieces)
        self._html = _encode_pieces(rendered.html.pieces)
        digest = hashlib.sha256(issue_id.encode("utf-8"))
        for chunk in (*self._text, *self._html):
            digest.update(chunk if isinstance(chunk, bytes) else b"%d" % chunk)
        # "=_" never occurs in QP output (RFC 2045 6.7), so no content line can match it.
        boundary = f"=_mailer_{digest.hexdigest()[:32]}"
        headers = _fixed_headers(settings, boundary)
        self._names = [name for name, _ in headers]
        # Fixed headers are formatted here; a str names one that build() formats per recipient.
        self._layout = [
            name if value is None else _fixed_header(name, value) for name, value in headers
        ]
        self._start_text = f"\r\n--{boundary}\r\n{_PART_HEADERS.format('plain')}".encode("ascii")
        self._start_html = f"\r\n--{boundary}\r\n{_PART_HEADERS.format('html')}".encode("ascii")
        self._close = f"\r\n--{boundary}--\r\n".encode("ascii")

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
        return _ascii_address(self._settings.from_address)

    def message_id(self, recipient_key: str) -> str:
        """Return the Message-ID for this recipient: the same on every retry, no address in it."""
        # A proof must not share the real send's id: Gmail drops a Message-ID it has seen.
        seed = f"{self._settings.list_id}\0{self._issue_id}\0{self._test}\0{recipient_key}"
        digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
        return f"<{digest}.{self._issue_label}@{self._domain}>"

    def unsubscribe_url(self, address_key: str) -> str:
        """Return this recipient's one-click unsubscribe URL, or the mailto one."""
        base = self._settings.unsubscribe_url
        if base is None:
            return self._mailto or ""
        token = unsubscribe_token(self._secret, self._settings.list_id, address_key)
        separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
        return f"{base}{separator}email={quote(address_key, safe='')}&token={token}"

    def build(self, fields: Mapping[str, str], *, now: datetime) -> BuiltMessage:
        """Return one recipient's message; raise MessageError for a header we refuse."""
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        address = fields["email"].strip()
        problem = validate_address(address) or _unsafe(address)
        if problem:
            raise MessageError(f"{address!r}: To: not a single plain address ({problem})")
        local, _, domain = address.rpartition("@")
        wire_address = f"{local}@{_ascii_domain(domain)}"
        key = address_key(address)
        # One line break is one line break: a CR ending a field must not pair with an LF
        # after its placeholder (on the wire every line break is CRLF).
        if any("\r" in value for value in fields.values()):
            fields = {name: _LINE_ENDS.sub("\n", value) for name, value in fields.items()}
        unsubscribe = self.unsubscribe_url(key)
        try:
            values = self._rendered.table.evaluate(fields, {"unsubscribe_url": unsubscribe})
        except TemplateError as err:  # this recipient's data, e.g. a number that is not one
            raise MessageError(str(err)) from err
        subject = self._rendered.subject.fill(values, escape=False)
        subject = TEST_PREFIX + subject if self._test else subject
        problem = _unsafe(subject)
        if problem:
            raise MessageError(f"{address}: Subject: {problem}; refusing to send")
        message_id = self.message_id(key)
        links = [f"<{unsubscribe}>"] if self._settings.unsubscribe_url else []
        links += [f"<{self._mailto}>"] if self._mailto else []
        personal = {
            "To": _header("To", wire_address, address),
            "Subject": _header("Subject", _text_value(subject), address),
            "Date": f"Date: {format_datetime(now)}\r\n".encode("ascii"),
            "Message-ID": f"Message-ID: {message_id}\r\n".encode("ascii"),
            "List-Unsubscribe": _header("List-Unsubscribe", ", ".join(links), address),
        }
        chunks = [item if isinstance(item, bytes) else personal[item] for item in self._layout]
        chunks.append(self._start_text)
        _fill(chunks, self._text, [encode_part(value) for value in values])
        chunks.append(self._start_html)
        _fill(chunks, self._html, [encode_part(html.escape(value)) for value in values])
        chunks.append(self._close)
        data = b"".join(chunks)
        # Parse the header section back: an injected or doubled header is refused, whatever
        # slipped past the checks above.
        names = _PARSER.parsebytes(data[: data.index(b"\r\n\r\n") + 4]).keys()
        if names != self._names:
            raise MessageError(
                f"{address}: the headers came out as {', '.join(names)}, not "
                f"{', '.join(self._names)}; refusing to send"
            )
        return BuiltMessage(wire_address, message_id, subject, data)


def _fixed_headers(settings: Settings, boundary: str) -> list[tuple[str, str | None]]:
    """Return the headers in order, with the value of those the same for every recipient."""
    if settings.unsubscribe_url and (
        not settings.unsubscribe_url.isascii() or _unsafe(settings.unsubscribe_url)
    ):
        raise SettingsError("mailer.toml: unsubscribe_url: percent-encode what is not ASCII")
    if not _LIST_ID.match(settings.list_id):
        raise SettingsError(
            f'mailer.toml: list_id: "{settings.list_id}" is not a list id; use a name under '
            "your domain such as news.example.org (RFC 2919)"
        )
    name, sender = settings.from_name or settings.name, _ascii_address(settings.from_address)
    plain = formataddr((name, sender))  # quotes the name when it has specials (RFC 5322 3.4)
    headers: list[tuple[str, str | None]] = [
        ("From", f"{_phrase(name)} <{sender}>" if _needs_encoding(name) else plain),
        ("To", None), ("Subject", None), ("Date", None), ("Message-ID", None),
    ]  # fmt: skip
    if settings.reply_to:
        headers.append(("Reply-To", _ascii_address(settings.reply_to)))
    headers += [("List-Id", _phrase(settings.name) + f" <{settings.list_id}>")]
    headers += [("List-Unsubscribe", None)]
    if settings.unsubscribe_url:
        # RFC 8058 3.1: one-click unsubscription by a POST to the https URL.
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return [
        *headers,
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]


def _encode_pieces(pieces: tuple[str | int, ...]) -> tuple[bytes | int, ...]:
    """Encode the static pieces of a document, each ending on a fresh line."""
    last = len(pieces) - 1
    return tuple(
        piece if isinstance(piece, int) else _with_soft_break(encode_part(piece), i == last)
        for i, piece in enumerate(pieces)
    )


def _with_soft_break(encoded: bytes, last: bool) -> bytes:
    """End encoded with a soft line break so the next chunk starts a line (RFC 2045 6.7)."""
    if last or not encoded or encoded.endswith(b"\r\n"):
        return encoded
    start = encoded.rfind(b"\n") + 1
    if len(encoded) - start < QP_LINE:
        return encoded + SOFT_BREAK
    # b2a_qp may end on a full 76-character line: move its last character or =XY escape down.
    cut = len(encoded) - (3 if encoded[-3:-2] == b"=" else 1)
    return encoded[:cut] + SOFT_BREAK + encoded[cut:] + SOFT_BREAK


def _fill(out: list[bytes], items: tuple[bytes | int, ...], values: list[bytes]) -> None:
    """Append a part's encoded static pieces and one recipient's encoded values to out."""
    last = len(items) - 1
    for i, item in enumerate(items):
        out.append(item if isinstance(item, bytes) else _with_soft_break(values[item], i == last))


def _unsafe(value: str) -> str | None:
    """Return why value may not go into a header, or None when it may."""
    found = _FORBIDDEN.search(value)
    if found:
        return f"contains the control character U+{ord(found.group()):04X}"
    if "=?" not in value:
        return None
    try:
        # CVE-2024-6923: Python 3.11.7's email package may turn such words into real line
        # breaks when it folds; a mail client may show them as breaks.
        decoded = "".join(
            part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
            for part, charset in decode_header(value)
        )
    except (ValueError, LookupError, HeaderParseError):
        return "contains a malformed encoded word (=?...?=)"
    found = _FORBIDDEN.search(decoded)
    if found:
        return f"contains an encoded word (RFC 2047) hiding U+{ord(found.group()):04X}"
    return None


def _needs_encoding(text: str) -> bool:
    # Encode literal "=?" too, so a reader shows it as typed and never decodes it.
    return not text.isascii() or "=?" in text


def _encoded_words(text: str) -> list[str]:
    """Return text as RFC 2047 Q encoded words of at most 69 characters, whole characters each."""
    words: list[str] = []
    current = ""
    for char in text:
        hexed = "=" + char.encode("utf-8").hex("=").upper()
        piece = char if char in _Q_SAFE else "_" if char == " " else hexed
        if len(current) + len(piece) > _Q_ROOM:
            words.append(current)
            current = ""
        current += piece
    return [f"=?utf-8?q?{word}?=" for word in [*words, current]]


def _text_value(text: str) -> str:
    """Return unstructured text (RFC 5322 3.2.5) as it goes in a header, foldable under 78."""
    if _needs_encoding(text) or any(len(word) > _SUBJECT_ROOM for word in _FOLD_AT.split(text)):
        return " ".join(_encoded_words(text))
    return text


def _phrase(name: str) -> str:
    """Return a display name as an RFC 5322 quoted string, or RFC 2047 encoded words."""
    if _needs_encoding(name):
        return " ".join(_encoded_words(name))
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ascii_address(address: str) -> str:
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise SettingsError(f'mailer.toml: "{address}": use an address with an ASCII local part')
    return f"{local}@{_ascii_domain(domain)}"


def _ascii_domain(domain: str) -> str:
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


def _fixed_header(name: str, value: str) -> bytes:
    """Format a header that is the same for every recipient; raise SettingsError."""
    problem = _unsafe(value)
    if problem:
        raise SettingsError(f"mailer.toml: the {name} header {problem}; retype it")
    try:
        return _header(name, value, "mailer.toml")
    except MessageError as err:
        raise SettingsError(str(err)) from None


def _header(name: str, value: str, who: str) -> bytes:
    """Return one header line, folded before words to stay under 78 characters (RFC 5322 2.2.3)."""
    line = f"{name}: {value}"
    if len(line) <= MAX_LINE:
        return f"{line}\r\n".encode("ascii")
    tokens = _FOLD_AT.split(value)
    lines = []
    line = f"{name}: {tokens[0]}"
    for token in tokens[1:]:
        if len(line) + len(token) > MAX_LINE:
            lines.append(line)
            line = token
        else:
            line += token
    lines.append(line)
    if max(map(len, lines)) > 998:
        raise MessageError(f"{who}: {name}: a line longer than 998 characters (RFC 5322 2.1.1)")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")
