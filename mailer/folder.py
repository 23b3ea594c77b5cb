"""The newsletter folder: its settings, and every path in it and in its web archive.

    mailer.toml           the settings
    issues/*.yaml         one file per issue
    layouts/<name>/       the folder's own layouts (the built-in ones ship in mailer/skeleton)
    recipients.csv        the list (settings: recipients)
    unsubscribed.csv      addresses never to send to again (by hand)
    suppressed.csv        addresses suppressed with a reason: bounces, complaints, unsubscribes
    build/                what compose writes; build/outbox/<issue>/ (dry runs), build/archive/
    .mailer/              state: ledger.sqlite3 and its journal, lock, log, send-due.said,
                          inbox.sqlite3 and inbox.lock, suppress-queue.csv,
                          publish.pending (sent since the archive was last published)

No other module spells one of these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from mailer.config import Settings, read_settings
from mailer.errors import TemplateError

SETTINGS_FILE = "mailer.toml"
SKELETON_DIR = Path(__file__).resolve().parent / "skeleton"
BUILTIN_LAYOUTS_DIR = SKELETON_DIR / "layouts"
BASE_TEMPLATE = "base.mjml.j2"
ISSUE_SUFFIXES = (".yaml", ".yml")
STATE_DIR = Path(".mailer")
LEDGER_FILE = STATE_DIR / "ledger.sqlite3"
JOURNAL_FILE = STATE_DIR / "journal"
LOCK_FILE = STATE_DIR / "lock"
LOG_FILE = STATE_DIR / "log"
INBOX_FILE = STATE_DIR / "inbox.sqlite3"
INBOX_LOCK_FILE = STATE_DIR / "inbox.lock"
SUPPRESS_QUEUE_FILE = STATE_DIR / "suppress-queue.csv"
SAID_FILE = STATE_DIR / "send-due.said"  # what the last send-due printed: cron mails it once
PUBLISH_PENDING_FILE = STATE_DIR / "publish.pending"  # sent since the last good publish
GITIGNORE = f"""# mailer: what is built or kept per machine, and the real list of people
build/
{STATE_DIR}/
recipients.csv
"""
# The web archive's own layout: pages and calendar files, relative to where it is published.
ARCHIVE_INDEX = "index.html"
ARCHIVE_FEED = "feed.xml"
ARCHIVE_CALENDAR_DIR = "calendar"


class Newsletter:
    """One newsletter folder: its settings (read when first asked for) and its paths."""

    def __init__(
        self,
        directory: Path,
        settings: Settings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.dir = directory
        self._environ = environ
        if settings is not None:
            self.__dict__["settings"] = settings

    def __repr__(self) -> str:
        return f"<Newsletter {self.dir}>"

    @cached_property
    def settings(self) -> Settings:
        """Return the settings from mailer.toml and MAILER_* variables; raise SettingsError."""
        return read_settings(self.settings_path, self._environ)

    @property
    def settings_path(self) -> Path:
        return self.dir / SETTINGS_FILE

    @property
    def issues_dir(self) -> Path:
        return self.dir / "issues"

    @property
    def layouts_dir(self) -> Path:
        return self.dir / "layouts"

    @property
    def build_dir(self) -> Path:
        return self.dir / "build"

    @property
    def archive_dir(self) -> Path:
        return self.build_dir / "archive"

    def outbox_dir(self, issue_id: str) -> Path:
        """Return where a dry run of the issue writes its messages."""
        return self.build_dir / "outbox" / issue_id

    @property
    def ledger_path(self) -> Path:
        return self.dir / LEDGER_FILE

    @property
    def journal_path(self) -> Path:
        return self.dir / JOURNAL_FILE

    @property
    def lock_path(self) -> Path:
        return self.dir / LOCK_FILE

    @property
    def log_path(self) -> Path:
        return self.dir / LOG_FILE

    @property
    def said_path(self) -> Path:
        return self.dir / SAID_FILE

    @property
    def publish_pending_path(self) -> Path:
        """Return the mark that something was sent since the archive was last published."""
        return self.dir / PUBLISH_PENDING_FILE

    @property
    def publish_dir(self) -> Path | None:
        """Return the folder the archive is copied into ([archive] publish_dir), if any."""
        found = self.settings.archive.publish_dir
        return None if found is None else self.dir / found

    @property
    def unsubscribed_path(self) -> Path:
        return self.dir / "unsubscribed.csv"

    @property
    def suppressed_path(self) -> Path:
        return self.dir / "suppressed.csv"

    @property
    def suppress_queue_path(self) -> Path:
        """Return where suppressions wait while a send holds the folder lock."""
        return self.dir / SUPPRESS_QUEUE_FILE

    @property
    def inbox_path(self) -> Path:
        """Return the inbox's memory: messages processed, soft bounces, refusals seen."""
        return self.dir / INBOX_FILE

    @property
    def inbox_lock_path(self) -> Path:
        """Return the lock that keeps two `mailer inbox` runs apart."""
        return self.dir / INBOX_LOCK_FILE

    @property
    def recipients_path(self) -> Path:
        """Return the list named in the settings, inside this folder (cron starts in $HOME)."""
        return self.dir / self.settings.recipients.file

    def issue_paths(self) -> list[Path]:
        """Return the folder's issue files, sorted by name."""
        found = (p for suffix in ISSUE_SUFFIXES for p in self.issues_dir.glob(f"*{suffix}"))
        return sorted(found)

    def holds_issue(self, path: Path) -> bool:
        """Say whether path is one of the folder's issue files (what the archive publishes)."""
        return path.suffix in ISSUE_SUFFIXES and path.resolve().parent == self.issues_dir.resolve()

    def shown(self, path: Path) -> str:
        """Return path as the user would write it from the folder: issues/x.yaml."""
        return str(path.relative_to(self.dir)) if path.is_relative_to(self.dir) else str(path)

    def layout_dir(self, name: str) -> Path:
        """Return layouts/<name>, or the built-in layout of that name; raise TemplateError.

        A layout folder that is a symbolic link is refused: everything in an email comes from
        inside the newsletter folder (or mailer's own layouts).
        """
        own = self.layouts_dir / name
        if own.is_symlink():
            raise TemplateError(
                f"{own}: a symbolic link; a layout must be a folder inside {self.layouts_dir}: "
                "copy it in instead"
            )
        for candidate in (own, BUILTIN_LAYOUTS_DIR / name):
            if (candidate / BASE_TEMPLATE).is_file():
                return candidate
        raise TemplateError(
            f'{self.layouts_dir / name}: no layout "{name}" (no {BASE_TEMPLATE}); '
            'use "default" or copy layouts/default to start a new one'
        )

    def view_url(self, issue_id: str) -> str | None:
        """Return the issue's page in the published archive (archive_url set, and published)."""
        return view_url(self.settings, issue_id)

    def calendar_url(self, issue_id: str, block_index: int, item_index: int) -> str | None:
        """Return the published .ics of blocks[block_index].items[item_index], if published."""
        return _published(self.settings, calendar_path(issue_id, block_index, item_index))


def load_settings(directory: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings of the newsletter folder at directory; raise SettingsError."""
    return Newsletter(directory, environ=environ).settings


def view_url(settings: Settings, issue_id: str) -> str | None:
    """Return the issue's page in the published archive (archive_url set, and published)."""
    return _published(settings, issue_page(issue_id))


def _published(settings: Settings, relative: str) -> str | None:
    # A link to an archive that nothing publishes leads nowhere (issue 13): only a
    # configured [archive] publish_dir or publish_command makes these links.
    base = settings.archive_url
    if base is None or not settings.archive.publishes:
        return None
    return base.rstrip("/") + "/" + relative


def issue_page(issue_id: str) -> str:
    """Return the issue's page in the archive, relative to the archive folder."""
    return f"{issue_id}.html"


def calendar_path(issue_id: str, block_index: int, item_index: int) -> str:
    """Return the event's .ics in the archive, e.g. calendar/x-1-0.ics."""
    return f"{ARCHIVE_CALENDAR_DIR}/{issue_id}-{block_index}-{item_index}.ics"
