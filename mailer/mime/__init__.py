"""Per-recipient MIME messages, built cheaply from parts encoded once per issue (pure, no I/O)."""

from mailer.mime.factory import TEST_PREFIX, BuiltMessage, MessageFactory
from mailer.mime.headers import MessageError
from mailer.mime.quoted_printable import encode_part
from mailer.mime.tokens import (
    read_unsubscribe_token,
    unsubscribe_token,
    verify_unsubscribe_token,
)

__all__ = [
    "TEST_PREFIX",
    "BuiltMessage",
    "MessageError",
    "MessageFactory",
    "encode_part",
    "read_unsubscribe_token",
    "unsubscribe_token",
    "verify_unsubscribe_token",
]
