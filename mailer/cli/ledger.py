"""`mailer ledger check` and `mailer ledger rebuild` (registered in app.py)."""

from __future__ import annotations

import typer

from mailer.cli.output import fail, options, run, say

ledger_app = typer.Typer(
    name="ledger",
    help="Check the send ledger against its journal, or rebuild it from the journal.\n\n"
    "Example: mailer ledger check",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@ledger_app.command()
def check(ctx: typer.Context) -> None:
    """Check the send ledger (SQLite's quick_check) and compare it with its journal.

    Exit 1 when something needs doing. Example: mailer ledger check
    """
    from mailer.folder import Newsletter
    from mailer.ledger import check_ledger

    newsletter = Newsletter(options(ctx).folder)
    run(lambda: newsletter.settings)  # a wrong --dir says so
    report = check_ledger(newsletter.dir)
    for problem in report.problems:
        fail(problem)
    say(
        f"{report.ledger_path}: {report.rows} deliveries; {report.journal_path}: "
        f"{report.journal_rows} deliveries"
    )
    if not report.healthy:
        raise typer.Exit(1)
    say("the ledger agrees with its journal")


@ledger_app.command()
def rebuild(ctx: typer.Context) -> None:
    """Move the send ledger aside and build it anew from its journal.

    For a ledger that `mailer ledger check` finds damaged. Nothing is deleted: the old file
    is kept beside the new one. Example: mailer ledger rebuild
    """
    from mailer.folder import Newsletter
    from mailer.ledger import folder_lock, rebuild_ledger

    newsletter = Newsletter(options(ctx).folder)
    run(lambda: newsletter.settings)

    def rebuild_locked() -> tuple[object, int]:
        with folder_lock(newsletter.dir):
            return rebuild_ledger(newsletter.dir)

    aside, applied = run(rebuild_locked)
    if aside is not None:
        say(f"moved the old ledger aside to {aside}")
    say(f"rebuilt {newsletter.ledger_path} from {applied} journal entries")
