"""What comes back: inbox (bounces, complaints, unsubscribe mails) and serve-unsubscribe."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailer.cli.output import fail, in_folder, logging_run, options, run, say, warn

if TYPE_CHECKING:
    from mailer.inbox import InboxReport, Source

log = logging.getLogger("mailer")


def inbox(
    ctx: typer.Context,
    imap: Annotated[
        bool, typer.Option("--imap", help="Read the IMAP folder set in mailer.toml [inbox].")
    ] = False,
    maildir: Annotated[
        Path | None, typer.Option("--maildir", metavar="PATH", help="Read a Maildir folder.")
    ] = None,
    mbox: Annotated[
        Path | None, typer.Option("--mbox", metavar="PATH", help="Read an mbox file.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
    ] = False,
) -> None:
    """Read the return mailbox: suppress bounced, complaining and unsubscribing addresses.

    Hard bounces (no such mailbox), complaints and unsubscribe mails suppress an address at
    once; soft bounces after three issues. Auto-replies and anything else are left alone
    (-v lists them). Each message counts once, however often this runs.

    Example: mailer inbox --imap
    """
    from mailer.folder import Newsletter
    from mailer.inbox import ImapMailbox, LocalMailbox, process_inbox
    from mailer.send import utc_now

    chosen = [name for name, given in (("--imap", imap), ("--maildir", maildir),
                                       ("--mbox", mbox)) if given]  # fmt: skip
    if len(chosen) != 1:
        what = "name one mailbox" if not chosen else f"name only one of {', '.join(chosen)}"
        fail(f"{what}: --imap, --maildir PATH or --mbox PATH (see mailer inbox --help)")
        raise typer.Exit(2)
    newsletter = Newsletter(options(ctx).folder)
    settings = run(lambda: newsletter.settings)
    source: Source
    if maildir is not None:
        source = run(lambda: LocalMailbox(in_folder(ctx, maildir), "maildir"))
    elif mbox is not None:
        source = run(lambda: LocalMailbox(in_folder(ctx, mbox), "mbox"))
    else:
        source = run(lambda: ImapMailbox(settings.inbox, read_only=dry_run, smtp=settings.smtp))
    with logging_run(newsletter.dir, f"inbox {source.name}{' --dry-run' if dry_run else ''}"):
        report = run(lambda: process_inbox(newsletter, source, dry_run=dry_run, now=utc_now()))
        _report(report)


def _report(report: InboxReport) -> None:
    new = sum(report.kinds.values())
    already = f"; {report.already} processed before" if report.already else ""
    say(f"{report.source}: {new} new message(s){already}")
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.kinds.items()))
    if kinds:
        say(f"  {kinds}")
    verb = "would suppress" if report.dry_run else "suppressed"
    for outcome in report.outcomes:
        issue = f", issue {outcome.issue}" if outcome.issue else ""
        if outcome.suppressed:
            say(f"  {verb} {outcome.address}: {outcome.reason}{issue} ({outcome.detail})")
        elif outcome.reason.startswith("soft bounce"):
            say(f"  {outcome.address}: {outcome.reason}{issue} ({outcome.detail})")
        else:
            say(f"  {outcome.address}: {outcome.reason}{issue}, already off the list")
    if report.left_alone:
        say(f"  left alone: {len(report.left_alone)} (auto-replies and the like; -v lists them)")
        for line in report.left_alone:
            log.debug("    %s", line)
    if report.dry_run:
        say("dry run: nothing was recorded, suppressed or moved")
    elif "queued" in report.stored:
        warn(
            "a send holds the folder lock: the suppressions are queued (they count already) "
            "and move into suppressed.csv at the next run"
        )


def serve_unsubscribe(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", metavar="H", help="The address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="P", help="The port.")] = 8058,
) -> None:
    """Run the one-click unsubscribe endpoint (RFC 8058) for your reverse proxy to forward to.

    Point unsubscribe_url at the proxy; it forwards to this address. Ctrl+C stops it.

    Example: mailer serve-unsubscribe --host 127.0.0.1 --port 8058
    """
    from mailer.folder import Newsletter
    from mailer.inbox import make_server

    newsletter = Newsletter(options(ctx).folder)
    run(lambda: newsletter.settings)
    server = run(lambda: make_server(newsletter, host, port))
    say(f"listening on http://{host}:{server.server_address[1]}/ (Ctrl+C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        say("stopped")
    finally:
        server.server_close()
