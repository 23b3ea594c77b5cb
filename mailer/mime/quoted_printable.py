"""Encode text as quoted-printable (RFC 2045 6.7) in pieces that join on soft line breaks."""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable

SOFT_BREAK = b"=\r\n"
QP_LINE = 76  # RFC 2045 6.7 rule 5, not counting CRLF
LINE_ENDS = re.compile(r"\r\n?")


def encode_part(text: str) -> bytes:
    """Return text as UTF-8 quoted-printable with CRLF line ends, as it goes on the wire.

    The rendered HTML is one ~40 KB line: 7bit would break RFC 5322's 998-octet limit.
    binascii's C encoder is ~100x faster than the email package's pure-Python one.
    """
    normalised = LINE_ENDS.sub("\n", text) if "\r" in text else text
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


def encode_pieces(pieces: tuple[str | int, ...]) -> tuple[bytes | int, ...]:
    """Encode the static pieces of a document, each ending on a fresh line."""
    last = len(pieces) - 1
    return tuple(
        piece if isinstance(piece, int) else _with_soft_break(encode_part(piece), i == last)
        for i, piece in enumerate(pieces)
    )


def fill_pieces(
    out: list[bytes],
    items: tuple[bytes | int, ...],
    values: list[bytes],
    finish: Callable[[bytes], bytes] | None = None,
) -> None:
    """Append a part's encoded static pieces and one recipient's encoded values to out.

    finish, if given, is applied to each value's piece as it goes in (dot-stuffing).
    """
    last = len(items) - 1
    for i, item in enumerate(items):
        if isinstance(item, bytes):
            out.append(item)
            continue
        piece = _with_soft_break(values[item], i == last)
        out.append(piece if finish is None else finish(piece))


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
