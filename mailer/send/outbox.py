"""The dry run: every message that would go out, as .eml files with an index; nothing sent."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailer.errors import MailerError
from mailer.mime import MessageError
from mailer.send.plan import SendPlan

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")
_INDEX_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Outbox: {issue}</title>
<style>body{{font:15px/1.4 system-ui,Arial,sans-serif;margin:24px;color:#1f2933}}
table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #c5ced8;
text-align:left}}td.n{{text-align:right}}</style></head><body>
<h1>Outbox: {issue}</h1>
<p>A dry run: these messages were built but not sent.
Open a .eml file in a mail program to see it.</p>
<table><thead><tr><th>#</th><th>Recipient</th><th>Subject</th><th>Size</th></tr></thead><tbody>
"""
_INDEX_ROW = (
    '<tr><td class="n">{n}</td><td><a href="{file}">{to}</a></td><td>{subject}</td>'
    '<td class="n">{size:.1f} KB</td></tr>\n'
)
_REFUSED_ROW = '<tr><td class="n">{n}</td><td>{to}</td><td colspan="2">refused: {why}</td></tr>\n'
_INDEX_FOOT = "</tbody></table>\n<p>{count} messages, {total:.1f} KB in all.</p>\n</body></html>\n"


_MARKER = ".mailer-outbox"
_OURS = re.compile(r"^\d{6}-[A-Za-z0-9._@+_-]*\.eml$")


def _prepare(out_dir: Path) -> None:
    """Make out_dir ready: empty, or an outbox of ours whose old messages go (only those)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        marker = out_dir / _MARKER
        if not marker.exists() and any(out_dir.iterdir()):
            raise MailerError(
                f"{out_dir}: not empty and not an outbox of mailer's; choose an empty or new "
                "folder for --outbox"
            )
        marker.write_text("mailer's dry-run outbox: its .eml files are rewritten each run\n")
        for stale in out_dir.iterdir():
            if _OURS.match(stale.name):
                stale.unlink()  # a smaller list must not leave last run's messages behind
    except OSError as err:
        raise MailerError(f"{out_dir}: cannot write the outbox ({err.strerror})") from err


@dataclass(frozen=True)
class OutboxReport:
    """What the dry run wrote."""

    out_dir: Path
    index_path: Path
    messages: int
    total_bytes: int
    refused: tuple[str, ...]


def write_outbox(plan: SendPlan, out_dir: Path, *, now: datetime) -> OutboxReport:
    """Build every recipient's message and write it to out_dir; open no connection."""
    _prepare(out_dir)
    factory = plan.factory()
    index_path = out_dir / "index.html"
    count = total = 0
    refused: list[str] = []
    with index_path.open("w", encoding="utf-8") as index:
        index.write(_INDEX_HEAD.format(issue=html.escape(plan.issue_id)))
        for count, recipient in enumerate(plan.recipients(), start=1):
            try:
                message = factory.build(recipient.fields, now=now)
            except MessageError as err:
                refused.append(str(err))
                to, why = html.escape(recipient.email), html.escape(str(err))
                index.write(_REFUSED_ROW.format(n=count, to=to, why=why))
                continue
            name = f"{count:06d}-{_UNSAFE.sub('_', recipient.email)[:80]}.eml"
            (out_dir / name).write_bytes(message.data)
            total += len(message.data)
            index.write(
                _INDEX_ROW.format(
                    n=count,
                    file=html.escape(name),
                    to=html.escape(recipient.email),
                    subject=html.escape(message.subject),
                    size=len(message.data) / 1024,
                )
            )
        index.write(_INDEX_FOOT.format(count=count, total=total / 1024))
    return OutboxReport(out_dir, index_path, count - len(refused), total, tuple(refused))
