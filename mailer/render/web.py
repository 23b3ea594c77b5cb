"""The issue as the web archive shows it: without the lines that greet one reader."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pydantic import BaseModel

from mailer.issue import PLACEHOLDER, LoadedIssue

MAX_GREETING_WORDS = 4  # "Good morning {{ ... }}," and "Dear {{ ... }}", not a sentence


def without_greetings(loaded: LoadedIssue) -> LoadedIssue:
    """Return the issue with every greeting paragraph left out of its Markdown fields.

    A greeting is a paragraph of its own that names the reader: a recipient placeholder and
    at most a few words ("Good morning {{ recipient.first_name | default("colleague") }},").
    On a web page it would greet nobody ("Good morning colleague,"); everything else that
    uses a placeholder keeps it, with its default.
    """
    blocks = [_strip(block) for block in loaded.issue.blocks]
    issue = loaded.issue.model_copy(update={"blocks": blocks})
    return dataclasses.replace(loaded, issue=issue)


def _strip(node: Any) -> Any:
    if isinstance(node, list):
        return [_strip(item) for item in node]
    if not isinstance(node, BaseModel):
        return node
    update: dict[str, Any] = {}
    for name in type(node).model_fields:
        value = getattr(node, name)
        if name in ("body", "intro") and isinstance(value, str):
            kept = _drop_greetings(value)
            update[name] = kept if kept.strip() else None if name == "intro" else value
        elif isinstance(value, list | BaseModel):
            update[name] = _strip(value)
    return node.model_copy(update=update)


def _drop_greetings(markdown: str) -> str:
    paragraphs = re.split(r"\n[ \t]*\n", markdown)
    return "\n\n".join(p for p in paragraphs if not _is_greeting(p))


def _is_greeting(paragraph: str) -> bool:
    names = [m.group(1) for m in PLACEHOLDER.finditer(paragraph)]
    if not names or not any("recipient." in name for name in names):
        return False
    if paragraph.lstrip().startswith(("#", "-", "*", ">", "|")):
        return False
    words = PLACEHOLDER.sub(" ", paragraph).split()
    return len(words) <= MAX_GREETING_WORDS
