"""Email addresses: one sendable address, its identity, and its form on the wire.

Domains are encoded with IDNA 2008 (UTS #46, non-transitional), as mail servers and browsers
do today. Python's built-in "idna" codec is IDNA 2003, which maps straße.de to strasse.de:
another domain, so a message to the wrong mailbox.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata

import idna

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
# RFC 5321 4.1.2: Local-part = Dot-string; Dot-string = Atom *("." Atom); atext from RFC 5322.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_STRING = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")
SEPARATORS = re.compile(r"[,;\s]+")


def validate_address(text: str) -> str | None:
    """Return why text is not exactly one sendable address, or None when it is."""
    address = text.strip()
    if not address:
        return "no address"
    if "<" in address or ">" in address:
        return "write the address alone, without a display name or <>"
    if address.startswith('"'):
        # RFC 5321 allows a Quoted-string local part, but it is almost always a paste
        # accident, and many servers and address books mishandle it.
        return 'a quoted part before "@" is not accepted; write the address without quotes'
    parts = [part for part in SEPARATORS.split(address) if part]
    if len(parts) > 1:
        if sum("@" in part for part in parts) > 1:
            return "several addresses in one cell; put one address per row"
        return "contains a space, comma or semicolon"
    local, at, domain = address.rpartition("@")
    if not at:
        return 'no "@"'
    if "@" in local:
        return f'{address.count("@")} "@" signs; an address has exactly one'
    if not local:
        return 'nothing before "@"'
    if not domain:
        return 'nothing after "@"'
    return _local_problem(local) or _domain_problem(local, domain)


def address_key(address: str) -> str:
    """Return an address's identity: lower case, the domain in its IDNA (xn--) form.

    bob@bücher.de and BOB@xn--bcher-kva.de are one mailbox on the wire, so one recipient,
    and unsubscribing either form stops both.
    """
    local, _at, domain = unicodedata.normalize("NFC", address.strip()).rpartition("@")
    with contextlib.suppress(UnicodeError):  # an invalid one keeps its form; it is reported
        domain = ascii_domain(domain)
    return f"{local}@{domain}".lower()


def ascii_domain(domain: str) -> str:
    """Return the domain as it goes on the wire; raise UnicodeError when it cannot."""
    return domain if domain.isascii() else _encode_domain(domain)


def wire_address(address: str) -> str:
    """Return the address as SMTP and headers carry it: the domain in ASCII (IDNA 2008).

    Raise ValueError for a local part that is not ASCII: that needs SMTPUTF8 (RFC 6531),
    which we do not use.
    """
    local, _at, domain = address.strip().rpartition("@")
    if not local.isascii():
        raise ValueError(f'"{address}": use an address with an ASCII part before the @')
    return f"{local}@{ascii_domain(domain)}"


@functools.lru_cache(maxsize=4096)
def _encode_domain(domain: str) -> str:
    return idna.encode(domain, uts46=True, transitional=False).decode("ascii")


def _local_problem(local: str) -> str | None:
    if len(local) > 64:
        return "the part before @ is longer than 64 characters (RFC 5321)"
    bad = _NOT_ATEXT.search(local)
    if bad:
        return f"the part before @ may not contain {bad.group()!r}"
    if not _DOT_STRING.fullmatch(local):
        return "the part before @ may not start or end with a dot or have two dots in a row"
    return None


def _domain_problem(local: str, domain: str) -> str | None:
    problem, length = _check_domain(domain)
    if problem is None and len(local) + 1 + length > 254:
        return "longer than 254 characters (RFC 5321)"
    return problem


@functools.lru_cache(maxsize=4096)
def _check_domain(domain: str) -> tuple[str | None, int]:
    """Return why the domain is invalid (or None) and its ASCII length; lists share domains."""
    try:
        encoded = ascii_domain(domain)
    except UnicodeError:
        return f'"{domain}" is not a valid domain', 0
    labels = encoded.split(".")
    if len(labels) < 2:
        return f'the domain "{domain}" has no dot', 0
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return f'"{domain}" is not a valid domain', 0
    return None, len(encoded)
