"""The newsletter's settings: mailer.toml, overridden by MAILER_* environment variables."""

from mailer.config.models import (
    LIST_ID,
    SECRET_MIN_LENGTH,
    Brand,
    Inbox,
    Limits,
    Schedule,
    Settings,
    Smtp,
)
from mailer.config.read import key_line, read_settings
from mailer.config.unattended import Archive, RecipientList

__all__ = [
    "LIST_ID",
    "SECRET_MIN_LENGTH",
    "Archive",
    "Brand",
    "Inbox",
    "Limits",
    "RecipientList",
    "Schedule",
    "Settings",
    "Smtp",
    "key_line",
    "read_settings",
]
