"""The archive's Atom feed (RFC 4287)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from mailer.config import Settings
from mailer.folder import ARCHIVE_FEED, ARCHIVE_INDEX

_ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class FeedEntry:
    """One published issue as the feed lists it."""

    issue_id: str
    title: str
    summary: str
    published: datetime
    href: str  # the issue's page, relative to the archive


def feed_xml(entries: list[FeedEntry], settings: Settings, now: datetime) -> bytes:
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
    updated = max((entry.published for entry in entries), default=now)
    add(feed, "updated", updated.isoformat(timespec="seconds"))
    add(add(feed, "author"), "name", settings.organisation)
    add(feed, "link", rel="self", type="application/atom+xml", href=base + ARCHIVE_FEED)
    add(feed, "link", rel="alternate", type="text/html", href=base + ARCHIVE_INDEX)
    add(feed, "generator", "mailer")
    for entry in entries:
        element = add(feed, "entry")
        add(element, "id", _urn(f"{settings.list_id}/{entry.issue_id}"))
        add(element, "title", entry.title)
        stamp = entry.published.isoformat(timespec="seconds")
        add(element, "published", stamp)
        add(element, "updated", stamp)
        add(element, "link", rel="alternate", type="text/html", href=base + entry.href)
        if entry.summary:
            add(element, "summary", entry.summary)
    ET.indent(feed)
    data: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _urn(name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'mailer:' + name)}"
