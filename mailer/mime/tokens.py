"""Unsubscribe tokens (RFC 8058): opaque, and only the holder of the secret reads the address.

A token is the recipient's address key sealed with AES-SIV (RFC 5297, from the `cryptography`
package) under a key derived by HKDF-SHA256 from MAILER_UNSUBSCRIBE_SECRET and the list id.
SIV is deterministic authenticated encryption: the same recipient gets the same token in every
message (a retry's bytes stay identical), a changed byte fails to open, and nothing in the URL
shows the address. Tokens made before this (an HMAC next to `email=` in the URL) still verify,
so the links in issues already sent keep working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"mailer-unsubscribe-v2"
_MAX_TOKEN = 400  # an address is at most 254 octets: longer is not ours, and not worth opening


@lru_cache(maxsize=8)  # one key a list: derived once, not twice a message
def _cipher(secret: str, list_id: str) -> AESSIV:
    key = HKDF(hashes.SHA256(), 64, salt=None, info=_INFO + b"\0" + list_id.encode()).derive(
        secret.encode("utf-8")
    )
    return AESSIV(key)  # a 512-bit key: AES-256-SIV


def _normal(address_key: str) -> str:
    return address_key.strip().lower()


def unsubscribe_token(secret: str, list_id: str, address_key: str) -> str:
    """Return the opaque token that carries this address to the holder of the secret."""
    sealed = _cipher(secret, list_id).encrypt(_normal(address_key).encode("utf-8"), None)
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def read_unsubscribe_token(secret: str, list_id: str, token: str) -> str | None:
    """Return the address key a token carries, or None when it is not one of ours."""
    if not token or len(token) > _MAX_TOKEN or not token.isascii():
        return None
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        opened = _cipher(secret, list_id).decrypt(sealed, None)
        return opened.decode("utf-8")
    except (InvalidTag, ValueError, binascii.Error):
        return None


def verify_unsubscribe_token(secret: str, list_id: str, address_key: str, token: str) -> bool:
    """Say whether token is this address's, in constant time (older HMAC tokens too)."""
    opened = read_unsubscribe_token(secret, list_id, token)
    if opened is not None:
        return hmac.compare_digest(opened.encode(), _normal(address_key).encode())
    expected = _legacy_token(secret, list_id, address_key).encode("ascii")
    return hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass"))


def _legacy_token(secret: str, list_id: str, address_key: str) -> str:
    """Return the HMAC token of the first release, which travelled next to `email=`."""
    message = f"mailer-unsubscribe-v1\0{list_id}\0{_normal(address_key)}"
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
