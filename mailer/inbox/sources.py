"""Where returned mail is read from: a local Maildir or mbox (read-only), or IMAP (imap.py).

A local mailbox is left as it is: what was processed is remembered by Message-ID, so a mailbox
exported again tomorrow, with today's messages in it, is read to the same effect.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

from mailer.errors import MailerError


class Source(Protocol):
    """A mailbox of returned messages."""

    name: str  # e.g. "imap:INBOX" or "maildir:/var/mail/bounces": goes in suppressed.csv

    def __enter__(self) -> Source: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Yield (id in this mailbox, the raw message) for every message."""
        ...

    def done(self, ids: list[str]) -> None:
        """Put processed messages away (only after they are recorded)."""
        ...


class LocalMailbox:
    """A Maildir folder or an mbox file, read without changing it."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.name = f"{kind}:{path}"
        self._box: mailbox.Mailbox[mailbox.Message] = _open(path, kind)

    def __enter__(self) -> LocalMailbox:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._box.close()

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Yield every message, oldest file first in a Maildir."""
        try:
            for key in sorted(self._box.iterkeys()):
                yield key, self._box.get_bytes(key)
        except (OSError, mailbox.Error) as err:
            raise MailerError(f"{self.path}: cannot read the mailbox ({err})") from err

    def done(self, ids: list[str]) -> None:
        """Leave the messages where they are (the inbox remembers them)."""


def _open(path: Path, kind: str) -> mailbox.Mailbox[mailbox.Message]:
    if kind == "maildir":
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            hint = "for an mbox file use --mbox" if path.is_file() else "check the path"
            raise MailerError(f"{path}: not a Maildir (it needs cur/, new/ and tmp/); {hint}")
        return mailbox.Maildir(path, factory=None, create=False)
    if not path.is_file():
        hint = "for a Maildir use --maildir" if path.is_dir() else "check the path"
        raise MailerError(f"{path}: no mbox file there; {hint}")
    with path.open("rb") as head:
        start = head.read(5)
    if start and start != b"From ":
        raise MailerError(
            f'{path}:1: not an mbox file (it should start with "From "); export the mailbox '
            "as mbox, or for one message in a file, put it in a Maildir's new/ folder"
        )
    return mailbox.mbox(path, factory=None, create=False)
