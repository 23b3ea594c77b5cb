"""Scheduling: send-due (for cron) and schedule (registered in app.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from mailer.cli.output import fail, logging_run, note, options, run, say, stopped_by_signals


def send_due(ctx: typer.Context) -> None:
    """For cron: send every issue whose send_at has passed and that is not finished.

    Silent when there is nothing to do; every run is logged to .mailer/log. Run it from cron:
    `mailer schedule --cron` prints the line. Example: mailer --dir ~/news send-due
    """
    from datetime import UTC, datetime

    from mailer.folder import Newsletter
    from mailer.schedule import Reporter
    from mailer.schedule import send_due as send_due_issues

    newsletter = Newsletter(options(ctx).folder)
    folder = newsletter.dir
    if not newsletter.settings_path.is_file():
        run(lambda: newsletter.settings)  # says what is wrong; no log in a wrong folder
    with logging_run(folder, "send-due"):
        settings = run(lambda: newsletter.settings)
        out = Reporter(said=say, failed=fail, noted=note)
        with stopped_by_signals():
            result = run(lambda: send_due_issues(folder, settings, datetime.now(UTC), out))
        if result.exit_code:
            raise typer.Exit(result.exit_code)


def schedule(
    ctx: typer.Context,
    cron: Annotated[
        bool, typer.Option("--cron", help="Print the crontab lines that send due issues.")
    ] = False,
) -> None:
    """List the issues with their send_at and state (the words of `mailer status`).

    States: unscheduled, scheduled, due, sending, sent, partly sent (some failed or
    unknown), late, held (something to fix; every run tries again), invalid.

    An issue file that cannot be loaded is listed as invalid and its errors follow the list
    (exit 1). Example: mailer schedule --cron
    """
    from datetime import UTC, datetime

    from mailer.folder import load_settings
    from mailer.schedule import cron_lines, read_schedule

    folder = options(ctx).folder
    settings = run(lambda: load_settings(folder))
    if cron:
        typer.echo(cron_lines(folder.resolve(), _mailer_command(), settings), nl=False)
        say("# install: crontab -e, paste these lines, and fill in the secrets")
        return
    entries = run(lambda: read_schedule(folder, settings, datetime.now(UTC)))
    if not entries:
        say("no issues in issues/")
    else:  # the states are the words `mailer status` uses too
        typer.echo(f"{'ISSUE':40} {'SEND AT':22} {'STATE':11} DETAILS")
    for entry in entries:
        when = (
            f"{entry.send_at.astimezone(settings.zone):%a %Y-%m-%d %H:%M}" if entry.send_at else "-"
        )
        counts = ", ".join(f"{n} {state}" for state, n in entry.counts.items() if n)
        details = "; ".join(part for part in (counts, entry.note) if part)
        typer.echo(f"{entry.stem:40} {when:22} {entry.state:11} {details}".rstrip())
    invalid = [entry.error for entry in entries if entry.error is not None]
    for error in invalid:
        fail(str(error))
    if invalid:
        raise typer.Exit(1)


def _mailer_command() -> str:
    """Return how cron should call this mailer: its absolute path, or python -m mailer."""
    launched = Path(sys.argv[0])
    if launched.name == "mailer" and launched.is_file():
        return shlex.quote(str(launched.resolve()))
    return f"{shlex.quote(sys.executable)} -m mailer"
