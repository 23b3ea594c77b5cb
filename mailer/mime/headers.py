"""Format and check header values: RFC 2047 encoded words, folding, refusals of injected lines."""

from __future__ import annotations

import re
import string

from mailer.errors import MailerError, SettingsError
from mailer.values import line_problem

MAX_LINE = 78  # RFC 5322 2.1.1: SHOULD; 998 is the MUST
# RFC 2047 5(3): what an encoded word may carry unencoded anywhere, even in a phrase.
_Q_SAFE = frozenset(string.ascii_letters + string.digits + "!*+-/")
_Q_ROOM = 57  # "Subject: =?utf-8?q?" + 57 + "?=" is 78 characters
_SUBJECT_ROOM = MAX_LINE - len("Subject: ")
_FOLD_AT = re.compile(r"(?= [^ ])")  # before a space that starts a word (RFC 5322 3.2.2 FWS)


class MessageError(MailerError):
    """A header value for one recipient that we refuse to send."""


def needs_encoding(text: str) -> bool:
    """Say whether text must go as encoded words: not ASCII, or holding a literal "=?"."""
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


def text_value(text: str) -> str:
    """Return unstructured text (RFC 5322 3.2.5) as it goes in a header, foldable under 78."""
    if needs_encoding(text) or any(len(word) > _SUBJECT_ROOM for word in _FOLD_AT.split(text)):
        return " ".join(_encoded_words(text))
    return text


def phrase(name: str) -> str:
    """Return a display name as an RFC 5322 quoted string, or RFC 2047 encoded words."""
    if needs_encoding(name):
        return " ".join(_encoded_words(name))
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_fixed_header(name: str, value: str) -> bytes:
    """Format a header that is the same for every recipient; raise SettingsError."""
    problem = line_problem(value)
    if problem:
        raise SettingsError(f"mailer.toml: the {name} header {problem}; retype it")
    try:
        return format_header(name, value, "mailer.toml")
    except MessageError as err:
        raise SettingsError(str(err)) from None


def format_header(name: str, value: str, who: str) -> bytes:
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


def check_header_line(line: bytes, name: str, who: str) -> None:
    """Refuse a formatted header unless it is exactly one header field (RFC 5322 2.2).

    It must start with its name, end with CRLF, fold only before a space or tab, hold no
    other CR or LF, and keep every line under 998 characters.
    """
    body = line[:-2]
    folded = body.replace(b"\r\n ", b"  ").replace(b"\r\n\t", b" \t")
    if (
        not line.startswith(name.encode("ascii") + b": ")
        or not line.endswith(b"\r\n")
        or b"\r" in folded
        or b"\n" in folded
    ):
        raise MessageError(
            f"{who}: the headers came out as more than one {name} field (a line break not "
            "followed by a space); refusing to send"
        )
    if max(len(part) for part in body.split(b"\r\n")) > 998:
        raise MessageError(f"{who}: {name}: a line longer than 998 characters (RFC 5322 2.1.1)")
