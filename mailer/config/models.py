"""The settings model: every key mailer.toml can hold, checked when it is read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from mailer.addresses import validate_address, wire_address
from mailer.config.unattended import Archive, RecipientList, recipients_table
from mailer.values import folder_path_problem, is_folder_path, line_problem, parse_duration

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
Line = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$")]
OAUTH_SECRETS = ("client_secret", "refresh_token")  # from MAILER_OAUTH_CLIENT_SECRET, ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _logo(value: str) -> str:
    if is_folder_path(value):
        problem = folder_path_problem(value)
        if problem:
            raise ValueError(problem)
    elif not re.match(r"^https?://[^\s<>\"']+$", value):
        raise ValueError(f'"{value}": give an https:// address, or a file in the folder')
    return value.strip()


class Brand(_Strict):
    """The look: a logo and one or two colours."""

    # An https:// address, or an image file in the newsletter folder (sent in each message).
    logo: Annotated[str, AfterValidator(_logo)] | None = None
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
    auth: Literal["password", "xoauth2"] = "password"
    token_command: Line | None = None  # run without a shell (mailer.smtp.oauth)
    token_url: Annotated[str, Field(pattern=r"^https://[^\s<>\"']+$")] | None = None
    client_id: Line | None = None
    scope: Line | None = None
    # OAuth secrets (see secret()) are private, so that no key in the file invites them.
    _secrets: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    def secret(self, name: str) -> SecretStr | None:
        """Return an OAuth secret from the environment: "client_secret" or "refresh_token"."""
        return self._secrets.get(name)

    @model_validator(mode="wrap")
    @classmethod
    def _oauth(cls, data: Any, handler: ModelWrapValidatorHandler[Smtp]) -> Smtp:
        given = dict(data) if isinstance(data, Mapping) else {}
        secrets = {name: given.pop(name, None) for name in OAUTH_SECRETS}
        smtp = handler(given if isinstance(data, Mapping) else data)
        smtp._secrets.update({k: SecretStr(v) for k, v in secrets.items() if isinstance(v, str)})
        client = {"token_url": smtp.token_url, "client_id": smtp.client_id, "scope": smtp.scope}
        missing = [key for key, value in client.items() if value is None]
        problems = [] if smtp.username else ["username: required, the mailbox to send as"]
        if bool(smtp.token_command) == (len(missing) < len(client)):
            problems.append("set either token_command or token_url, client_id and scope")
        elif not smtp.token_command:
            problems += [f"{key}: required for the built-in OAuth client" for key in missing]
        if problems and smtp.auth == "xoauth2":
            raise ValueError(
                f'auth = "xoauth2": {"; ".join(problems)} (README: "Logging in with OAuth 2.0")'
            )
        return smtp

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
    run_deadline: str = "50m"  # a send-due run stops cleanly then; the next tick goes on

    @field_validator("max_lateness", "run_deadline")
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
    auth: Literal["password", "xoauth2"] = "password"  # xoauth2: the [smtp] token settings
    folder: str = "INBOX"
    processed_folder: str = "mailer-processed"
    ca_file: Path | None = None
    allow_insecure: bool = False
    timeout: float = Field(default=30.0, gt=0)

    @property
    def effective_port(self) -> int:
        """Return the port, defaulting by security (993, or 143)."""
        return self.port or (993 if self.security == "ssl" else 143)


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
    recipients: Annotated[RecipientList, BeforeValidator(recipients_table)] = RecipientList()
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
