"""A send's progress (a bar on a terminal, plain lines otherwise) and its closing summary."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING

import typer

from mailer.cli.output import fail, options, say, warn

if TYPE_CHECKING:
    from mailer.send import SendReport
    from mailer.smtp import Outcome


class SendProgress:
    """A progress bar on a terminal; plain lines otherwise (a log, cron)."""

    def __init__(self, ctx: typer.Context) -> None:
        self.ctx = ctx
        self.done = 0
        self.total = 0
        self.bar: object | None = None
        self.quiet = options(ctx).quiet
        self.verbose = options(ctx).verbose

    def start(self, total: int) -> None:
        self.total = total
        if sys.stderr.isatty() and not self.quiet:
            from rich.progress import Progress

            progress = Progress(transient=True)
            progress.start()
            self.task = progress.add_task("sending", total=total)
            self.bar = progress
        else:
            say(f"sending to {total} recipient{'' if total == 1 else 's'}")

    def advance(self, email: str, outcome: Outcome) -> None:
        self.done += 1
        if self.bar is not None:
            from rich.progress import Progress

            assert isinstance(self.bar, Progress)
            self.bar.advance(self.task)
            if outcome.kind != "sent":
                self.bar.console.print(f"{email}: {describe(outcome)}")
            return
        if outcome.kind != "sent" or self.verbose:
            say(f"{email}: {describe(outcome)}")
        elif self.done % 100 == 0:
            say(f"sent {self.done} of {self.total}")

    def close(self) -> None:
        if self.bar is not None:
            from rich.progress import Progress

            assert isinstance(self.bar, Progress)
            self.bar.stop()


def describe(outcome: Outcome) -> str:
    """Return how a message went, as a line says it."""
    code = f"{outcome.code} " if outcome.code else ""
    return f"{outcome.kind} ({code}{outcome.text})" if outcome.kind != "sent" else "sent"


def summarise(report: SendReport, forced_errors: int) -> None:
    """Say what the send did, and exit with the code it calls for."""
    counts = report.counts
    if report.requeued_failed:
        say(f"re-queued {report.requeued_failed} recipients marked failed (--retry-failed)")
    if forced_errors:
        warn(f"sent with --force despite {forced_errors} error(s) from `mailer check`")
    say(f"{report.issue_id}: sent {report.sent_now} now; {counts['sent']} sent in all")
    say(
        f"skipped: {report.skipped_duplicates} duplicate, {report.skipped_unsubscribed} "
        f"unsubscribed, {report.skipped_invalid} invalid",
    )
    say(
        f"deferred {counts['deferred']}, failed {counts['failed']}, unknown "
        f"{counts['unknown']}, pending {counts['pending']}",
    )
    if report.recovered_unknown:
        warn(
            f"{report.recovered_unknown} recipients were mid-send when an earlier run stopped: "
            "they may have the message; see `mailer status`, and pass --resend-unknown to "
            "send to them again"
        )
    if report.stopped is not None:
        fail(str(report.stopped))
        raise typer.Exit(report.stopped.exit_code)
    if report.interrupted:
        warn("interrupted: run the same command again to send to the rest")
        raise typer.Exit(report.interrupted)
    if report.quota is not None:
        left = counts["pending"] + counts["deferred"]
        at = datetime.fromtimestamp(report.quota.free_at).astimezone()
        say(
            f"{report.quota.window} quota reached: {left} left for the next run at "
            f"{at:%H:%M} ({at:%a %d %b}); `mailer send-due` resumes it, or run the same command"
        )
        return
    if not report.complete:
        hint = [f"see `mailer status {report.issue_id}` for the reasons"]
        if counts["deferred"] or counts["pending"]:
            hint.append("run the same command later to retry the deferred")
        warn("; ".join(hint))
        raise typer.Exit(3)
    say("done: everyone on the list has the issue")
