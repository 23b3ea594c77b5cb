"""The settings for sending while nobody watches: [archive] publishing, the [recipients] table."""

from __future__ import annotations

import shlex
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Archive(BaseModel):
    """How the web archive is published after every send (and by `mailer archive`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


class RecipientList(BaseModel):
    """The list: its file, and what a scheduled send does with rows it cannot use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Path = Path("recipients.csv")
    skip_invalid: bool = False


def recipients_table(value: object) -> object:
    # `recipients = "list.csv"` (the first form of the setting) is the table's file.
    return {"file": value} if isinstance(value, str | Path) else value
