"""Addresses: one home for validation, identity and the wire form (IDNA 2008)."""

from __future__ import annotations

import pytest

from mailer.addresses import address_key, ascii_domain, validate_address, wire_address


@pytest.mark.parametrize(
    ("address", "wire"),
    [
        # IDNA 2003 (Python's "idna" codec) maps ß to ss: strasse.de, another domain.
        ("anna@straße.de", "anna@xn--strae-oqa.de"),
        ("bob@bücher.example", "bob@xn--bcher-kva.example"),
        ("BOB@BÜCHER.example", "BOB@xn--bcher-kva.example"),
        ("plain@example.org", "plain@example.org"),
    ],
)
def test_the_wire_form_uses_idna_2008(address: str, wire: str) -> None:
    assert validate_address(address) is None
    assert wire_address(address) == wire


def test_the_two_forms_of_one_domain_are_one_identity() -> None:
    assert address_key("Anna@Straße.de") == address_key("anna@xn--strae-oqa.de")
    assert address_key("anna@straße.de") != address_key("anna@strasse.de")


def test_a_domain_idna_2008_refuses_is_an_invalid_address() -> None:
    # Symbols were valid in IDNA 2003 and are not in IDNA 2008.
    assert validate_address("x@☃.example") == '"☃.example" is not a valid domain'
    with pytest.raises(UnicodeError):
        ascii_domain("☃.example")


def test_a_non_ascii_local_part_is_refused_everywhere() -> None:
    assert validate_address("zoë@example.org") is not None
    with pytest.raises(ValueError, match="ASCII part before the @"):
        wire_address("zoë@example.org")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("@x@example.org", '2 "@" signs; an address has exactly one'),
        ("a@@b.org", '2 "@" signs; an address has exactly one'),
        ("ann@x.org@y.org", '2 "@" signs; an address has exactly one'),
        ("a@b@c@d.org", '3 "@" signs; an address has exactly one'),
        ('"quoted"@x.org', 'a quoted part before "@" is not accepted'),
        ('"ann smith"@x.org', 'a quoted part before "@" is not accepted'),
        ('a"b@x.org', "may not contain '\"'"),
        ("a\\b@x.org", "may not contain '\\\\'"),
        (".ann@x.org", "may not start or end with a dot"),
        ("ann.@x.org", "may not start or end with a dot"),
        ("ann@[192.0.2.1]", '"[192.0.2.1]" is not a valid domain'),
    ],
)
def test_only_one_dot_string_at_one_domain_is_an_address(address: str, reason: str) -> None:
    # RFC 5321 4.1.2: Mailbox = Local-part "@" Domain; we accept only the Dot-string form.
    assert reason in (validate_address(address) or "no reason given")


@pytest.mark.parametrize(
    "address", ["o'neil@x.org", "a+tag@x.org", "{x}|~@x.org", "#!$%&*/=?^_`-@x.org", "a.b.c@x.org"]
)
def test_every_atom_character_of_rfc_5322_is_allowed(address: str) -> None:
    assert validate_address(address) is None
