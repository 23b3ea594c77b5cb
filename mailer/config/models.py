"""The settings model: every key mailer.toml can hold, checked when it is read."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from mailer.addresses import validate_address, wire_address
from mailer.values import line_problem, parse_duration

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LIST_ID = re.compile(rf"^{_ATOM}(?:\.{_ATOM})+$")  # RFC 2919 2: a dot-atom with a dot
# The secret signs every unsubscribe token (HMAC-SHA256): 32 characters of token_urlsafe
# are 192 bits, beyond guessing; a short one lets anyone unsubscribe anyone.
SECRET_MIN_LENGTH = 32
MAKE_SECRET = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'


def _address(value: str) -> str:
    problem = validate_address(value)
    if problem:
        raise ValueError(f'"{value}" is not an email address: {problem}')
    try:
        wire_address(value)  # the form SMTP and the headers carry
    except UnicodeError:
        raise ValueError(f'"{value}": the domain cannot be written in ASCII (IDNA)') from None
    return value.strip()


# One address, checked as recipients' are (no display name; IDNA domains allowed).
Address = Annotated[str, AfterValidator(_address)]
Colour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
WebUrl = Annotated[str, Field(pattern=r"^https?://[^\s<>\"']+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Brand(_Strict):
    """The look: a logo and one or two colours."""

    logo: WebUrl | None = None
    logo_alt: str | None = None
    logo_width: int = Field(default=160, ge=16, le=600)
    primary_colour: Colour = "#1d4e89"
    accent_colour: Colour = "#b3261e"


class Smtp(_Strict):
    """How to reach the organisation's SMTP relay."""

    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = Field(default=None, exclude=True)
    ca_file: Path | None = None
    allow_insecure: bool = False
    timeout: float = Field(default=30.0, gt=0)

    @property
    def effective_port(self) -> int:
        """Return the port, defaulting by security (587, 465 or 25)."""
        if self.port is not None:
            return self.port
        return {"starttls": 587, "ssl": 465, "none": 25}[self.security]


class Limits(_Strict):
    """How fast and over how many connections to send."""

    per_second: float = Field(default=10.0, gt=0)
    per_minute: int | None = Field(default=None, gt=0)
    per_hour: int | None = Field(default=None, gt=0)
    per_day: int | None = Field(default=None, gt=0)
    connections: int = Field(default=1, ge=1, le=16)
    messages_per_connection: int = Field(default=100, ge=1)
    max_consecutive_failures: int = Field(default=10, ge=1)
    retries: int = Field(default=3, ge=0, le=10)
    retry_delay: float = Field(default=2.0, ge=0)


class Schedule(_Strict):
    """How `mailer send-due` (run by cron) treats scheduled issues."""

    max_lateness: str = "6h"
    every_minutes: int = Field(default=5, ge=1, le=60)

    @field_validator("max_lateness")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class Inbox(_Strict):
    """The return mailbox `mailer inbox --imap` reads: bounces, complaints, unsubscribe mails."""

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str | None = None
    password: SecretStr | None = Field(default=None, exclude=True)
    folder: str = "INBOX"
    processed_folder: str = "mailer-processed"
    ca_file: Path | None = None
    allow_insecure: bool = False
    timeout: float = Field(default=30.0, gt=0)

    @property
    def effective_port(self) -> int:
        """Return the port, defaulting by security (993, or 143)."""
        return self.port or (993 if self.security == "ssl" else 143)


class Archive(_Strict):
    """How the web archive is published after every send (and by `mailer archive`)."""

    # A folder to copy the archive into: a web server's document root, a mounted share.
    publish_dir: Path | None = None
    # A command run without a shell (a list of words, or one line split as a shell would),
    # in the newsletter folder: an rsync or `aws s3 sync` line. {archive_dir} is replaced.
    publish_command: list[str] | None = None
    publish_timeout: float = Field(default=300.0, gt=0)

    @field_validator("publish_command", mode="before")
    @classmethod
    def _words(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as err:
                raise ValueError(f"cannot split into words ({err}); check the quotes") from None
        if isinstance(value, list) and not value:
            raise ValueError("empty; remove it, or name the program to run")
        return value

    @property
    def publishes(self) -> bool:
        """Say whether anything publishes the archive (so the email may link to it)."""
        return self.publish_dir is not None or self.publish_command is not None


class RecipientList(_Strict):
    """The list: its file, and what a scheduled send does with rows it cannot use."""

    file: Path = Path("recipients.csv")
    skip_invalid: bool = False


def _recipients_table(value: object) -> object:
    # `recipients = "list.csv"` (the first form of the setting) is the table's file.
    return {"file": value} if isinstance(value, str | Path) else value


class Settings(_Strict):
    """Everything mailer.toml can say."""

    name: str
    organisation: str
    postal_address: str
    from_address: Address = Field(alias="from")
    from_name: str | None = None
    reply_to: Address | None = None
    list_id: str
    layout: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    recipients: Annotated[RecipientList, BeforeValidator(_recipients_table)] = RecipientList()
    unsubscribe_mailto: Address | None = None
    unsubscribe_url: Annotated[str, Field(pattern=r"^https://[^\s<>\"']+$")] | None = None
    archive_url: WebUrl | None = None
    language: str = Field(default="en-GB", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    timezone: str = "Europe/London"
    brand: Brand = Brand()
    smtp: Smtp = Smtp()
    limits: Limits = Limits()
    schedule: Schedule = Schedule()
    inbox: Inbox = Inbox()
    archive: Archive = Archive()
    # Who is told by email after unattended sends and when one is held, late or stopped.
    notify: list[Address] = Field(default_factory=list)
    notify_manual: bool = False  # also after `mailer send` by hand
    # batched: one fsync per batch of reservations; strict: one per message (see mailer.ledger)
    durability: Literal["batched", "strict"] = "batched"
    unsubscribe_secret: SecretStr | None = Field(default=None, exclude=True)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("name", "organisation", "from_name", "list_id")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        problem = None if value is None else line_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str) -> str:
        if not LIST_ID.match(value):
            raise ValueError(
                f'"{value}" is not a list id; use a name under your domain such as '
                "news.example.org (RFC 2919)"
            )
        return value

    @field_validator("unsubscribe_url")
    @classmethod
    def _header_safe_url(cls, value: str | None) -> str | None:
        if value is not None and not value.isascii():
            raise ValueError("percent-encode what is not ASCII: it goes in a header")
        problem = None if value is None else line_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("unsubscribe_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Never put the value (or its length) in the message: it ends up in logs and cron mail.
        if value is not None and len(value.get_secret_value().strip()) < SECRET_MIN_LENGTH:
            raise ValueError(
                f"shorter than {SECRET_MIN_LENGTH} characters; make one with {MAKE_SECRET} "
                "and keep it for every send (unsubscribe links already sent were made with "
                "the old one: let your unsubscribe page accept both for a while)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'unknown time zone "{value}" (use a name like Europe/London)'
            ) from None
        return value

    @model_validator(mode="after")
    def _needs_unsubscribe(self) -> Settings:
        if self.unsubscribe_mailto is None and self.unsubscribe_url is None:
            raise ValueError("set unsubscribe_mailto or unsubscribe_url (or both)")
        return self

    @property
    def sender_domain(self) -> str:
        """Return the domain of the From address."""
        return self.from_address.rpartition("@")[2].lower()

    @property
    def zone(self) -> ZoneInfo:
        """Return the newsletter's time zone."""
        return ZoneInfo(self.timezone)
