"""The ledger's problem rows, exported as a CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from mailer.errors import MailerError
from mailer.ledger.schema import Row

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_EXPORT_COLUMNS = ("email", "state", "attempts", "last_code", "last_text", "updated_at")


def _neutralise(value: object) -> str:
    text = "" if value is None else str(value)
    # OWASP CSV injection: a leading ' makes a spreadsheet show the cell as text, not a formula.
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_problems_csv(rows: Iterable[Row], path: Path) -> int:
    """Write rows as a spreadsheet-safe CSV (email, state, attempts, code, text, time)."""
    count = 0
    try:
        # utf-8-sig: Excel reads a BOM-less CSV as the local code page.
        with open(path, "w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_ALL)
            writer.writerow(_EXPORT_COLUMNS)
            for row in rows:
                writer.writerow([_neutralise(getattr(row, name)) for name in _EXPORT_COLUMNS])
                count += 1
    except OSError as err:
        raise MailerError(f"{path}: cannot write ({err.strerror}); choose another file") from err
    return count
