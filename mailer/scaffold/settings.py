"""The mailer.toml `mailer init` writes: the skeleton's commented file, with the answers in.

The skeleton's file is the documentation of every setting (tests/test_docs.py keeps it so);
init changes only the lines it has an answer for, and comments out the ones that do not
apply (no website: no unsubscribe_url or archive_url), so the rest stays documented.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mailer.addresses import validate_address
from mailer.errors import SettingsError
from mailer.scaffold.providers import PROVIDER_NAMES, PROVIDERS
from mailer.values import line_problem

NO_WEBSITE = (
    "# No website: readers unsubscribe by mail (unsubscribe_mailto, which `mailer inbox`\n"
    "# reads), and there is no web archive. With a website, set these (see the README):\n"
)


@dataclass(frozen=True)
class Answers:
    """What `mailer init` was told; None keeps the skeleton's example."""

    name: str | None = None
    organisation: str | None = None
    postal_address: str | None = None
    from_address: str | None = None
    website: str | None = None  # the newsletter's base address; "" for no website
    provider: str | None = None


def answer_problem(field: str, value: str) -> str | None:
    """Return what is wrong with one answer, or None."""
    if field == "from_address":
        problem = validate_address(value)
        return f'"{value}" is not an email address: {problem}' if problem else None
    if field == "website":
        if value and not re.match(r"^https://[^\s<>\"']+\.[^\s<>\"']+$", value):
            return f'"{value}": give the address starting https://, or nothing for no website'
        return None
    if field == "provider":
        return None if value in PROVIDER_NAMES else f"use one of {', '.join(PROVIDER_NAMES)}"
    if not value.strip():
        return "must not be empty"
    return line_problem(value)


def settings_text(skeleton: str, answers: Answers) -> str:
    """Return the skeleton's mailer.toml with the answers written in."""
    for field in ("name", "organisation", "postal_address", "from_address", "website"):
        value = getattr(answers, field)
        problem = None if value is None else answer_problem(field, value)
        if problem:
            raise SettingsError(f"mailer init: {field.replace('_', ' ')}: {problem}")
    text = skeleton
    for key in ("name", "organisation", "postal_address"):
        value = getattr(answers, key)
        if value is not None:
            text = set_key(text, None, key, _toml(value.strip()))
    if answers.name:  # the sender's name in the inbox
        text = set_key(text, None, "from_name", _toml(answers.name.strip()))
    if answers.organisation:
        text = set_key(text, "brand", "logo_alt", _toml(answers.organisation.strip()))
    sender = answers.from_address.strip() if answers.from_address else None
    if sender:
        domain = sender.rpartition("@")[2].lower()
        slug = re.sub(r"[^a-z0-9]+", "-", (answers.name or "newsletter").lower()).strip("-")
        for key in ("from", "reply_to", "unsubscribe_mailto"):
            text = set_key(text, None, key, _toml(sender))
        text = set_key(text, None, "list_id", _toml(f"{slug or 'newsletter'}.{domain}"))
        text = set_key(text, "smtp", "host", _toml(f"smtp.{domain}"))
    if answers.website is not None:
        text = _website(text, answers.website.strip().rstrip("/"))
    if answers.provider and answers.provider != "other":
        text = _provider(text, answers.provider, sender)
    return text


def _website(text: str, base: str) -> str:
    if not base:
        text = set_key(text, None, "unsubscribe_url", None, NO_WEBSITE)
        return set_key(text, None, "archive_url", None)
    text = set_key(text, None, "unsubscribe_url", _toml(f"{base}/unsubscribe"))
    return set_key(text, None, "archive_url", _toml(f"{base}/archive/"))


def _provider(text: str, name: str, sender: str | None) -> str:
    provider = PROVIDERS[name]
    for key, value, note in provider.smtp:
        if value == "{from}":
            value = _toml(sender) if sender else None
            note = note if sender else "The mailbox that sends (its address); run init with --from."
        text = set_key(text, "smtp", key, value, _comment(note))
    for key, value, note in provider.limits:
        text = set_key(text, "limits", key, value, _comment(note))
    header = _comment(f"{provider.label}. {provider.source}")
    text = text.replace("\n[smtp]\n", f"\n{header}[smtp]\n", 1)
    if provider.after_smtp:
        text = _append_to_section(text, "smtp", provider.after_smtp)
    return text


def set_key(text: str, section: str | None, key: str, value: str | None, note: str = "") -> str:
    """Set key in section (None: the top) to a TOML value, or comment it out when None.

    The line may be commented out in the skeleton (`# per_day = 10000`); note is written
    above it as comment lines.
    """
    lines = text.split("\n")
    start, end = _section(lines, section)
    pattern = re.compile(rf"^(#\s*)?{re.escape(key)}\s*=")
    for index in range(start, end):
        if pattern.match(lines[index]):
            old = re.sub(r"^#\s*", "", lines[index])
            lines[index] = f"{key} = {value}" if value is not None else f"# {old}"
            if note:
                lines[index:index] = note.rstrip("\n").split("\n")
            return "\n".join(lines)
    new = [*note.rstrip("\n").split("\n")] if note else []
    new.append(f"{key} = {value}" if value is not None else f"# {key} =")
    lines[end:end] = new
    return "\n".join(lines)


def _section(lines: list[str], section: str | None) -> tuple[int, int]:
    """Return the range of lines of a [section] (None: before the first table)."""
    headers = [i for i, line in enumerate(lines) if re.match(r"^\[[\w.-]+\]\s*$", line)]
    if section is None:
        return 0, headers[0] if headers else len(lines)
    start = next(i for i in headers if lines[i].strip() == f"[{section}]") + 1
    end = next((i for i in headers if i >= start), len(lines))
    before = end - 1  # the comment just above the next table is that table's
    while before >= start and lines[before].startswith("#"):
        before -= 1
    if end < len(lines) and before >= start and not lines[before].strip():
        end = before
    while end > start and not lines[end - 1].strip():
        end -= 1
    return start, end


def _append_to_section(text: str, section: str, block: str) -> str:
    lines = text.split("\n")
    _start, end = _section(lines, section)
    lines[end:end] = block.rstrip("\n").split("\n")
    return "\n".join(lines)


def _comment(note: str) -> str:
    """Return note as comment lines of at most 92 characters."""
    if not note:
        return ""
    words, lines, line = note.split(), [], "#"
    for word in words:
        if len(line) + 1 + len(word) > 92:
            lines.append(line)
            line = "#"
        line += " " + word
    return "\n".join([*lines, line]) + "\n"


def _toml(value: str) -> str:
    """Return value as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)
