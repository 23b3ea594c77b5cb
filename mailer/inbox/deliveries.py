"""Our deliveries, read from the send ledger with our own SQL, read-only.

Only the columns every ledger version has are read: issue_id, recipient_key, email,
message_id, state, last_code, last_text (the send ledger's own module owns the schema).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from mailer.addresses import address_key
from mailer.errors import MailerError

# A refusal for good during a send that means "no such mailbox": 550/551/553 with 5.1.x.
_REFUSED_CODES = (550, 551, 553)
_NO_MAILBOX = re.compile(r"(?<![\d.])5\.1\.\d{1,3}(?![\d.])")


@dataclass(frozen=True)
class Delivery:
    """One recipient of one issue."""

    issue_id: str
    recipient_key: str
    email: str


@dataclass(frozen=True)
class Refusal:
    """A recipient the server refused for good, with what it said."""

    delivery: Delivery
    code: int
    text: str


class Deliveries:
    """The ledger's deliveries, or none when nothing was ever sent."""

    def __init__(self, ledger_path: Path) -> None:
        self._db: sqlite3.Connection | None = None
        if not ledger_path.is_file():
            return
        try:
            self._db = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True, timeout=10.0)
            self._db.execute("SELECT 1 FROM deliveries LIMIT 1")
        except sqlite3.Error as err:
            raise MailerError(
                f"{ledger_path}: cannot read the send ledger ({err}); check `mailer status`"
            ) from err

    def __enter__(self) -> Deliveries:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            self._db.close()

    def by_message_id(self, message_ids: tuple[str, ...]) -> Delivery | None:
        """Return the delivery one of these Message-IDs was ours for (Message-ID is unique)."""
        for message_id in message_ids:
            found = self._one(
                "SELECT issue_id, recipient_key, email FROM deliveries WHERE message_id = ?",
                (message_id.strip(),),
            )
            if found is not None:
                return found
        return None

    def latest_for(self, address: str) -> Delivery | None:
        """Return the latest issue we sent (or tried to send) to this address."""
        return self._one(
            "SELECT issue_id, recipient_key, email FROM deliveries WHERE recipient_key = ? "
            "ORDER BY created_at DESC LIMIT 1",
            (address_key(address),),
        )

    def refusals(self) -> list[Refusal]:
        """Return the recipients refused for good with "no such mailbox" (5.1.x) in any send."""
        if self._db is None:
            return []
        marks = ", ".join("?" * len(_REFUSED_CODES))
        rows = self._db.execute(
            "SELECT issue_id, recipient_key, email, last_code, last_text FROM deliveries "
            f"WHERE state = 'failed' AND last_code IN ({marks}) ORDER BY updated_at",
            _REFUSED_CODES,
        )
        return [
            Refusal(Delivery(issue, key, email), code, text or "")
            for issue, key, email, code, text in rows
            if _NO_MAILBOX.search(text or "")
        ]

    def _one(self, sql: str, values: tuple[str, ...]) -> Delivery | None:
        if self._db is None:
            return None
        row = self._db.execute(sql, values).fetchone()
        return None if row is None else Delivery(*row)
