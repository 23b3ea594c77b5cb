"""Where the parts of the final HTML came from: the issue's links, images and headings."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from markdown_it.token import Token
from pydantic import BaseModel

from mailer.issue import PLACEHOLDER, Issue, Loc, dotted, parse_markdown

# Placeholders become this before Markdown is parsed (it survives URL normalisation), then
# a wildcard: the HTML holds the sample recipient's value where the issue has {{ ... }}.
_WILD = "MAILERWILDX"
_SNIPPET_CHARS = 24  # a run of body text long enough to tell blocks apart
# What a link's text is, by the field names of the schema: a course's button, a link's text...
_LINK_TEXT_KEYS = ("button", "text", "title", "alt")


def _pattern(value: str, *, collapse: bool = False) -> re.Pattern[str]:
    value = PLACEHOLDER.sub(_WILD, value)
    if collapse:
        value = " ".join(value.split())
    return re.compile(".*?".join(re.escape(part) for part in value.split(_WILD)), re.DOTALL)


@dataclass(frozen=True)
class LinkSource:
    """A link the issue wrote: where its URL and its text are, and its item's title."""

    block: int
    url_loc: str
    text_loc: str
    context: str
    url: re.Pattern[str]
    text: re.Pattern[str]


@dataclass(frozen=True)
class TextSource:
    """A heading, title, image or run of text the issue wrote, and where."""

    block: int
    loc: str
    text: re.Pattern[str]


@dataclass
class Origins:
    """Everything in the issue that the HTML can be traced back to."""

    links: list[LinkSource] = field(default_factory=list)
    images: list[TextSource] = field(default_factory=list)  # matched against src
    headings: list[TextSource] = field(default_factory=list)
    snippets: list[TextSource] = field(default_factory=list)
    block_types: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, issue: Issue) -> Origins:
        """Index every block of the issue."""
        origins = cls()
        for index, block in enumerate(issue.blocks):
            origins.block_types.append(block.type)
            origins._add_block(index, block)
        return origins

    def link(self, url: str, text: str) -> LinkSource | None:
        """Return the issue's link with this URL, preferring the one with this text."""
        found = [s for s in self.links if s.url.fullmatch(url)]
        shown = " ".join(text.split())
        return next((s for s in found if s.text.fullmatch(shown)), found[0] if found else None)

    def image(self, src: str) -> TextSource | None:
        """Return where the issue set this image source."""
        return next((s for s in self.images if s.text.fullmatch(src)), None)

    def heading(self, text: str) -> TextSource | None:
        """Return where the issue wrote a heading or title with this text."""
        shown = " ".join(text.split())
        return next((s for s in self.headings if s.text.fullmatch(shown)), None)

    def block_loc(self, index: int) -> str:
        """Return `blocks[3] (article)`."""
        return f"blocks[{index}] ({self.block_types[index]})"

    def _add_block(self, index: int, block: BaseModel) -> None:
        self._add(index, ("blocks", index), block, context="")

    def _add(self, index: int, loc: Loc, node: BaseModel, context: str) -> None:
        """Index one block or item by the schema's field names, so any block type is traced.

        heading and title are headings; body is Markdown; src is an image with its alt text;
        url is a link whose text is the button, text, title or alt beside it; lists of items
        and links are walked, each with the title of the item they belong to as context.
        """
        fields = {name: getattr(node, name) for name in type(node).model_fields}
        title = fields.get("title")
        for key in ("heading", "title"):
            if fields.get(key):
                self._heading(index, (*loc, key), fields[key])
        for key in ("body", "intro"):  # Markdown
            if fields.get(key):
                self._body(index, (*loc, key), fields[key], context=title or "")
        if fields.get("src"):
            self.images.append(TextSource(index, dotted((*loc, "src")), _pattern(fields["src"])))
            if fields.get("alt"):
                self.snippets.append(
                    TextSource(index, dotted((*loc, "alt")), _pattern(fields["alt"]))
                )
        if fields.get("url"):
            text_key = next((k for k in _LINK_TEXT_KEYS if fields.get(k)), "url")
            around = "" if text_key == "title" else title or context
            self._link(index, loc, "url", text_key, fields["url"], fields[text_key], around)
        for key, value in fields.items():
            if isinstance(value, list):
                for position, child in enumerate(value):
                    if isinstance(child, BaseModel):
                        self._add(index, (*loc, key, position), child, title or context)

    def _heading(self, block: int, loc: Loc, text: str) -> None:
        self.headings.append(TextSource(block, dotted(loc), _pattern(text, collapse=True)))

    def _link(
        self, block: int, loc: Loc, url_key: str, text_key: str, url: str, text: str, context: str
    ) -> None:
        self.links.append(
            LinkSource(
                block,
                dotted((*loc, url_key)),
                dotted((*loc, text_key)),
                context,
                _pattern(url),
                _pattern(text, collapse=True),
            )
        )

    def _body(self, block: int, loc: Loc, body: str, context: str) -> None:
        where = dotted(loc)
        tokens = parse_markdown(PLACEHOLDER.sub(_WILD, body))
        for position, token in enumerate(tokens):
            if token.type == "heading_open" and position + 1 < len(tokens):
                text = _plain(tokens[position + 1].children or [])
                self.headings.append(TextSource(block, where, _pattern(text, collapse=True)))
            for text in _runs(token.children or []):
                self.snippets.append(TextSource(block, where, _pattern(text, collapse=True)))
            self._inline_links(block, where, token.children or [], context)

    def _inline_links(self, block: int, where: str, children: list[Token], context: str) -> None:
        open_href: str | None = None
        label: list[Token] = []
        for child in children:
            if child.type == "link_open":
                open_href, label = str(child.attrGet("href") or ""), []
            elif child.type == "link_close" and open_href is not None:
                text = _plain(label)
                self.links.append(
                    LinkSource(
                        block,
                        where,
                        where,
                        context,
                        _pattern(open_href),
                        _pattern(text, collapse=True),
                    )
                )
                open_href = None
            elif open_href is not None:
                label.append(child)
            if child.type == "image":
                self.images.append(TextSource(block, where, _pattern(str(child.attrGet("src")))))


def _plain(children: Iterable[Token]) -> str:
    """Return the text of inline tokens, as the HTML shows it."""
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts).replace(_WILD, "{{ }}")


def _runs(children: Iterable[Token]) -> list[str]:
    """Return runs of plain text long enough to recognise a block by (placeholders split)."""
    runs = []
    for child in children:
        if child.type == "text":
            for part in child.content.split(_WILD):
                if len(part.strip()) >= _SNIPPET_CHARS:
                    runs.append(part.strip())
    return runs[:2]
