"""The web archive: a static site of the published issues, an Atom feed and calendar files.

Layout of the archive folder (every link in it is relative, so it works from disk and under
any base URL):

    index.html                  every issue, newest first: date, number, subject, preheader
    <stem>.html                 one issue: the email as sent to a recipient with no personal data
    feed.xml                    Atom (RFC 4287); links are absolute when archive_url is set
    calendar/<stem>-<b>-<i>.ics one event per dated item of blocks[b].items[i] (RFC 5545)
    .mailer-archive             the files mailer wrote, so a rebuild removes only its own

An issue file that cannot be loaded is reported and left out; the others are built. Its page
and calendar files from an earlier build are kept: sent emails link to them.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from urllib.parse import quote

from mailer.config import Settings
from mailer.errors import IssueError, MailerError, shown_path
from mailer.folder import (
    ARCHIVE_CALENDAR_DIR,
    ARCHIVE_FEED,
    ARCHIVE_INDEX,
    Newsletter,
    issue_page,
)
from mailer.issue import LoadedIssue, try_load_issue
from mailer.ledger import IssueSummary, sent_issues
from mailer.publish.calendar import event_calendar, issue_events
from mailer.publish.feed import FeedEntry, feed_xml
from mailer.render import (
    SAMPLE_RECIPIENT,
    format_date,
    image_files,
    render_sample,
    with_image_files,
)

INDEX_FILE = ARCHIVE_INDEX
FEED_FILE = ARCHIVE_FEED
MANIFEST_FILE = ".mailer-archive"
PRODUCT_ID = "-//mailer//NONSGML mailer archive//EN"
# Pages are rendered as if published here (RFC 2606: .invalid never resolves), then this
# prefix is cut off, so the email's view-in-browser and calendar links become relative.
_RENDER_BASE = "https://archive.mailer.invalid/"


@dataclass(frozen=True)
class ArchiveReport:
    """What build_archive wrote."""

    out_dir: Path
    issues: list[str]  # stems included, newest first
    skipped: list[str]  # stems left out (not sent, send_at in the future)
    calendar_files: int
    invalid: list[IssueError] = field(default_factory=list)  # files that could not be loaded
    kept: list[str] = field(default_factory=list)  # their stems whose earlier page was kept


@dataclass(frozen=True)
class _Page:
    loaded: LoadedIssue
    subject: str
    preheader: str
    published: datetime
    html: str
    images: dict[str, bytes] = field(default_factory=dict)  # files beside the page


def build_archive(
    folder: Path, out_dir: Path, *, include_all: bool = False, now: datetime
) -> ArchiveReport:
    """Write the archive of the issues in folder/issues/ that are sent or due (all, if asked).

    now must be timezone-aware: an issue whose send_at is at or before it is included.
    Files that cannot be loaded are left out and listed in the report's invalid.
    """
    if now.tzinfo is None:
        raise ValueError("build_archive: now must be timezone-aware")
    newsletter = Newsletter(folder)
    settings = newsletter.settings
    ledger = sent_issues(folder)
    included: list[LoadedIssue] = []
    skipped: list[str] = []
    valid, invalid = _load_all(newsletter)
    for loaded in valid:
        if include_all or _is_published(loaded, ledger.get(loaded.stem), now):
            included.append(loaded)
        else:
            skipped.append(loaded.stem)
    files: dict[str, bytes] = {}
    pages = [_page(folder, loaded, settings, ledger.get(loaded.stem)) for loaded in included]
    for number, page in enumerate(pages):
        newer = pages[number - 1] if number > 0 else None
        older = pages[number + 1] if number + 1 < len(pages) else None
        html_page = _issue_html(page, settings, newer, older)
        files[issue_page(page.loaded.stem)] = html_page.encode("utf-8")
        files.update(page.images)
        link = newsletter.view_url(page.loaded.stem)
        for path, event in issue_events(page.loaded, settings, SAMPLE_RECIPIENT, link):
            ics = event_calendar(event, zone=settings.zone, stamp=now, product=PRODUCT_ID)
            files[path] = ics.encode("utf-8")
    files[INDEX_FILE] = _index_html(pages, settings).encode("utf-8")
    entries = [
        FeedEntry(p.loaded.stem, p.subject, p.preheader, p.published, _href(p.loaded.stem))
        for p in pages
    ]
    files[FEED_FILE] = feed_xml(entries, settings, now)
    unloadable = {path.stem for path in invalid}
    kept = _write_all(out_dir, files, unloadable)
    calendar_files = sum(1 for path in files if path.endswith(".ics"))
    return ArchiveReport(
        out_dir,
        [p.loaded.stem for p in pages],
        skipped,
        calendar_files,
        list(invalid.values()),
        sorted(stem for stem in unloadable if issue_page(stem) in kept),
    )


def _load_all(newsletter: Newsletter) -> tuple[list[LoadedIssue], dict[Path, IssueError]]:
    """Load every issue of the folder: the valid ones newest first, and the others' errors."""
    loaded: list[LoadedIssue] = []
    invalid: dict[Path, IssueError] = {}
    for path in newsletter.issue_paths():
        result = try_load_issue(path, shown_path(path))
        if isinstance(result, IssueError):
            invalid[path] = result
        else:
            loaded.append(result)
    order = sorted(loaded, key=lambda i: (i.issue.date, i.issue.number or 0, i.stem), reverse=True)
    return order, invalid


