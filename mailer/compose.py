"""Compose an issue: render it once and write the email HTML, its text part and a preview."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailer.checks import Finding, email_findings
from mailer.config import Settings
from mailer.errors import MailerError, Problem, shown_path
from mailer.folder import BUILTIN_LAYOUTS_DIR, Newsletter
from mailer.issue import LoadedIssue, load_issue
from mailer.render import (
    Personalised,
    image_files,
    preview_page,
    reload_script,
    render_sample,
    with_image_files,
)


@dataclass(frozen=True)
class Composed:
    """What compose wrote, and figures worth reporting."""

    html_path: Path
    text_path: Path
    preview_path: Path
    html_bytes: int
    warnings: tuple[Problem, ...]
    findings: tuple[Finding, ...]
    render_seconds: float


def sender_line(settings: Settings) -> str:
    """Return the From line as an inbox shows it."""
    name = settings.from_name or settings.name
    return f"{name} <{settings.from_address}>"


def compose_issue(
    folder: Path, issue_path: Path, out_dir: Path, *, watching: bool = False
) -> Composed:
    """Validate and render the issue, then write <stem>.html, .txt and .preview.html."""
    settings = Newsletter(folder).settings
    loaded = load_issue(issue_path, shown_path(issue_path))
    started = time.perf_counter()
    email = render_sample(folder, loaded, settings)
    render_seconds = time.perf_counter() - started
    findings = tuple(email_findings(folder, loaded, settings, email))
    return _write(out_dir, loaded, settings, email, findings, render_seconds, watching)


def _write(
    out_dir: Path,
    loaded: LoadedIssue,
    settings: Settings,
    email: Personalised,
    findings: tuple[Finding, ...],
    render_seconds: float,
    watching: bool,
) -> Composed:
    _make_dir(out_dir)
    stem = loaded.stem
    html_path = out_dir / f"{stem}.html"
    text_path = out_dir / f"{stem}.txt"
    preview_path = out_dir / f"{stem}.preview.html"
    html_bytes = email.html.encode("utf-8")
    # The message carries its image files (cid: links); the page on disk shows them from
    # copies beside it, as the web archive does.
    for name, data in image_files(stem, email.images).items():
        _make_dir((out_dir / name).parent)
        _write_file(out_dir / name, data)
    _write_file(html_path, with_image_files(email.html, stem, email.images).encode("utf-8"))
    _write_file(text_path, email.text.encode("utf-8"))
    reload = _reload(stem, html_bytes) if watching else None
    page = preview_page(
        email,
        sender=sender_line(settings),
        preheader=email.preheader,
        problems=[str(w) for w in loaded.warnings] + [str(f) for f in findings],
        reload=reload,
    )
    _write_file(preview_path, page.encode("utf-8"))
    if reload is not None:
        _write_version(out_dir, *reload)
    return Composed(
        html_path,
        text_path,
        preview_path,
        len(html_bytes),
        loaded.warnings,
        findings,
        render_seconds,
    )


def write_error_preview(out_dir: Path, stem: str, message: str) -> Path:
    """Show an error in the watching preview page instead of the email."""
    _make_dir(out_dir)
    failed = Personalised(subject="(not composed)", preheader="", html="", text=message)
    reload = _reload(stem, message.encode("utf-8"))
    page = preview_page(
        failed, sender="", preheader="", problems=message.splitlines(), reload=reload
    )
    preview_path = out_dir / f"{stem}.preview.html"
    _write_file(preview_path, page.encode("utf-8"))
    _write_version(out_dir, *reload)
    return preview_path


def _reload(stem: str, content: bytes) -> tuple[str, str]:
    return hashlib.sha256(content).hexdigest()[:16], f"{stem}.version.js"


def _write_version(out_dir: Path, version: str, script: str) -> None:
    """Write the script a watching preview polls, after the page it announces."""
    _write_file(out_dir / script, reload_script(version).encode("utf-8"))


def _make_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MailerError(
            f"{out_dir}: cannot make the folder ({err.strerror}); choose another --out"
        ) from err


def _write_file(path: Path, data: bytes) -> None:
    """Write through a temporary file so a browser never reads half a file."""
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as err:
        raise MailerError(f"{path}: cannot write ({err.strerror}); choose another --out") from err


def watch_issue(
    folder: Path,
    issue_path: Path,
    out_dir: Path,
    report: Callable[[Composed | MailerError], None],
    stop: threading.Event | None = None,
) -> None:
    """Compose now and again whenever the issue, the layouts or the settings change."""
    from watchfiles import watch  # imported late: only --watch needs it

    def once() -> None:
        try:
            report(compose_issue(folder, issue_path, out_dir, watching=True))
        except MailerError as err:
            write_error_preview(out_dir, issue_path.stem, str(err))
            report(err)

    once()
    # Watch folders, not files: many editors save by writing a new file and renaming it over
    # the old one, and a watch on the old file would go quiet after the first save.
    newsletter = Newsletter(folder)
    files = {issue_path.resolve(), newsletter.settings_path.resolve()}
    trees = [p.resolve() for p in (newsletter.layouts_dir, BUILTIN_LAYOUTS_DIR) if p.exists()]

    def wanted(_change: object, name: str) -> bool:
        path = Path(name).resolve()
        return path in files or any(path.is_relative_to(tree) for tree in trees)

    # Not recursive: the folder may hold a .venv of thousands of folders; layouts are listed.
    roots = {p.parent for p in files if p.parent.exists()}
    roots |= {d for tree in trees for d in (tree, *tree.rglob("*")) if d.is_dir()}
    for _changes in watch(
        *roots,
        watch_filter=wanted,
        recursive=False,
        stop_event=stop,
        debounce=200,
        rust_timeout=500,
    ):
        once()
