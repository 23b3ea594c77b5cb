"""The crontab lines that run `mailer send-due` for a newsletter folder."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from mailer.config import Settings
from mailer.folder import Newsletter


def cron_lines(folder: Path, mailer_command: str, settings: Settings) -> str:
    """Return the crontab lines that run `send-due` every few minutes for this folder."""
    every = settings.schedule.every_minutes
    log_path = Newsletter(folder).log_path
    lines = [
        f"# mailer: send the due issues of {settings.name} every {every} minutes.",
        f"# Each run is logged to {log_path}; cron mails you only when something",
        "# went wrong. Secrets go here (your crontab is private to you), never in mailer.toml:",
    ]
    # Overrides set in this shell go along, or cron would use mailer.toml's server.
    for name in ("MAILER_SMTP_HOST", "MAILER_SMTP_PORT", "MAILER_SMTP_SECURITY"):
        if os.environ.get(name):
            lines.append(f"{name}={os.environ[name]}")
    if os.environ.get("MAILER_SMTP_USERNAME"):
        lines.append(f"MAILER_SMTP_USERNAME={os.environ['MAILER_SMTP_USERNAME']}")
    smtp = settings.smtp
    if smtp.username and smtp.auth == "password":
        lines.append("MAILER_SMTP_PASSWORD=<your SMTP password>")
    elif smtp.auth == "xoauth2" and smtp.token_url:
        lines.append("MAILER_OAUTH_CLIENT_SECRET=<the app's client secret>")
        lines.append("# or, for the refresh-token grant: MAILER_OAUTH_REFRESH_TOKEN=<the token>")
    if settings.unsubscribe_url:
        lines.append("MAILER_UNSUBSCRIBE_SECRET=<the same secret as for `mailer send`>")
    lines.append(f"*/{every} * * * * {mailer_command} --dir {shlex.quote(str(folder))} send-due")
    return "\n".join(lines) + "\n"
