"""The plain-text part, written from the issue itself (not scraped from the HTML)."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from mailer.issue import TEXT_WIDTH, markdown_to_text


def render_text(
    *,
    title: str,
    subtitle: str,
    blocks: list[dict[str, Any]],
    footer: list[str],
    view_url: str | None,
) -> str:
    """Return the text part: a heading per block, bullets kept, every link's URL written out."""
    out: list[str] = []
    if view_url:
        out += [f"View this email in your browser: {view_url}", ""]
    rule = "=" * min(len(title), TEXT_WIDTH)
    out += [rule, title, rule, subtitle, ""]
    for block in blocks:
        out += _block(block)
    out += ["-" * 20, *footer]
    text = "\n".join(line.rstrip() for line in out)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def _heading(text: str | None) -> list[str]:
    if not text:
        return []
    # As written, not upper-cased: the heading may hold a placeholder, filled per recipient
    # later, and "HELLO Seán" is what upper-casing before that gave.
    # Underlined with = as Markdown's sub-headings inside a body are with -.
    return ["", text, "=" * min(len(text), TEXT_WIDTH), ""]


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        width=TEXT_WIDTH,
        initial_indent=indent,
        subsequent_indent=" " * len(indent),
        break_long_words=False,
        break_on_hyphens=False,
    )


def _body(block: dict[str, Any], indent: str = "", key: str = "body") -> list[str]:
    body = block.get(key)
    if not body:
        return []
    text = markdown_to_text(body, TEXT_WIDTH - len(indent))
    return [indent + line if line else "" for line in text.rstrip("\n").split("\n")]


def _block(block: dict[str, Any]) -> list[str]:
    kind = block["type"]
    lines = _heading(block.get("heading"))
    if block.get("intro"):  # dates, news and courses
        lines += [*_body(block, key="intro"), ""]
    if kind in ("text", "article"):
        lines += _body(block)
    elif kind == "callout":
        boxed = _body(block)
        lines += ["+" + "-" * 40, *("| " + line if line else "|" for line in boxed), "+" + "-" * 40]
    elif kind == "dates":
        for item in block["items"]:
            lines += _wrap(f"{item['when']}: {item['title']}", "* ")
            if item.get("url"):
                lines.append(f"  {item['url']}")
            if item.get("calendar_url"):
                lines.append(f"  Add to calendar: {item['calendar_url']}")
    elif kind == "news":
        for item in block["items"]:
            lines += _wrap(item["title"], "* ")
            lines += _body(item, "  ")
            lines += [f"  {link['text']}: {link['url']}" for link in item["links"]]
            lines.append("")
    elif kind == "courses":
        for item in block["items"]:
            lines += _wrap(item["title"], "* ")
            if item.get("when"):
                lines.append(f"  {item['when']}")
            lines += _body(item, "  ")
            lines.append(f"  {item['button']}: {item['url']}")
            if item.get("calendar_url"):
                lines.append(f"  Add to calendar: {item['calendar_url']}")
            lines.append("")
    elif kind == "image":
        lines += _wrap(
            f"[Image: {block['alt']}]" + (f" {block['url']}" if block.get("url") else "")
        )
    elif kind == "button":
        lines.append(f"{block['text']}: {block['url']}")
    elif kind == "divider":
        lines.append("* * *")
    return [*lines, ""]
