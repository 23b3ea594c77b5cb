"""The archive: do the email's links into it lead to pages it will have, and is it published?

Only a published archive ([archive] publish_dir or publish_command) is linked from the email;
without one, "Add to calendar" opens Google Calendar, and a link the issue or its layout
makes into archive_url leads nowhere: an error for a scheduled issue, which cron sends while
nobody looks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mailer.checks.base import Email, Finding
from mailer.checks.links import collect_links
from mailer.config import Settings
from mailer.errors import Problem, shown_path
from mailer.folder import SETTINGS_FILE, Newsletter
from mailer.issue import LoadedIssue
from mailer.render import Personalised, calendar_form

_SAFE_STEM = re.compile(r"[A-Za-z0-9._~-]+")
_PAGE_SUFFIXES = (".html", ".htm", ".xml", ".php", ".asp", ".aspx", ".jsp")


def archive_warnings(folder: Path, loaded: LoadedIssue, settings: Settings) -> list[Problem]:
    """Say when the issue's view-in-browser link would lead to a page the archive lacks."""
    newsletter = Newsletter(folder, settings)
    link = newsletter.view_url(loaded.stem)
    if settings.archive_url is None or link is None:
        return []
    shown, dead = shown_path(loaded.path), f'so the view-in-browser link "{link}"'
    parts = urlsplit(settings.archive_url)
    in_issues = newsletter.holds_issue(loaded.path)
    checks = [
        (
            bool(parts.query or parts.fragment) or parts.path.endswith(_PAGE_SUFFIXES),
            (SETTINGS_FILE, "archive_url"),
            f'"{settings.archive_url}" is a page, not the folder of the archive, {dead} is wrong',
            "set it to the folder, e.g. https://example.org/newsletter/archive/",
        ),
        (
            not _SAFE_STEM.fullmatch(loaded.stem),
            (shown, ""),
            f"the file name has characters a link cannot carry as they are, {dead} may fail",
            "rename the file using letters, digits, - and _ only",
        ),
        (
            not in_issues,
            (shown, ""),
            f"`mailer archive` publishes only issues/*.yaml, {dead} leads nowhere",
            "move the file into issues/",
        ),
    ]
    return [
        Problem(p, None, None, w, message, hint) for bad, (p, w), message, hint in checks if bad
    ]


_PUBLISH = "set [archive] publish_dir or publish_command in mailer.toml (each send publishes)"


@dataclass(frozen=True)
class ArchiveFindings:
    """What the archive check found: errors and warnings to locate, and located warnings."""

    errors: list[Finding]
    warnings: list[Finding]
    located: list[Finding]


def archive_findings(
    folder: Path, loaded: LoadedIssue, settings: Settings, email: Personalised
) -> ArchiveFindings:
    """Say how the calendar links work, and what links into an archive nothing publishes."""
    located = [
        Finding("warning", "archive", _place(p), p.message, p.hint)
        for p in archive_warnings(folder, loaded, settings)
    ]
    found = _unpublished(folder, loaded, settings, email)
    return ArchiveFindings(
        [f for f in found if f.severity == "error"],
        [f for f in found if f.severity == "warning"],
        located,
    )


def _unpublished(
    folder: Path, loaded: LoadedIssue, settings: Settings, email: Personalised
) -> list[Finding]:
    newsletter = Newsletter(folder, settings)
    found = []
    form = calendar_form(newsletter, loaded)
    count = len(loaded.issue.dated_items())
    if form == "google":
        found.append(
            Finding(
                "warning",
                "archive",
                f"{SETTINGS_FILE}: archive.publish_dir",
                f'the {count} "Add to calendar" link(s) open Google Calendar, as no archive '
                "is published to hold .ics files (Outlook and Apple Calendar readers need a "
                "Google account there, or copy the date)",
                f"{_PUBLISH}: the links then open .ics files that every calendar app reads"
                if settings.archive_url
                else "set archive_url and [archive] publish_dir or publish_command in "
                "mailer.toml: the links then open .ics files that every calendar app reads",
            )
        )
    if settings.archive_url is None:
        if settings.archive.publishes:
            found.append(
                Finding(
                    "warning",
                    "archive",
                    f"{SETTINGS_FILE}: archive_url",
                    "the archive is published, but the email cannot link to it without "
                    "archive_url (no view-in-browser link)",
                    "set archive_url to the web address publish_dir or publish_command serves",
                )
            )
        return found
    if not settings.archive.publishes:
        found += _dead_links(loaded, settings, email)
    return found


def _dead_links(loaded: LoadedIssue, settings: Settings, email: Personalised) -> list[Finding]:
    """Return the email's links into archive_url, which nothing publishes."""
    assert settings.archive_url is not None
    base = settings.archive_url.rstrip("/")
    parsed = Email.parse(loaded, settings, email.html, email.text)
    scheduled = loaded.issue.send_at is not None
    found = []
    for link in collect_links(parsed):
        if link.url == base or link.url.startswith(base + "/"):
            found.append(
                Finding(
                    "error" if scheduled else "warning",
                    "archive",
                    link.where,
                    f'"{link.url}" is in the archive (archive_url), which nothing publishes: '
                    + (
                        "cron would send a link that leads nowhere"
                        if scheduled
                        else "it leads nowhere unless you publish it yourself"
                    ),
                    f"{_PUBLISH}, or remove the link",
                )
            )
    return found


def _place(problem: Problem) -> str:
    return problem.path if problem.line is None else f"{problem.path}:{problem.line}"
