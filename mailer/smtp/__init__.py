"""SMTP: one connection that carries many messages; handshake (TLS, login, OAuth) and replies."""

from mailer.smtp.connection import DATA_TERMINATION_TIMEOUT, SmtpConnection, probe
from mailer.smtp.envelope import ConnectionLost, Envelope, Outcome, SenderRefused, is_transient
from mailer.smtp.oauth import LoginRefusedError, Tokens, token_source
from mailer.smtp.replies import Kind

__all__ = [
    "DATA_TERMINATION_TIMEOUT",
    "ConnectionLost",
    "Envelope",
    "Kind",
    "LoginRefusedError",
    "Outcome",
    "SenderRefused",
    "SmtpConnection",
    "Tokens",
    "is_transient",
    "probe",
    "token_source",
]
