"""Unsubscribe tokens (RFC 8058): proof that a one-click link was ours for this address."""

from __future__ import annotations

import base64
import hashlib
import hmac


def unsubscribe_token(secret: str, list_id: str, address_key: str) -> str:
    """Return the token that proves an unsubscribe link was ours for this address (RFC 8058)."""
    message = f"mailer-unsubscribe-v1\0{list_id}\0{address_key.strip().lower()}"
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_unsubscribe_token(secret: str, list_id: str, address_key: str, token: str) -> bool:
    """Say whether token is the one for this address, in constant time."""
    expected = unsubscribe_token(secret, list_id, address_key).encode("ascii")
    return hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass"))
