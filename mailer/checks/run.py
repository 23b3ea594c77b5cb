"""Check an email as it will be sent: size, links, dates, accessibility, clients, text part.

Every check reads the final, inlined HTML and the text part after personalisation, so a custom
layout is checked as strictly as the issue. Findings name where to fix the problem: the issue
field (`blocks[3].items[1].links[0].url`), a setting, or the element of the layout.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path

from mailer.checks.access import check_accessibility
from mailer.checks.archive import archive_findings
from mailer.checks.base import Email, Finding
from mailer.checks.clients import check_clients
from mailer.checks.dates import check_dates
from mailer.checks.examples import check_example_values
from mailer.checks.images import check_images
from mailer.checks.links import check_links, collect_links
from mailer.checks.online import check_online
from mailer.checks.size import check_size
from mailer.checks.text import check_text
from mailer.config import Settings, key_line
from mailer.errors import MailerError, shown_path
from mailer.folder import SETTINGS_FILE, Newsletter
from mailer.issue import LoadedIssue, Loc, YamlSource, load_issue
from mailer.render import Personalised, layout_files, render_sample

CHECKS = ("settings", "size", "links", "images", "dates", "accessibility", "clients", "text")
_LOC_PART = re.compile(r"([A-Za-z_]+)|\[(\d+)\]")
_ISSUE_FIELD = re.compile(r"^(blocks\[\d+\][\w.\[\]]*|send_at|date)$")
_NEEDLE = re.compile(r'(?:href|src)="([^"…]{6,})')


def check_email(
    *,
    loaded: LoadedIssue,
    settings: Settings,
    email: Personalised,
    online: bool = False,
    timeout: float = 10.0,
) -> list[Finding]:
    """Run every check on one personalised email; only online=True touches the network."""
    parsed = Email.parse(loaded, settings, email.html, email.text)
    links = collect_links(parsed)
    findings = [
        *check_example_values(settings),
        *check_size(parsed),
        *check_links(parsed),
        *check_images(email.images),
        *(check_online(links, timeout, settings.archive_url) if online else []),
        *check_dates(parsed),
        *check_accessibility(parsed),
        *check_clients(parsed),
        *check_text(parsed, links),
    ]
    return sorted(findings, key=lambda f: (f.severity != "error", CHECKS.index(f.check)))


def check_issue(
    folder: Path, issue_path: Path, *, online: bool = False, timeout: float = 10.0
) -> list[Finding]:
    """Load, render and personalise the issue as compose does, then check it."""
    settings = Newsletter(folder).settings
    loaded = load_issue(issue_path, shown_path(issue_path))
    email = render_sample(folder, loaded, settings)
    return email_findings(folder, loaded, settings, email, online=online, timeout=timeout)


def email_findings(
    folder: Path,
    loaded: LoadedIssue,
    settings: Settings,
    email: Personalised,
    *,
    online: bool = False,
    timeout: float = 10.0,
) -> list[Finding]:
    """Run every check on a rendered email; place each finding at its file and line."""
    findings = check_email(
        loaded=loaded, settings=settings, email=email, online=online, timeout=timeout
    )
    archive = archive_findings(folder, loaded, settings, email)
    located = locate_findings(
        [*archive.errors, *findings, *archive.warnings],
        folder=folder,
        loaded=loaded,
        settings=settings,
    )
    return [*located, *archive.located]


def has_errors(findings: list[Finding]) -> bool:
    """Say whether any finding is an error (and so blocks sending)."""
    return any(f.severity == "error" for f in findings)


def findings_json(findings: list[Finding]) -> str:
    """Return the findings as JSON: counts, then one object per finding."""
    errors = sum(f.severity == "error" for f in findings)
    report = {
        "ok": errors == 0,
        "errors": errors,
        "warnings": len(findings) - errors,
        "findings": [asdict(f) for f in findings],
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def locate_findings(
    findings: list[Finding], *, folder: Path, loaded: LoadedIssue, settings: Settings
) -> list[Finding]:
    """Prefix each finding's place with file:line: the issue, mailer.toml or a layout file."""
    source: YamlSource | None = loaded.source
    try:
        issue_lines = loaded.path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):  # changed or gone since: plain places
        source, issue_lines = None, []
    located = []
    for finding in findings:
        place = None
        if source is not None and _ISSUE_FIELD.match(finding.where):
            mark = source.mark(_loc(finding.where))
            place = f"{source.path}:{mark[0]}:{mark[1]}" if mark else source.path
            if mark and finding.where.endswith(("body", "intro")):  # Markdown: the line in it
                line = _line_after(issue_lines, mark[0], finding.message)
                place = f"{source.path}:{line}" if line else place
        elif finding.where.startswith(f"{SETTINGS_FILE}: "):
            key = finding.where.removeprefix(f"{SETTINGS_FILE}: ")
            settings_path = Newsletter(folder).settings_path
            line = _key_line_in(settings_path, key.rsplit(".", 1)[-1])
            place = f"{shown_path(settings_path)}:{line}" if line else shown_path(settings_path)
            finding = replace(finding, where=key)
        else:
            place = _in_layout_files(finding, folder, loaded.issue.layout or settings.layout)
        located.append(replace(finding, where=f"{place}: {finding.where}") if place else finding)
    return located


def _line_after(lines: list[str], start: int, message: str) -> int | None:
    """Return the first line from start that holds a quoted part of the message."""
    for quoted in re.findall(r'"([^"]{3,})"', message):
        shown = quoted.split("?", 1)[0]  # placeholders are filled in the HTML's query strings
        for number in range(start, min(start + 500, len(lines) + 1)):
            if shown in lines[number - 1]:
                return number
    return None


def _loc(where: str) -> Loc:
    return tuple(int(i) if i else name for name, i in _LOC_PART.findall(where))


def _in_layout_files(finding: Finding, folder: Path, layout: str) -> str | None:
    if "(layout" not in finding.where:
        return None
    needles = []
    colour = re.search(r"#[0-9a-f]{6}", finding.message)
    if finding.check == "accessibility" and colour:  # the layout's CSS sets the colour
        needles += [colour.group(0), _short_hex(colour.group(0))]
    needles += _NEEDLE.findall(finding.where)
    try:
        directory = Newsletter(folder).layout_dir(layout)
    except MailerError:  # the layout is gone: the HTML element is all there is to show
        return None
    files = list(layout_files(directory))
    for needle in needles:
        for path in files:
            line = _line_in(path, re.escape(needle))
            if line:
                return f"{shown_path(path)}:{line}"
    return None


def _short_hex(colour: str) -> str:
    """Return #abc for #aabbcc (premailer writes the short form), else the colour."""
    pairs = [colour[i : i + 2] for i in (1, 3, 5)]
    return "#" + "".join(p[0] for p in pairs) if all(p[0] == p[1] for p in pairs) else colour


def _key_line_in(path: Path, key: str) -> int | None:
    try:
        return key_line(path.read_text(encoding="utf-8"), key)
    except (OSError, UnicodeDecodeError):
        return None


def _line_in(path: Path, pattern: str) -> int | None:
    """Return the first line of a file matching pattern (case-insensitive)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    wanted = re.compile(pattern, re.IGNORECASE)
    return next((n for n, line in enumerate(lines, 1) if wanted.search(line)), None)