def _is_published(loaded: LoadedIssue, sent: IssueSummary | None, now: datetime) -> bool:
    send_at = loaded.issue.send_at
    return sent is not None or (send_at is not None and send_at <= now)


def _page(
    folder: Path,
    loaded: LoadedIssue,
    settings: Settings,
    sent: IssueSummary | None,
) -> _Page:
    """Render the issue as a recipient with no personal data sees it, with relative links."""
    relative = settings.model_copy(update={"archive_url": _RENDER_BASE})
    email = render_sample(folder, loaded, relative, for_archive=True)
    if sent is not None:
        published = datetime.fromisoformat(sent.started_at)
    elif loaded.issue.send_at is not None:
        published = loaded.issue.send_at
    else:
        published = datetime.combine(loaded.issue.date, time(), tzinfo=settings.zone)
    page_html = with_image_files(email.html.replace(_RENDER_BASE, ""), loaded.stem, email.images)
    images = image_files(loaded.stem, email.images)
    return _Page(loaded, email.subject, email.preheader, published, page_html, images)


_STYLE = """body { margin: 0; background: #eef2f6; color: #1f2933; font: 16px/1.5 Arial, Helvetica,
sans-serif; } .wrap { max-width: 600px; margin: 0 auto; padding: 16px; } a { color: %s; }
h1 { font-size: 28px; line-height: 1.2; margin: 8px 0; } .meta { color: #4a5561; font-size: 14px;
margin: 0; } ol { list-style: none; margin: 0; padding: 0; } li { background: #fff; margin: 0 0
12px; padding: 16px; border-left: 4px solid %s; } h2 { font-size: 20px; margin: 0 0 4px; }
li p { margin: 4px 0 0; }"""


def _meta(page: _Page) -> str:
    issue = page.loaded.issue
    number = f" &middot; Issue {issue.number}" if issue.number is not None else ""
    shown = html.escape(format_date(issue.date))
    return f'<time datetime="{issue.date.isoformat()}">{shown}</time>{number}'


def _index_html(pages: list[_Page], settings: Settings) -> str:
    items = "".join(
        f'<li><h2><a href="{_href(p.loaded.stem)}">{html.escape(p.subject)}</a></h2>'
        f'<p class="meta">{_meta(p)}</p>'
        + (f"<p>{html.escape(p.preheader)}</p>" if p.preheader else "")
        + "</li>\n"
        for p in pages
    )
    listing = f"<ol>\n{items}</ol>" if pages else "<p>No issues have been published yet.</p>"
    name = html.escape(settings.name)
    colour = settings.brand.primary_colour
    return f"""<!doctype html>
<html lang="{settings.language}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}: all issues</title>
<link rel="alternate" type="application/atom+xml" title="{name}" href="{FEED_FILE}">
<style>{_STYLE % (colour, colour)}</style></head>
<body><div class="wrap"><header><h1>{name}</h1>
<p class="meta">{html.escape(settings.organisation)} &middot; <a href="{FEED_FILE}">Atom feed</a>
</p></header><main>
{listing}
</main></div></body></html>
"""


