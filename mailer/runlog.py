"""The run log in .mailer/log: every send and send-due run appends to it, rotated."""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_FILE = Path(".mailer") / "log"
MAX_BYTES = 1_000_000  # then log.1 .. log.3: at most ~4 MB, however long cron runs
BACKUPS = 3


def open_log(folder: Path) -> logging.Logger:
    """Return the folder's run logger, appending to .mailer/log (created if needed)."""
    path = folder / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"mailer.run.{path.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        )
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s [{os.getpid()}] %(levelname)s %(message)s")
        )
        logger.addHandler(handler)
    return logger


def close_log(logger: logging.Logger) -> None:
    """Flush and close the log's file."""
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
