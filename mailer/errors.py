"""The errors mailer raises; each carries the exit code the CLI turns it into."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, with where it is and what to do."""

    path: str
    line: int | None
    column: int | None
    where: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        place = self.path
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        text = (
            f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"
        )
        return f"{text}; {self.hint}" if self.hint else text


class MailerError(Exception):
    """The root of every error a user can cause or fix."""

    exit_code = 1

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class SettingsError(MailerError):
    """mailer.toml or a MAILER_* variable is wrong."""


class IssueError(MailerError):
    """An issue file is not valid."""


class TemplateError(MailerError):
    """A layout template could not be rendered."""


class RecipientsError(MailerError):
    """The recipients file is not valid."""


class DeliveryError(MailerError):
    """The SMTP server could not be reached, refused the login or failed the TLS check."""

    exit_code = 4


class PartialDeliveryError(MailerError):
    """The run ended, but some recipients failed permanently or are in an unknown state."""

    exit_code = 3


class LedgerError(MailerError):
    """The send ledger or its journal cannot be read or written (damaged, disk full)."""


class LedgerBusyError(LedgerError):
    """Another process holds the ledger's database lock for too long."""

    exit_code = 75


class LockedError(MailerError):
    """Another send is already running for this newsletter folder."""

    exit_code = 75


def shown_path(path: Path) -> str:
    """Return path as a message should show it: relative to the current directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
