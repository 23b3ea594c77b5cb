"""Sending: send (and its dry run and proofs), status, unsubscribe (registered in app.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailer.cli.followup import follow_up_send, nothing_to_send, show_last_run
from mailer.cli.output import (
    fail,
    in_folder,
    logging_run,
    options,
    run,
    say,
    stopped_by_signals,
    warn,
)
from mailer.cli.progress import SendProgress, describe, summarise

if TYPE_CHECKING:
    from mailer.send import SendPlan


def send(
    ctx: typer.Context,
    issue: Annotated[Path, typer.Argument(metavar="ISSUE", help="The issue file to send.")],
    recipients: Annotated[
        Path | None,
        typer.Option("--recipients", metavar="CSV", help="The list (default: from mailer.toml)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write every message to the outbox; send nothing.")
    ] = False,
    outbox: Annotated[
        Path | None,
        typer.Option(
            "--outbox", metavar="DIR", help="Where a dry run writes (build/outbox/<issue>)."
        ),
    ] = None,
    test: Annotated[
        list[str] | None,
        typer.Option(
            "--test",
            metavar="ADDRESS",
            help="Send a marked proof to these addresses only (repeat, or separate by commas).",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Send without asking.")] = False,
    resend_unknown: Annotated[
        bool, typer.Option("--resend-unknown", help="Also send to recipients in an unknown state.")
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Send again to recipients marked failed."),
    ] = False,
    allow_changes: Annotated[
        bool, typer.Option("--allow-changes", help="Go on although the issue changed since.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Send to the valid rows; report the others.")
    ] = False,
    encoding: Annotated[
        str, typer.Option("--encoding", metavar="NAME", help="The list's encoding, e.g. cp1252.")
    ] = "utf-8-sig",
    force: Annotated[
        bool, typer.Option("--force", help="Send although `mailer check` finds errors.")
    ] = False,
) -> None:
    """Send an issue to everyone on the list, once; a re-run resumes where it stopped.

    Example: mailer send issues/2023-10-20-ld-newsletter.yaml --dry-run
    """
    from mailer.send import prepare_send

    folder = options(ctx).folder
    issue_path = in_folder(ctx, issue)
    recipients_path = in_folder(ctx, recipients) if recipients else None
    plan = run(
        lambda: prepare_send(
            folder,
            issue_path,
            recipients_path=recipients_path,
            skip_invalid=skip_invalid,
            encoding=encoding,
            shown_issue=str(issue),
            force=force,
            proof=bool(test) and not dry_run,
            dry_run=dry_run,
        )
    )
    if plan.forced_errors:
        warn(f"sending despite {plan.forced_errors} error(s) from `mailer check` (--force)")
    for problem in plan.scan.problems:
        warn(f"skipped: {problem}")
    for warning in plan.warnings:  # duplicates; in a dry run, empty cells a send refuses
        warn(warning)
    if dry_run:
        _dry_run(ctx, plan, outbox)
    elif test:
        _send_test(ctx, plan, [a for value in test for a in re.split(r"[,;\s]+", value) if a])
    else:
        with logging_run(folder, f"send {issue}"):
            _send(
                ctx,
                plan,
                yes=yes,
                resend_unknown=resend_unknown,
                retry_failed=retry_failed,
                allow_changes=allow_changes,
            )


def _dry_run(ctx: typer.Context, plan: SendPlan, outbox: Path | None) -> None:
    from mailer.folder import Newsletter
    from mailer.send import utc_now, write_outbox

    out_dir = (
        in_folder(ctx, outbox) if outbox else Newsletter(plan.folder).outbox_dir(plan.issue_id)
    )
    report = run(lambda: write_outbox(plan, out_dir, now=utc_now()))
    for refusal in report.refused:
        warn(f"refused: {refusal}")
    say(
        f"dry run: wrote {report.messages} messages ({report.total_bytes / 1024:.0f} KB) "
        f"to {report.out_dir}; nothing was sent",
    )
    say(f"open {report.index_path} to look through them")
    if report.refused:
        raise typer.Exit(3)


def _send_test(ctx: typer.Context, plan: SendPlan, addresses: list[str]) -> None:
    from mailer.send import send_test

    results = run(lambda: send_test(plan, addresses))
    for address, outcome in results:
        say(f"{address}: {describe(outcome)}")
    if any(outcome.kind != "sent" for _address, outcome in results):
        raise typer.Exit(3)


def _send(
    ctx: typer.Context,
    plan: SendPlan,
    *,
    yes: bool,
    resend_unknown: bool,
    retry_failed: bool,
    allow_changes: bool,
) -> None:
    from mailer.schedule import left_to_send
    from mailer.send import deliver

    left = run(lambda: left_to_send(plan, resend_unknown=resend_unknown, retry_failed=retry_failed))
    if left == 0:
        code = nothing_to_send(plan)
        if code:
            raise typer.Exit(code)
        return
    if not yes:
        if not sys.stdin.isatty():
            fail("no terminal to confirm on; pass --yes to send")
            raise typer.Exit(2)
        already = f" ({plan.already_sent} already sent)" if plan.already_sent else ""
        question = (
            f'Send "{plan.loaded.issue.subject}" ({plan.issue_id}) to {plan.scan.valid} '
            f"recipients{already} through {plan.server}?"
        )
        if not typer.confirm(question, default=False):
            say("nothing was sent")
            raise typer.Exit(1)
    reporter = SendProgress(ctx)
    with stopped_by_signals():
        report = run(
            lambda: deliver(
                plan,
                resend_unknown=resend_unknown,
                retry_failed=retry_failed,
                allow_changes=allow_changes,
                progress=reporter.advance,
                started=reporter.start,
                stopping=lambda: warn(
                    "stopping: waiting for the server's answer to the messages in flight, so the "
                    "ledger knows whether they arrived (Ctrl+C again does not skip this)"
                ),
            )
        )
    reporter.close()
    code = 0
    try:
        summarise(report, plan.forced_errors)
    except typer.Exit as ended:
        code = ended.exit_code
    if not report.interrupted:  # Ctrl+C means stop: the next send or cron run publishes
        code = follow_up_send(plan, report, code)
    if code:
        raise typer.Exit(code)


def status(
    ctx: typer.Context,
    issue: Annotated[
        str | None, typer.Argument(metavar="ISSUE", help="An issue file or its name.")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", metavar="FILE", help="Export the failures to a CSV file."),
    ] = None,
) -> None:
    """Show what the send ledger says: sent, pending, deferred, failed, unknown, with reasons.

    Example: mailer status 2023-10-20-ld-newsletter --csv failures.csv
    """
    from mailer.folder import Newsletter
    from mailer.inbox import count_suppressions
    from mailer.ledger import export_problems_csv, read_status
    from mailer.schedule import MEANINGS, ledger_state

    newsletter = Newsletter(options(ctx).folder)
    run(lambda: newsletter.settings)  # a wrong --dir says so, not "nothing sent yet"
    if issue is None:
        show_last_run(newsletter.dir)  # first: cron's work, and whether the editor was told
    statuses = run(lambda: read_status(newsletter.dir, Path(issue).stem if issue else None))
    off = run(lambda: count_suppressions(newsletter))
    if off:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(off.items()))
        say(f"suppressed: {sum(off.values())} address(es) no send reaches ({reasons})")
    if not statuses:
        say("nothing has been sent from this folder yet")
        return
    for status in statuses:
        summary, rows = status.summary, status.problems
        # The words of `mailer schedule`: sending, sent or partly sent (issue 13).
        state = ledger_state(summary.counts, status.finished)
        figures = ", ".join(f"{n} {name}" for name, n in summary.counts.items() if n)
        hint = "" if state == "sent" else f" ({MEANINGS[state]})"
        say(f"{summary.issue_id}: {state}{hint}: {figures or 'nobody yet'}")
        for row in rows[:50]:
            code = f"{row.last_code} " if row.last_code else ""
            say(
                f"  {row.email}: {row.state} after {row.attempts} attempt(s): "
                f"{code}{row.last_text or ''}"
            )
        if len(rows) > 50:
            say(f"  ... and {len(rows) - 50} more (use --csv to export them all)")
        if summary.counts.get("unknown"):
            say(
                "  unknown: they may have it; to send to them again anyway, run the "
                "send with --resend-unknown"
            )
        if summary.counts.get("removed"):
            say("  removed: no longer on the list (or unsubscribed), so not sent")
    if csv is not None:
        problems = (row for status in statuses for row in status.problems)
        written = run(lambda: export_problems_csv(problems, csv))
        say(f"wrote {written} rows to {csv}")


def unsubscribe(
    ctx: typer.Context,
    addresses: Annotated[
        list[str], typer.Argument(metavar="ADDRESS", help="Addresses never to send to again.")
    ],
    undo: Annotated[
        bool,
        typer.Option("--undo", help="Put them back on: off unsubscribed.csv and suppressed.csv."),
    ] = False,
    note: Annotated[
        str, typer.Option("--note", metavar="TEXT", help="With --undo: why, for the record.")
    ] = "",
) -> None:
    """Add addresses to unsubscribed.csv; no later send will reach them (--undo: reinstate).

    Example: mailer unsubscribe sam@example.org
    """
    from mailer.folder import Newsletter
    from mailer.recipients import append_unsubscribed
    from mailer.send import utc_now

    newsletter = Newsletter(options(ctx).folder)
    run(lambda: newsletter.settings)  # never unsubscribe in the wrong folder
    if undo:
        from mailer.inbox import reinstate

        was = run(lambda: reinstate(newsletter, addresses, note, utc_now()))
        for address in addresses:
            found = was.get(address.strip())
            say(f"{address}: {'reinstated (was ' + found + ')' if found else 'not suppressed'}")
        return
    path = newsletter.unsubscribed_path
    added = run(lambda: append_unsubscribed(path, addresses, utc_now()))
    for address in addresses:
        known = address.strip() in added
        say(f"{address}: {'unsubscribed' if known else 'already unsubscribed'}")
