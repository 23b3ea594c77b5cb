"""The run log: what every send and send-due run did, appended to .mailer/log and rotated.

mailer logs through the standard `logging` module, under the "mailer" logger. The CLI adds a
console handler (honouring -q and -v); sends and cron runs add this file handler too.
A record logged with `extra=LOG_ONLY` goes to the file only: cron mails whatever a run prints.
"""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

from mailer.folder import Newsletter

LOGGER_NAME = "mailer"
LOG_ONLY = {"log_only": True}
MAX_BYTES = 1_000_000  # then log.1 .. log.3: at most ~4 MB, however long cron runs
BACKUPS = 3


class _RunLogHandler(RotatingFileHandler):
    """The folder's run log file (a type of its own, so close_log removes only these)."""


def open_log(folder: Path) -> logging.Logger:
    """Append the "mailer" logger's records to the folder's run log; return the logger."""
    path = Newsletter(folder).log_path
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG)  # each handler picks its own level
    handler = _RunLogHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
    )
    handler.setLevel(logging.INFO)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s [{os.getpid()}] %(levelname)s %(message)s")
    )
    logger.addHandler(handler)
    return logger


def close_log(logger: logging.Logger) -> None:
    """Flush and close the run log files open on logger."""
    for handler in list(logger.handlers):
        if isinstance(handler, _RunLogHandler):
            logger.removeHandler(handler)
            handler.close()


def is_log_only(record: logging.LogRecord) -> bool:
    """Say whether a record is for the run log only, not the console."""
    return bool(getattr(record, "log_only", False))
