"""What every check reads: the finding type, the parsed email, and HTML helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lxml import etree
from lxml import html as lxml_html
from lxml.etree import _Element

from mailer.checks.origin import Origins
from mailer.config import Settings
from mailer.issue import LoadedIssue

Severity = Literal["error", "warning"]
_STYLE_DECLARATION = re.compile(r"([-\w]+)\s*:\s*([^;]+)")
_SHOWN_ATTRIBUTES = ("href", "src", "class", "style")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


@dataclass(frozen=True)
class Finding:
    """One thing `mailer check` found: how bad, which check, where, what, and how to fix it."""

    severity: Severity
    check: str
    where: str
    message: str
    hint: str

    def __str__(self) -> str:
        """Return the finding as one line: `error (links): where: message; hint`."""
        return f"{self.severity} ({self.check}): {self.where}: {self.message}; {self.hint}"


@dataclass(frozen=True)
class Email:
    """The email as it will be sent, parsed once, with the issue it came from."""

    loaded: LoadedIssue
    settings: Settings
    html: str
    text: str
    root: _Element
    origins: Origins
    layout: str

    @classmethod
    def parse(cls, loaded: LoadedIssue, settings: Settings, html: str, text: str) -> Email:
        """Parse the final HTML and index where the issue's links, images and headings are."""
        try:  # lxml refuses a str that declares its own encoding: the text is decoded already
            root = lxml_html.document_fromstring(_XML_DECLARATION.sub("", html, count=1))
        except (etree.ParserError, ValueError):  # nothing to parse: every check sees no HTML
            root = lxml_html.Element("html")
        layout = loaded.issue.layout or settings.layout
        return cls(loaded, settings, html, text, root, Origins.of(loaded.issue), layout)

    def in_layout(self, element: _Element) -> str:
        """Name an element of the HTML that the issue did not write."""
        return f'{describe(element)} in the HTML (layout "{self.layout}")'

    def elements(self, *tags: str) -> list[_Element]:
        """Return the elements with these tag names, in document order (comments skipped)."""
        wanted = set(tags)
        return [el for el in self.root.iter() if isinstance(el.tag, str) and el.tag in wanted]


def parse_style(value: str | None) -> dict[str, str]:
    """Return an inline style's declarations, property names lower-cased."""
    if not value:
        return {}
    return {m.group(1).lower(): m.group(2).strip() for m in _STYLE_DECLARATION.finditer(value)}


def style_of(element: _Element) -> dict[str, str]:
    """Return the element's inline style (premailer has inlined the layout's CSS)."""
    return parse_style(element.get("style"))


def collapse(text: str) -> str:
    """Return text with runs of white space made one space."""
    return " ".join(text.split())


def text_of(element: _Element) -> str:
    """Return the element's visible text, collapsed."""
    return collapse("".join(str(part) for part in element.itertext()))


def describe(element: _Element) -> str:
    """Return a short, recognisable form of an element: <a href="..."> ("its text")."""
    tag = str(element.tag)
    shown = ""
    for name in _SHOWN_ATTRIBUTES:
        value = element.get(name)
        if value is not None:
            shown = f' {name}="{_shorten(value, 60)}"'
            break
    words = text_of(element) if tag != "html" else ""
    snippet = f' ("{_shorten(words, 40)}")' if words and tag not in ("body", "table") else ""
    return f"<{tag}{shown}>{snippet}"


def is_hidden(element: _Element) -> bool:
    """Say whether CSS hides the element or an ancestor (the preheader, for one)."""
    node: _Element | None = element
    while node is not None:
        style = style_of(node)
        if style.get("display", "").startswith("none") or style.get("visibility") == "hidden":
            return True
        if style.get("opacity", "").strip() in ("0", "0.0"):
            return True
        node = node.getparent()
    return False


def _shorten(text: str, limit: int) -> str:
    text = collapse(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
