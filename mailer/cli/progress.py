"""Progress of a send: a bar on a terminal, plain lines otherwise (a log, cron)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from mailer.cli.output import options, say

if TYPE_CHECKING:
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
