"""Publish: the web archive of sent issues, its Atom feed and calendar files (RFC 5545)."""

from mailer.publish.archive import MANIFEST_FILE, ArchiveReport, build_archive
from mailer.publish.calendar import Event, event_calendar, issue_events

__all__ = [
    "MANIFEST_FILE",
    "ArchiveReport",
    "Event",
    "build_archive",
    "event_calendar",
    "issue_events",
]
