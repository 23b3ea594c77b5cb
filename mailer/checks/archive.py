"""The archive: does the email's view-in-browser link lead to a page the archive will have?"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from mailer.config import Settings
from mailer.errors import Problem, shown_path
from mailer.folder import SETTINGS_FILE, Newsletter
from mailer.issue import LoadedIssue
from mailer.ledger import sent_issues

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
        (
            in_issues and loaded.issue.send_at is None and loaded.stem not in sent_issues(folder),
            (shown, ""),
            f"`mailer archive` publishes this issue once it is sent (it has no send_at), {dead} "
            "leads nowhere until then",
            "publish the archive right after sending, or add send_at",
        ),
    ]
    return [
        Problem(p, None, None, w, message, hint) for bad, (p, w), message, hint in checks if bad
    ]
