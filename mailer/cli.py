"""The command line: parse, call one core function, report. The only module that prints."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from mailer.errors import MailerError

app = typer.Typer(
    name="mailer",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
T = TypeVar("T")


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


_run_log: logging.Logger | None = None  # set while a send runs: lines go to .mailer/log too


def say(ctx: typer.Context, text: str) -> None:
    """Print a line of progress unless --quiet."""
    if _run_log is not None:
        _run_log.info(text)
    if not options(ctx).quiet:
        typer.echo(text)


def warn(text: str) -> None:
    """Print a warning to stderr."""
    if _run_log is not None:
        _run_log.warning(text)
    typer.echo(f"warning: {text}", err=True)


def note(text: str) -> None:
    """Write a line to the run log only."""
    if _run_log is not None:
        _run_log.info(text)


def fail(text: str) -> None:
    """Print an error to stderr."""
    if _run_log is not None:
        _run_log.error(text)
    typer.echo(f"error: {text}", err=True)


@contextmanager
def reported() -> Iterator[None]:
    """Turn a MailerError into a message on stderr and its exit code, without a traceback."""
    try:
        yield
    except MailerError as err:
        fail(str(err))
        raise typer.Exit(err.exit_code) from None


@contextmanager
def logging_run(folder: Path, command: str) -> Iterator[None]:
    """Append this run's lines, and how it ended, to the folder's .mailer/log."""
    global _run_log
    from mailer.runlog import close_log, open_log

    _run_log = logger = open_log(folder)
    logger.info("%s: started", command)
    try:
        yield
    except typer.Exit as done:
        logger.info("%s: ended with exit code %s", command, done.exit_code)
        raise
    except BaseException as err:
        logger.error("%s: crashed: %r", command, err)
        raise
    else:
        logger.info("%s: ended with exit code 0", command)
    finally:
        _run_log = None
        close_log(logger)


def run(call: Callable[[], T]) -> T:
    """Call a core function, reporting a MailerError as a clean error."""
    with reported():
        return call()
    raise AssertionError("unreachable")  # pragma: no cover


@app.callback()
def main(
    ctx: typer.Context,
    folder: Annotated[
        Path, typer.Option("--dir", help="The newsletter folder (default: the current one).")
    ] = Path("."),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say more.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Say only what went wrong.")] = False,
) -> None:
    """Compose an email newsletter from an issue file and send it, safely.

    Example: mailer compose issues/2023-10-20-ld-newsletter.yaml
    """
    ctx.obj = Options(folder=folder, verbose=verbose, quiet=quiet)


def in_folder(ctx: typer.Context, path: Path) -> Path:
    """Resolve a relative path against --dir first, then the current directory."""
    if path.is_absolute():
        return path
    in_dir = options(ctx).folder / path
    return path if not in_dir.exists() and path.exists() else in_dir


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to create the folder.")] = Path("."),
) -> None:
    """Create a newsletter folder with settings, an example issue, the default layout and a list.

    Example: mailer init staff-news && cd staff-news && mailer compose issues/*.yaml
    """
    from mailer.scaffold import create_newsletter

    written = run(lambda: create_newsletter(directory))
    for path in written:
        say(ctx, f"created {path}")
    say(
        ctx,
        f"next: edit {directory / 'mailer.toml'}, then run: mailer --dir {directory} compose "
        f"{written[0].relative_to(directory) if written else 'issues/<issue>.yaml'}",
    )


@app.command()
def validate(
    ctx: typer.Context,
    issues: Annotated[list[Path], typer.Argument(help="Issue files to check.")],
) -> None:
    """Check issue files without writing anything; exit 1 if any is invalid.

    Example: mailer validate issues/*.yaml
    """
    from datetime import UTC, datetime

    from mailer.config import load_settings
    from mailer.issue import load_issue
    from mailer.schedule import schedule_problems

    folder = options(ctx).folder
    try:
        settings = load_settings(folder)
    except MailerError:
        settings = None  # validate works on issue files alone; dates then keep their offsets
    failed = False
    for path in issues:
        try:
            loaded = load_issue(in_folder(ctx, path), str(path))
        except MailerError as err:
            fail(str(err))
            failed = True
            continue
        errors, warnings = schedule_problems(folder, loaded, settings, datetime.now(UTC))
        for warning in [*loaded.warnings, *warnings]:
            warn(str(warning))
        for error in errors:
            fail(str(error))
        failed = failed or bool(errors)
        if not errors:
            count = len(loaded.issue.blocks)
            say(ctx, f"{path}: valid ({count} block{'' if count == 1 else 's'})")
    if failed:
        raise typer.Exit(1)


def entry() -> None:
    """Run the CLI (console script)."""
    app(prog_name="mailer")


# The other commands live beside this module and register themselves on `app`; the order
# of these imports is the order of `mailer --help`.
import mailer.cli_compose  # noqa: E402, I001
import mailer.cli_send  # noqa: E402
import mailer.cli_schedule  # noqa: E402, F401