def _issue_html(page: _Page, settings: Settings, newer: _Page | None, older: _Page | None) -> str:
    """Wrap the email in the archive's header (subject, date, back link) and a footer."""
    colour = settings.brand.primary_colour
    link = f'style="color: {colour};"'
    header = (
        '<header style="max-width: 600px; margin: 0 auto; padding: 16px; font-family: Arial, '
        'Helvetica, sans-serif; color: #1f2933;"><p style="margin: 0; font-size: 14px;">'
        f'<a href="{INDEX_FILE}" {link}>&larr; All issues of {html.escape(settings.name)}</a>'
        '</p><h1 style="margin: 8px 0 4px; font-size: 26px; line-height: 32px; color: #1f2933;">'
        f"{html.escape(page.subject)}</h1>"
        f'<p style="margin: 0; font-size: 14px; color: #4a5561;">{_meta(page)}</p></header><main>'
    )
    around = [
        f'<a href="{_href(p.loaded.stem)}" rel="{rel}" {link}>{label}: {html.escape(p.subject)}</a>'
        for p, rel, label in ((newer, "next", "Newer"), (older, "prev", "Older"))
        if p is not None
    ]
    footer = (
        '</main><nav style="max-width: 600px; margin: 0 auto; padding: 0 16px 24px; '
        'font-family: Arial, Helvetica, sans-serif; font-size: 14px; line-height: 24px;">'
        + "<br>".join([*around, f'<a href="{INDEX_FILE}" {link}>All issues</a>'])
        + "</nav>"
    )
    feed = f'<link rel="alternate" type="application/atom+xml" href="{FEED_FILE}">'
    text = page.html.replace("</head>", feed + "</head>", 1)
    opening = re.search(r"<body\b[^>]*>", text, re.IGNORECASE)
    start = opening.end() if opening else 0
    text = text[:start] + header + text[start:]
    closing = text.lower().rfind("</body>")
    return text[:closing] + footer + text[closing:] if closing >= 0 else text + footer


def _href(stem: str) -> str:
    """Return the relative link to the issue's page (quote() also keeps a colon from a scheme)."""
    return quote(stem, safe="") + ".html"


def _write_all(out_dir: Path, files: dict[str, bytes], keep_stems: set[str]) -> set[str]:
    """Write files into out_dir, then remove what an earlier build wrote and this one did not.

    The files of keep_stems (issues that could not be loaded this time) stay; return them.
    """
    manifest = out_dir / MANIFEST_FILE
    try:
        if out_dir.is_dir() and any(out_dir.iterdir()) and not manifest.is_file():
            raise MailerError(
                f"{out_dir}: not empty, and not an archive mailer wrote; "
                "choose an empty or new folder for --out"
            )
        before = manifest.read_text("utf-8").splitlines()[1:] if manifest.is_file() else []
        kept = {name for name in before if _stem_of(name) in keep_stems} - set(files)
        for name, data in files.items():
            path = out_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".part")
            partial.write_bytes(data)
            os.replace(partial, path)  # a web server never serves half a file
        listing = "# written by `mailer archive`; a rebuild deletes these files\n"
        listed = sorted({*files, *kept})
        manifest.write_text(listing + "".join(f"{name}\n" for name in listed), "utf-8")
        for name in set(before) - set(listed):
            stale = out_dir / name
            if stale.resolve().is_relative_to(out_dir.resolve()):
                stale.unlink(missing_ok=True)
    except OSError as err:
        raise MailerError(f"{out_dir}: cannot write the archive ({err})") from err
    return kept


_CALENDAR_FILE = re.compile(rf"{re.escape(ARCHIVE_CALENDAR_DIR)}/(.+)-\d+-\d+\.ics")


def _stem_of(name: str) -> str | None:
    """Return the issue an archive file belongs to: x.html, calendar/x-1-0.ics -> x."""
    if found := _CALENDAR_FILE.fullmatch(name):
        return found.group(1)
    return name.removesuffix(".html") if "/" not in name and name.endswith(".html") else None
