"""The web archive: a static site of the published issues, an Atom feed and calendar files.

Layout of the archive folder (every link in it is relative, so it works from disk and under
any base URL):

    index.html                  every issue, newest first: date, number, subject, preheader
    <stem>.html                 one issue: the email as sent to a recipient with no personal data
    feed.xml                    Atom (RFC 4287); links are absolute when archive_url is set
    calendar/<stem>-<b>-<i>.ics one event per dated item of blocks[b].items[i] (RFC 5545)
    .mailer-archive             the files mailer wrote, so a rebuild removes only its own
"""

from __future__ import annotations

import html
import os
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from urllib.parse import quote, urlsplit

from mailer.config import SETTINGS_FILE, Settings, load_settings
from mailer.errors import IssueError, MailerError, Problem, shown_path
from mailer.ical import event_calendar, issue_events
from mailer.issue import LoadedIssue, load_issue
from mailer.ledger import LEDGER_FILE, IssueSummary, Ledger
from mailer.render import render_issue, view_url
from mailer.views import format_date

ARCHIVE_DIR = Path("build") / "archive"
INDEX_FILE = "index.html"
FEED_FILE = "feed.xml"
MANIFEST_FILE = ".mailer-archive"
PRODUCT_ID = "-//mailer//NONSGML mailer archive//EN"
# Pages are rendered as if published here (RFC 2606: .invalid never resolves), then this
# prefix is cut off, so the email's view-in-browser and calendar links become relative.
_RENDER_BASE = "https://archive.mailer.invalid/"
_ATOM = "http://www.w3.org/2005/Atom"
_SAFE_STEM = re.compile(r"[A-Za-z0-9._~-]+")
_PAGE_SUFFIXES = (".html", ".htm", ".xml", ".php", ".asp", ".aspx", ".jsp")


@dataclass(frozen=True)
class ArchiveReport:
    """What build_archive wrote."""

    out_dir: Path
    issues: list[str]  # stems included, newest first
    skipped: list[str]  # stems left out (not sent, send_at in the future)
    calendar_files: int


@dataclass(frozen=True)
class _Page:
    loaded: LoadedIssue
    subject: str
    preheader: str
    published: datetime
    html: str


def build_archive(
    folder: Path, out_dir: Path, *, include_all: bool = False, now: datetime
) -> ArchiveReport:
    """Write the archive of the issues in folder/issues/ that are sent or due (all, if asked).

    now must be timezone-aware: an issue whose send_at is at or before it is included.
    """
    # Imported here: compose imports this module (for archive_warnings).
    from mailer.compose import SAMPLE_RECIPIENT, sample_extras

    if now.tzinfo is None:
        raise ValueError("build_archive: now must be timezone-aware")
    settings = load_settings(folder)
    extras = sample_extras(settings)  # the unsubscribe link without a personal token
    ledger = _sent(folder)
    included: list[LoadedIssue] = []
    skipped: list[str] = []
    for loaded in load_issues(folder):
        if include_all or _is_published(loaded, ledger.get(loaded.stem), now):
            included.append(loaded)
        else:
            skipped.append(loaded.stem)
    files: dict[str, bytes] = {}
    pages = [
        _page(folder, loaded, settings, ledger.get(loaded.stem), (SAMPLE_RECIPIENT, extras))
        for loaded in included
    ]
    for number, page in enumerate(pages):
        newer = pages[number - 1] if number > 0 else None
        older = pages[number + 1] if number + 1 < len(pages) else None
        files[f"{page.loaded.stem}.html"] = _issue_html(page, settings, newer, older).encode(
            "utf-8"
        )
        link = view_url(settings, page.loaded.stem)
        for path, event in issue_events(page.loaded, settings, SAMPLE_RECIPIENT, link):
            ics = event_calendar(event, zone=settings.zone, stamp=now, product=PRODUCT_ID)
            files[path] = ics.encode("utf-8")
    files[INDEX_FILE] = _index_html(pages, settings).encode("utf-8")
    files[FEED_FILE] = _feed_xml(pages, settings, now)
    _write_all(out_dir, files)
    calendar_files = sum(1 for path in files if path.endswith(".ics"))
    return ArchiveReport(out_dir, [p.loaded.stem for p in pages], skipped, calendar_files)


def load_issues(folder: Path) -> list[LoadedIssue]:
    """Load every issues/*.yaml, newest first; raise one IssueError with every file's problems."""
    loaded: list[LoadedIssue] = []
    failed: list[IssueError] = []
    issues = folder / "issues"
    for path in sorted([*issues.glob("*.yaml"), *issues.glob("*.yml")]):
        try:
            loaded.append(load_issue(path, shown_path(path)))
        except IssueError as err:
            failed.append(err)
    if len(failed) == 1:
        raise failed[0]
    if failed:
        problems = [problem for err in failed for problem in err.problems]
        raise IssueError(f"{shown_path(folder / 'issues')}: {len(failed)} invalid issues", problems)
    return sorted(loaded, key=lambda i: (i.issue.date, i.issue.number or 0, i.stem), reverse=True)


