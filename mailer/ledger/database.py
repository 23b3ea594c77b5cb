"""The ledger's SQLite file: open it checked and migrated, and say clearly what went wrong."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailer.errors import LedgerBusyError, LedgerError
from mailer.ledger.schema import MIGRATE_FROM_1, SCHEMA, SCHEMA_VERSION

BUSY_TIMEOUT = 10.0  # seconds to wait for another process's write before giving up
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def current_boot_id() -> str:
    """Return this boot of the machine's id (Linux), or "" where there is none."""
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""  # unknown: a reserved row of an earlier run then counts as maybe sent


def connect(path: Path, *, synchronous: str, check: bool) -> sqlite3.Connection:
    """Open the database in autocommit WAL mode; with check, verify and migrate it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
    except (OSError, sqlite3.Error) as err:
        raise LedgerError(f"{path}: cannot open the send ledger ({err}); check the folder") from err
    try:
        with errors_of(path):
            if check:
                verdict = db.execute("PRAGMA quick_check").fetchone()
                if verdict != ("ok",):
                    raise sqlite3.DatabaseError(f"quick_check: {verdict[0]}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            if check:
                _migrate(db)
    except LedgerError:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version >= SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        if "deliveries" in tables:
            for statement in MIGRATE_FROM_1.format(schema=SCHEMA).split(";"):
                if statement.strip():
                    db.execute(statement)
        else:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


@contextmanager
def errors_of(path: Path) -> Iterator[None]:
    """Turn sqlite3 and OS errors into a LedgerError naming the file and what to do."""
    try:
        yield
    except sqlite3.OperationalError as err:
        text = str(err)
        if "locked" in text or "busy" in text:
            raise LedgerBusyError(
                f"{path}: the send ledger is busy (another mailer holds it); "
                "wait for it to finish, then run the same command again"
            ) from err
        raise LedgerError(
            f"{path}: the send ledger cannot be written ({text}); check the disk "
            "(free space, permissions), then run the same command again"
        ) from err
    except sqlite3.DatabaseError as err:
        raise LedgerError(
            f"{path}: not a usable send ledger ({err}); run `mailer ledger check` to see "
            "what is wrong and `mailer ledger rebuild` to rebuild it from its journal "
            "(never delete it: it is what stops a second copy going to anyone)"
        ) from err
    except OSError as err:
        raise LedgerError(f"{path}: {err.strerror or err}; check the disk") from err
