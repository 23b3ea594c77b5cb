"""Helpers for send tests: a newsletter folder wired to a test SMTP server, and the CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from typer.testing import CliRunner

from mailer.cli import app
from tests.conftest import REPO_DIR
from tests.smtp_servers import SmtpServer, Tls

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
ISSUE = "issues/2023-10-20-ld-newsletter.yaml"
SECRET = "test-unsubscribe-secret-32-characters-long"


def addresses(count: int, start: int = 0) -> list[str]:
    """Return count distinct test addresses."""
    return [f"person{n:05d}@example.org" for n in range(start, start + count)]


def write_recipients(folder: Path, emails: list[str]) -> Path:
    """Write recipients.csv as a spreadsheet would export it."""
    path = folder / "recipients.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First Name"])
        for n, email in enumerate(emails):
            writer.writerow([email, f"Name{n}"])
    return path


class Reachable(Protocol):
    """What make_folder needs of a test server: where it listens and how to secure it."""

    @property
    def port(self) -> int: ...

    @property
    def tls(self) -> Tls | None: ...

    @property
    def ca_file(self) -> Path | None: ...


def make_folder(
    folder: Path,
    server: Reachable,
    emails: list[str],
    *,
    limits: str = "per_second = 10000\nretry_delay = 0.01\n",
    smtp: str = "",
    timeout: float = 5,
) -> Path:
    """Set up a newsletter folder that sends to the test server; return the folder."""
    settings = (REPO_DIR / "mailer.toml").read_text(encoding="utf-8")
    head = settings.split("[brand]")[0]
    tls = {None: "none", "starttls": "starttls", "implicit": "ssl"}[server.tls]
    ca = f'ca_file = "{server.ca_file}"\n' if server.ca_file else ""
    (folder / "mailer.toml").write_text(
        f'{head}[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "{tls}"\n'
        f"timeout = {timeout}\n{ca}{smtp}\n[limits]\n{limits}",
        encoding="utf-8",
    )
    (folder / "issues").mkdir(exist_ok=True)
    (folder / ISSUE).write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    write_recipients(folder, emails)
    return folder


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process with the unsubscribe secret set; return code, stdout, stderr."""
    environment = {"MAILER_UNSUBSCRIBE_SECRET": SECRET, **(env or {})}
    result = CliRunner().invoke(app, list(args), env=environment)
    return result.exit_code, result.stdout, result.stderr


def cli_process(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start the CLI as a real process in folder."""
    environment = {**os.environ, "MAILER_UNSUBSCRIBE_SECRET": SECRET, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "mailer", *args],
        cwd=folder,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def deliveries(server: SmtpServer, *, unacknowledged: bool = False) -> dict[str, int]:
    """Count, per envelope recipient, the messages the server acknowledged.

    unacknowledged: count too the messages whose data ended but whose reply the client never
    got (a real server that has the final dot may deliver them).
    """
    counts: dict[str, int] = {}
    arrived = server.received + (server.unacknowledged if unacknowledged else [])
    for received in arrived:
        for recipient in received.recipients:
            counts[recipient] = counts.get(recipient, 0) + 1
    return counts