def archive_warnings(folder: Path, loaded: LoadedIssue, settings: Settings) -> list[Problem]:
    """Say when the issue's view-in-browser link would lead to a page the archive lacks."""
    link = view_url(settings, loaded.stem)
    if settings.archive_url is None or link is None:
        return []
    shown, dead = shown_path(loaded.path), f'so the view-in-browser link "{link}"'
    parts = urlsplit(settings.archive_url)
    in_issues = loaded.path.suffix == ".yaml" and (
        loaded.path.resolve().parent == (folder / "issues").resolve()
    )
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
            in_issues and loaded.issue.send_at is None and loaded.stem not in _sent(folder),
            (shown, ""),
            f"`mailer archive` publishes this issue once it is sent (it has no send_at), {dead} "
            "leads nowhere until then",
            "publish the archive right after sending, or add send_at",
        ),
    ]
    return [
        Problem(p, None, None, w, message, hint) for bad, (p, w), message, hint in checks if bad
    ]


def _sent(folder: Path) -> dict[str, IssueSummary]:
    """Return the issues the ledger says went out to someone; no ledger means none."""
    if not (folder / LEDGER_FILE).is_file():
        return {}  # Ledger.open would create one
    with Ledger.open(folder) as ledger:
        summaries = ledger.issues()
    # Started counts once anyone has it: their copy's links must work too.
    return {s.issue_id: s for s in summaries if s.finished_at or s.counts.get("sent")}


def _is_published(loaded: LoadedIssue, sent: IssueSummary | None, now: datetime) -> bool:
    send_at = loaded.issue.send_at
    return sent is not None or (send_at is not None and send_at <= now)


def _page(
    folder: Path,
    loaded: LoadedIssue,
    settings: Settings,
    sent: IssueSummary | None,
    sample: tuple[Mapping[str, str], Mapping[str, str]],
) -> _Page:
    """Render the issue as a recipient with no personal data sees it, with relative links."""
    rendered = render_issue(
        folder, loaded, settings.model_copy(update={"archive_url": _RENDER_BASE})
    )
    email = rendered.personalise(*sample)  # a recipient with no personal data
    if sent is not None:
        published = datetime.fromisoformat(sent.started_at)
    elif loaded.issue.send_at is not None:
        published = loaded.issue.send_at
    else:
        published = datetime.combine(loaded.issue.date, time(), tzinfo=settings.zone)
    page_html = email.html.replace(_RENDER_BASE, "")
    return _Page(loaded, email.subject, email.preheader, published, page_html)


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


def _feed_xml(pages: list[_Page], settings: Settings, now: datetime) -> bytes:
    """Return the Atom feed: ids from the list id (stable wherever the archive is published)."""
    base = settings.archive_url.rstrip("/") + "/" if settings.archive_url else ""
    ET.register_namespace("", _ATOM)

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{_ATOM}}}{tag}", attrs)
        element.text = text
        return element

    feed = ET.Element(
        f"{{{_ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": settings.language}
    )
    add(feed, "id", _urn(settings.list_id))
    add(feed, "title", settings.name)
    add(feed, "subtitle", settings.organisation)
    updated = max((p.published for p in pages), default=now)
    add(feed, "updated", updated.isoformat(timespec="seconds"))
    add(add(feed, "author"), "name", settings.organisation)
    add(feed, "link", rel="self", type="application/atom+xml", href=base + FEED_FILE)
    add(feed, "link", rel="alternate", type="text/html", href=base + INDEX_FILE)
    add(feed, "generator", "mailer")
    for page in pages:
        entry = add(feed, "entry")
        add(entry, "id", _urn(f"{settings.list_id}/{page.loaded.stem}"))
        add(entry, "title", page.subject)
        stamp = page.published.isoformat(timespec="seconds")
        add(entry, "published", stamp)
        add(entry, "updated", stamp)
        add(entry, "link", rel="alternate", type="text/html", href=base + _href(page.loaded.stem))
        if page.preheader:
            add(entry, "summary", page.preheader)
    ET.indent(feed)
    data: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _urn(name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'mailer:' + name)}"


def _write_all(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write files into out_dir, then remove what an earlier build wrote and this one did not."""
    manifest = out_dir / MANIFEST_FILE
    try:
        if out_dir.is_dir() and any(out_dir.iterdir()) and not manifest.is_file():
            raise MailerError(
                f"{out_dir}: not empty, and not an archive mailer wrote; "
                "choose an empty or new folder for --out"
            )
        before = manifest.read_text("utf-8").splitlines()[1:] if manifest.is_file() else []
        for name, data in files.items():
            path = out_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".part")
            partial.write_bytes(data)
            os.replace(partial, path)  # a web server never serves half a file
        listing = "# written by `mailer archive`; a rebuild deletes these files\n"
        manifest.write_text(listing + "".join(f"{name}\n" for name in sorted(files)), "utf-8")
        for name in set(before) - set(files):
            stale = out_dir / name
            if stale.resolve().is_relative_to(out_dir.resolve()):
                stale.unlink(missing_ok=True)
    except OSError as err:
        raise MailerError(f"{out_dir}: cannot write the archive ({err})") from err
