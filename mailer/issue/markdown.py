"""Markdown bodies: check them, and turn them into email HTML or plain text."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

from mailer.issue.pasted import pasted_to_markdown
from mailer.issue.placeholders import PLACEHOLDER

SAFE_SCHEMES = ("https", "http", "mailto")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f<>\"'\\]")
TEXT_WIDTH = 72

# No www.: linkify would make it http://. Bare addresses become mailto: links.
_LINKIFY = {"fuzzy_link": False, "fuzzy_email": True}


def _parser(options: dict[str, bool]) -> MarkdownIt:
    """Return a CommonMark parser that links bare https:// addresses, as Word pastes them."""
    parser = MarkdownIt("commonmark", {**options, "linkify": True}).enable("linkify")
    assert parser.linkify is not None  # linkify-it-py, markdown-it-py's [linkify] extra
    parser.linkify.set(_LINKIFY)
    return parser


_render_md = _parser({"html": False, "typographer": False})
# A second parser that sees raw HTML and every link as written, so that checks can name
# them instead of letting markdown-it quietly drop them (it turns javascript: links to text).
_check_md = _parser({"html": True})
_check_md.validateLink = lambda url: True  # type: ignore[method-assign]
_BARE_WWW = re.compile(r"(?<![\w/@.-])www\.[\w-]+(?:\.[\w-]+)+[^\s<>\"')\],;]*")


def check_url(url: str) -> tuple[str | None, str | None]:
    """Return (error, warning) for a link; placeholders may follow the scheme, not start it."""
    if not url.strip():
        return "empty link; give a full https:// address", None
    if url.startswith("{{"):
        return f'"{url}": a link cannot start with a placeholder; write https://... first', None
    plain = PLACEHOLDER.sub("X", url)
    if _BAD_URL_CHARS.search(plain):
        return f'"{url}" contains spaces, quotes or control characters; encode them', None
    match = _SCHEME.match(plain)
    if not match:
        return f'"{url}" has no scheme; write the full address, starting https://', None
    scheme = match.group(1).lower()
    if scheme not in SAFE_SCHEMES:
        return f'"{url}": {scheme}: links are not allowed; use https:, http: or mailto:', None
    try:
        urlsplit(plain)
    except ValueError as err:  # e.g. "https://[::1": browsers and checks cannot read it either
        return f'"{url}" is not a valid address ({err}); check the brackets and the host', None
    rest = plain[match.end() :]
    if scheme == "mailto":
        if "@" not in rest:
            return f'"{url}": a mailto: link needs an address, e.g. mailto:team@example.org', None
        return None, None
    if not rest.startswith("//") or len(rest) < 3 or rest[2] in "/?#":
        return f'"{url}": a web link needs a host, e.g. https://example.org/page', None
    if scheme == "http":
        return None, f'"{url}" is not encrypted; use https: if the site supports it'
    return None, None


def check_markdown(text: str) -> list[tuple[int, str, bool]]:
    """Return (line offset, message, is_error) for raw HTML and unsafe links in Markdown."""
    found: list[tuple[int, str, bool]] = []
    for block in _check_md.parse(text):
        line = block.map[0] if block.map else 0
        if block.type == "html_block":
            found.append((line, _raw_html_message(block.content), True))
        for token in block.children or ():
            if token.type in ("softbreak", "hardbreak"):
                line += 1  # inline tokens carry no line of their own
            if token.type == "html_inline" and not token.content.startswith("</"):
                found.append((line, _raw_html_message(token.content), True))
            url = token.attrGet("href") if token.type == "link_open" else token.attrGet("src")
            if token.type in ("link_open", "image"):
                error, warning = check_url(str(url or ""))
                if error or warning:
                    found.append((line, str(error or warning), error is not None))
            if token.type == "image" and not token.content.strip():
                found.append((line, "an image needs alt text: ![what it shows](url)", True))
            if token.type == "text":
                found += [
                    (line, _www_message(m.group(0)), False)
                    for m in _BARE_WWW.finditer(token.content)
                ]
    return found


def _www_message(address: str) -> str:
    shown = address.rstrip(".")
    return f'"{shown}" is not a link without https:// in front; write https://{shown}'


def _raw_html_message(html: str) -> str:
    snippet = " ".join(html.split())[:40]
    return f'raw HTML ("{snippet}") is not allowed; use Markdown: **bold**, [text](url), - bullets'


def parse_markdown(text: str) -> list[Token]:
    """Return the tokens the email is rendered from (Word's lists as lists, bare links)."""
    return _render_md.parse(pasted_to_markdown(text))


def markdown_to_html(text: str) -> str:
    """Render Markdown to HTML with raw HTML escaped (CommonMark), Word's lists as lists."""
    return str(_render_md.render(pasted_to_markdown(text)))


def markdown_to_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Render Markdown to plain text: headings underlined, bullets kept, every link's URL shown."""
    return _TextWriter(width).write(parse_markdown(text))


class _TextWriter:
    def __init__(self, width: int) -> None:
        self.width = width
        self.out: list[str] = []
        self.lists: list[list[int]] = []  # per open list: [is_ordered, next number]
        self.quote = 0
        self.pending_prefix = ""
        self.heading = False

    def write(self, tokens: Sequence[Token]) -> str:
        for token in tokens:
            self._block(token)
        return "\n".join(self.out).strip("\n") + "\n"

    def _block(self, token: Token) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(token.attrGet("start") or 1)
            self.lists.append([kind == "ordered_list_open", start])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
            if not self.lists:
                self.out.append("")
        elif kind == "list_item_open":
            ordered, number = self.lists[-1]
            self.pending_prefix = f"{number}. " if ordered else "* "
            self.lists[-1][1] += 1
        elif kind in ("heading_open", "heading_close"):
            self.heading = kind == "heading_open"
        elif kind == "blockquote_open":
            self.quote += 1
        elif kind == "blockquote_close":
            self.quote -= 1
        elif kind == "inline":
            self._paragraph(_inline_text(token.children or []), token)
        elif kind in ("fence", "code_block"):
            self.out.extend("    " + line for line in token.content.rstrip("\n").split("\n"))
            self.out.append("")
        elif kind == "hr":
            self.out.extend(["-" * 20, ""])

    def _paragraph(self, text: str, token: Token) -> None:
        depth = len(self.lists)
        indent = "  " * max(depth - 1, 0)
        prefix = indent + self.pending_prefix
        follow = " " * len(prefix)
        quote = "> " * self.quote
        lines = textwrap.wrap(
            text,
            width=max(self.width - len(prefix) - len(quote), 20),
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
        for i, line in enumerate(lines):
            self.out.append(quote + (prefix if i == 0 else follow) + line)
        self.pending_prefix = ""
        if self.heading:
            self.out.append("-" * min(len(text), self.width))
        if not depth:
            self.out.append("")


def _inline_text(children: Sequence[Token]) -> str:
    """Flatten inline tokens to text, putting each link's URL after its text."""
    parts: list[str] = []
    href_stack: list[tuple[str, int]] = []
    for child in children:
        if child.type == "text" or child.type == "code_inline":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "link_open":
            href_stack.append((str(child.attrGet("href") or ""), len(parts)))
        elif child.type == "link_close" and href_stack:
            href, start = href_stack.pop()
            label = "".join(parts[start:])
            shown = href.removeprefix("mailto:")
            if label.strip() not in (href, shown):
                parts.append(f" ({shown})")
        elif child.type == "image":
            parts.append(f"[{child.content}]")
    return "".join(parts)
