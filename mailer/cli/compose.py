"""Writing a newsletter: validate, compose, check, archive (registered in app.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailer.cli.output import fail, in_folder, options, run, say, warn
from mailer.errors import MailerError

if TYPE_CHECKING:
    from mailer.compose import Composed


def validate(
    ctx: typer.Context,
    issues: Annotated[list[Path], typer.Argument(metavar="ISSUE", help="Issue files to check.")],
) -> None:
    """Check issue files without writing anything; exit 1 if any is invalid.

    Example: mailer validate issues/*.yaml
    """
    from datetime import UTC, datetime

    from mailer.errors import SettingsError
    from mailer.folder import Newsletter
    from mailer.schedule import validate_issues

    newsletter = Newsletter(options(ctx).folder)
    settings, settings_failed = None, False
    if newsletter.settings_path.is_file():  # issue files alone are checked without settings
        try:
            settings = newsletter.settings  # what `send` would refuse is refused here too
        except SettingsError as err:
            fail(str(err))
            settings_failed = True
    files = [(in_folder(ctx, path), str(path)) for path in issues]
    results = validate_issues(newsletter.dir, files, settings, datetime.now(UTC))
    for result in results:
        if result.error is not None:
            fail(str(result.error))
            continue
        for warning in result.warnings:
            warn(str(warning))
        for error in result.errors:
            fail(str(error))
        if result.valid and result.loaded is not None:
            count = len(result.loaded.issue.blocks)
            shown = result.loaded.source.path
            say(f"{shown}: valid ({count} block{'' if count == 1 else 's'})")
    if settings_failed or not all(result.valid for result in results):
        raise typer.Exit(1)


def _report_composed(ctx: typer.Context, composed: Composed) -> None:
    for warning in composed.warnings:
        warn(str(warning))
    errors = [f for f in composed.findings if f.severity == "error"]
    for finding in errors:
        typer.echo(str(finding), err=True)
    if composed.findings:
        count = len(composed.findings) - len(errors)
        warn(
            f"checks: {len(errors)} error(s), {count} warning(s); the preview lists them, "
            "and `mailer check` explains each"
        )
    size = composed.html_bytes / 1024
    say(
        f"wrote {composed.html_path} ({size:.1f} KB), {composed.text_path}, "
        f"{composed.preview_path}",
    )
    if options(ctx).verbose:
        say(f"rendered in {composed.render_seconds * 1000:.0f} ms")


def compose(
    ctx: typer.Context,
    issue: Annotated[
        Path,
        typer.Argument(metavar="ISSUE", help="The issue file, e.g. issues/2023-10-20-news.yaml"),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Where to write the files (build/)."),
    ] = None,
    open_preview: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the preview in a browser.")
    ] = True,
    watch: Annotated[
        bool, typer.Option("--watch", help="Compose again on every change; the preview reloads.")
    ] = False,
) -> None:
    """Write the email HTML, its text part and a preview page, then open the preview.

    Example: mailer compose issues/2023-10-20-ld-newsletter.yaml --no-open
    """
    from mailer.compose import compose_issue, watch_issue
    from mailer.folder import Newsletter

    folder = options(ctx).folder
    issue_path = in_folder(ctx, issue)
    out_dir = in_folder(ctx, out) if out else Newsletter(folder).build_dir
    if watch:
        opened = False

        def report(result: Composed | MailerError) -> None:
            nonlocal opened
            if isinstance(result, MailerError):
                fail(str(result))
                preview = out_dir / f"{issue_path.stem}.preview.html"
            else:
                _report_composed(ctx, result)
                preview = result.preview_path
            if open_preview and not opened:
                _open_in_browser(preview)
                opened = True
            say("watching for changes (Ctrl+C to stop)")

        try:
            watch_issue(folder, issue_path, out_dir, report)
        except KeyboardInterrupt:
            say("stopped")
        return
    composed = run(lambda: compose_issue(folder, issue_path, out_dir))
    _report_composed(ctx, composed)
    if open_preview:
        _open_in_browser(composed.preview_path)


def check(
    ctx: typer.Context,
    issue: Annotated[Path, typer.Argument(metavar="ISSUE", help="The issue file to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    online: Annotated[
        bool, typer.Option("--online", help="Also fetch every link once and report broken ones.")
    ] = False,
) -> None:
    """Check the final email: size, links, dates, accessibility, client support, text part.

    Exit 1 when there is an error. Example: mailer check issues/2023-10-20-ld-newsletter.yaml
    """
    from mailer.checks import check_issue, findings_json, has_errors

    findings = run(lambda: check_issue(options(ctx).folder, in_folder(ctx, issue), online=online))
    if as_json:
        typer.echo(findings_json(findings), nl=False)
    else:
        for finding in findings:
            typer.echo(str(finding))
        errors = sum(f.severity == "error" for f in findings)
        warnings = len(findings) - errors
        say(f"{issue}: {errors} error(s), {warnings} warning(s)")
    if has_errors(findings):
        raise typer.Exit(1)


def archive(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Where to build the site (build/archive)."),
    ] = None,
    include_all: Annotated[
        bool, typer.Option("--all", help="Include issues not yet sent or due (not published).")
    ] = False,
) -> None:
    """Build the web archive: an index, a page per issue, an Atom feed and calendar files.

    Then publish it, when [archive] publish_dir or publish_command is set (not with --all:
    it would publish issues not yet sent); a failed publish exits 3. An issue file that
    cannot be loaded is reported and left out (its page from the last build is kept); the
    others are built, then the exit code is 1.
    Example: mailer archive --out public/newsletter
    """
    from datetime import UTC, datetime

    from mailer.folder import Newsletter
    from mailer.ledger import folder_lock
    from mailer.publish import build_archive, publish_archive

    newsletter = Newsletter(options(ctx).folder)
    out_dir = in_folder(ctx, out) if out else newsletter.archive_dir
    report = run(
        lambda: build_archive(
            newsletter.dir, out_dir, include_all=include_all, now=datetime.now(UTC)
        )
    )
    say(
        f"wrote {len(report.issues)} issue(s) and {report.calendar_files} calendar "
        f"file(s) to {report.out_dir}; open {report.out_dir / 'index.html'}",
    )
    if report.skipped:
        say(
            f"left out (not sent, not yet due; --all includes them): {', '.join(report.skipped)}",
        )
    for error in report.invalid:
        fail(str(error))
    code = 0
    if report.invalid:
        kept = f"; kept their pages from the last build: {', '.join(report.kept)}"
        fail(
            f"left out {len(report.invalid)} issue file(s) that cannot be loaded"
            f"{kept if report.kept else ''}; fix them (`mailer validate`) and run archive again"
        )
        code = 1
    if newsletter.settings.archive.publishes and include_all:
        warn("not published: --all includes issues not yet sent; run it without --all to publish")
    elif newsletter.settings.archive.publishes:
        try:
            with folder_lock(newsletter.dir):  # not while a send publishes it too
                published = publish_archive(newsletter, out_dir)
        except MailerError as err:  # PublishError (exit 3), or a send running now (75)
            fail(str(err))
            code = err.exit_code
        else:
            say(str(published))
    if code:
        raise typer.Exit(code)


def _open_in_browser(path: Path) -> None:
    import webbrowser

    if not webbrowser.open(path.resolve().as_uri()):
        warn(f"could not open a browser; open {path} yourself")
