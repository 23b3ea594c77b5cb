"""What every command shares: the global options, printing through logging, errors as exits."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer

from mailer.errors import MailerError
from mailer.runlog import LOG_ONLY, LOGGER_NAME, close_log, is_log_only, open_log

T = TypeVar("T")
log = logging.getLogger(LOGGER_NAME)


@dataclass
class Options:
    """The global options every command sees."""

    folder: Path
    verbose: bool
    quiet: bool


def options(ctx: typer.Context) -> Options:
    """Return the global options."""
    found = ctx.obj
    assert isinstance(found, Options)
    return found


class _Console(logging.Handler):
    """Print records: progress to stdout, warnings and errors to stderr with their label.

    It looks up the streams at each line (through typer.echo), so output goes wherever
    stdout and stderr are at that moment.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if is_log_only(record):
            return
        text = record.getMessage()
        if record.levelno >= logging.ERROR:
            typer.echo(f"error: {text}", err=True)
        elif record.levelno >= logging.WARNING:
            typer.echo(f"warning: {text}", err=True)
        else:
            typer.echo(text)


def start_console(ctx: typer.Context, *, verbose: bool, quiet: bool) -> None:
    """Print the "mailer" logger's records for this command (-q: problems only; -v: all)."""
    console = _Console(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.setLevel(logging.DEBUG)
    log.addHandler(console)
    ctx.call_on_close(lambda: log.removeHandler(console))


def say(text: str) -> None:
    """Print a line of progress unless --quiet (and log it when a run log is open)."""
    log.info(text)


def warn(text: str) -> None:
    """Print a warning to stderr, even with --quiet."""
    log.warning(text)


def fail(text: str) -> None:
    """Print an error to stderr."""
    log.error(text)


def note(text: str) -> None:
    """Write a line to the run log only."""
    log.info(text, extra=LOG_ONLY)


@contextmanager
def reported() -> Iterator[None]:
    """Turn a MailerError into a message on stderr and its exit code, without a traceback."""
    try:
        yield
    except MailerError as err:
        fail(str(err))
        raise typer.Exit(err.exit_code) from None


def run(call: Callable[[], T]) -> T:
    """Call a core function, reporting a MailerError as a clean error."""
    with reported():
        return call()
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def logging_run(folder: Path, command: str) -> Iterator[None]:
    """Append this run's lines, and how it ended, to the folder's run log."""
    logger = open_log(folder)
    note(f"{command}: started")
    try:
        yield
    except typer.Exit as done:
        note(f"{command}: ended with exit code {done.exit_code}")
        raise
    except BaseException as err:
        logger.error("%s: crashed: %r", command, err, extra=LOG_ONLY)
        raise
    else:
        note(f"{command}: ended with exit code 0")
    finally:
        close_log(logger)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop as Ctrl+C does, then exit with 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = 128 + signum
        self.name = signal.Signals(signum).name


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Handle SIGTERM (systemd, timeout, a shutdown) and SIGHUP like Ctrl+C in the block.

    The messages in flight are finished and recorded, the summary printed and the log's
    end line written; then the command exits 143 (or 129).
    """
    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    previous = {number: signal.signal(number, stop) for number in wanted}
    try:
        yield
    except Stopped as stopped:  # before anything was under way
        fail(f"stopped by {stopped.name} before anything was sent")
        raise typer.Exit(stopped.exit_code) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def in_folder(ctx: typer.Context, path: Path) -> Path:
    """Resolve a relative path against --dir first, then the current directory."""
    if path.is_absolute():
        return path
    in_dir = options(ctx).folder / path
    return path if not in_dir.exists() and path.exists() else in_dir
