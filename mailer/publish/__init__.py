"""Publish: the web archive of sent issues, its feed and calendars (RFC 5545), published."""

from mailer.publish.archive import MANIFEST_FILE, ArchiveReport, build_archive
from mailer.publish.calendar import Event, event_calendar, issue_events
from mailer.publish.publisher import (
    PUBLISHED_FILE,
    PublishError,
    PublishReport,
    is_unpublished,
    mark_unpublished,
    publish_archive,
)

__all__ = [
    "MANIFEST_FILE",
    "PUBLISHED_FILE",
    "ArchiveReport",
    "Event",
    "PublishError",
    "PublishReport",
    "build_archive",
    "event_calendar",
    "is_unpublished",
    "issue_events",
    "mark_unpublished",
    "publish_archive",
]
