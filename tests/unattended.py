"""Helpers for unattended tests: settings for notify and publishing, a web root, cron ticks."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from mailer.folder import load_settings
from mailer.schedule import Reporter, send_due
from tests.smtp_servers import HOST, SmtpServer, free_port

EDITOR = "editor@example.org"
SEND_AT = datetime(2023, 10, 20, 8, 0, tzinfo=UTC)  # the sample issue's 09:00+01:00


def set_top(folder: Path, *lines: str) -> None:
    """Put settings at the top of mailer.toml, before its first table."""
    path = folder / "mailer.toml"
    path.write_text("\n".join(lines) + "\n" + path.read_text(encoding="utf-8"), encoding="utf-8")


def set_archive(folder: Path, *lines: str, archive_url: str | None = None) -> None:
    """Add an [archive] table (make_folder's settings have none), and set archive_url."""
    path = folder / "mailer.toml"
    text = path.read_text(encoding="utf-8")
    if archive_url is not None:
        text = re.sub(r"(?m)^archive_url = .*$", f'archive_url = "{archive_url}"', text)
    path.write_text(text + "\n[archive]\n" + "\n".join(lines) + "\n", encoding="utf-8")


def to_editor(server: SmtpServer) -> list[EmailMessage]:
    """Return the messages the server took for the editor, in order."""
    return [r.message for r in server.received if r.recipients == (EDITOR,)]


def to_list(server: SmtpServer) -> list[str]:
    """Return the envelope recipients of every message that was not to the editor."""
    return [rcpt for r in server.received for rcpt in r.recipients if rcpt != EDITOR]


def body(message: EmailMessage) -> str:
    """Return a notification's text."""
    content = message.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


@dataclass
class Tick:
    """One send-due run: its exit code, what it printed (cron mails it), what it only logged."""

    code: int
    printed: list[str]
    logged: list[str]


def tick(folder: Path, now: datetime) -> Tick:
    """Run send_due at `now`, as cron would."""
    printed: list[str] = []
    logged: list[str] = []
    out = Reporter(said=printed.append, failed=printed.append, noted=logged.append)
    return Tick(send_due(folder, load_settings(folder), now, out).exit_code, printed, logged)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Log nothing: the test asserts on responses."""


@contextmanager
def web_root(root: Path) -> Iterator[str]:
    """Serve root over HTTP on 127.0.0.1, as a web server serves a document root; yield its URL."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer((HOST, free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
