"""Links: every href and src safe, real and telling; mailto addresses valid."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from lxml.etree import _Element

from mailer.addresses import validate_address
from mailer.checks.base import Email, Finding, Severity, is_hidden, style_of, text_of
from mailer.issue import TOKEN, check_url

# Link text that says nothing out of context (WCAG 2.4.4): screen-reader users often
# list the links of a message, and "here" then means nothing.
VAGUE_TEXT = {
    "click here",
    "click",
    "here",
    "read more",
    "more",
    "link",
    "this link",
    "learn more",
    "find out more",
    "more info",
}
_LEFTOVER = re.compile(r"\{\{|\}\}|\{%")


@dataclass(frozen=True)
class Link:
    """One href or src of the final HTML, with where it came from."""

    element: _Element
    attribute: str
    url: str
    text: str
    where: str
    text_where: str
    context: str
    in_issue: bool


def collect_links(email: Email) -> list[Link]:
    """Return every href and src in the HTML, in document order, traced to the issue."""
    links = []
    for element in email.root.iter():
        if not isinstance(element.tag, str):
            continue  # Outlook's conditional comments: no links of their own in our layouts
        for attribute in ("href", "src"):
            url = element.get(attribute)
            if url is None:
                continue
            text = link_text(element) if attribute == "href" else element.get("alt", "")
            links.append(_traced(email, element, attribute, url, text))
    return links


def link_text(element: _Element) -> str:
    """Return a link's accessible name: aria-label, else its text, else its images' alt."""
    label = element.get("aria-label")
    if label and label.strip():
        return " ".join(label.split())
    text = text_of(element)
    if text:
        return text
    return " ".join(img.get("alt", "") for img in element.iter("img")).strip()


def _traced(email: Email, element: _Element, attribute: str, url: str, text: str) -> Link:
    origins = email.origins
    if attribute == "src":
        image = origins.image(url)
        if image is not None:
            return Link(element, attribute, url, text, image.loc, image.loc, "", True)
    else:
        source = origins.link(url, text)
        if source is not None:
            where, text_where = source.url_loc, source.text_loc
            return Link(element, attribute, url, text, where, text_where, source.context, True)
    where = email.in_layout(element)
    return Link(element, attribute, url, text, where, where, "", False)


def check_links(email: Email) -> list[Finding]:
    """Check schemes, empty and # links, vague or ambiguous text, and mailto addresses."""
    findings: list[Finding] = []
    links = collect_links(email)
    for link in links:
        findings += _check_one(link)
    findings += _ambiguous(links)
    findings += _check_unsubscribe(email, links)
    return findings


def _check_one(link: Link) -> list[Finding]:
    url = link.url.strip()
    found: list[Finding] = []

    def add(severity: Severity, message: str, hint: str, where: str = link.where) -> None:
        found.append(Finding(severity, "links", where, message, hint))

    if not url or url.startswith("#"):
        add("error", f'{link.attribute}="{url}" goes nowhere in an email', _FULL_URL)
        return found
    if link.attribute == "src" and url.startswith("cid:"):
        return found  # an image file sent inside the message (render.images, RFC 2392)
    if TOKEN.search(url) or _LEFTOVER.search(url):
        add("error", f'"{url}" still holds a placeholder', _PLACEHOLDER_HINT)
        return found
    error, warning = check_url(url)
    if error:
        add("error", error, _FULL_URL if link.in_issue else _LAYOUT_HINT)
        return found
    scheme = urlsplit(url).scheme.lower()
    if link.attribute == "src" and scheme == "mailto":
        add("error", f'image source "{url}" is not an image address', _FULL_URL)
    if warning:
        add("warning", warning, _HTTP_HINT[link.attribute])
    if scheme == "mailto":
        found += _check_mailto(link, url)
    if link.attribute == "href" and link.element.tag == "a":
        words = link.text.strip(" .:!?\u2026\u00bb\u203a>-").casefold()
        if not words and link.element.find(".//img") is None:  # an image: its alt is checked
            add("error", f'the link to "{url}" has no text', _TEXT_HINT, link.text_where)
        elif words in VAGUE_TEXT:
            message = f'link text "{link.text}" says nothing out of context'
            add("warning", message, _TEXT_HINT, link.text_where)
    return found


_HTTP_HINT = {
    "href": "browsers mark http:// pages as not secure",
    "src": "some clients block images sent over http://",
}
_FULL_URL = "write a full address: https://..., or mailto:name@example.org"
_LAYOUT_HINT = "fix or remove the link in the layout"
_PLACEHOLDER_HINT = "use {{ recipient.<column> }} placeholders in the issue, after https://..."
_TEXT_HINT = 'say where the link goes, e.g. "the neglect toolkit", not "click here"'


def _check_mailto(link: Link, url: str) -> list[Finding]:
    address_part = unquote(url[len("mailto:") :].split("?", 1)[0])
    problems = []
    for address in filter(None, (a.strip() for a in address_part.split(","))):
        if err := validate_address(address):
            problems.append(
                Finding(
                    "error",
                    "links",
                    link.where,
                    f'mailto address "{address}" is not valid: {err}',
                    "write it as name@example.org",
                )
            )
    if not address_part.strip():
        problems.append(Finding("error", "links", link.where, f'"{url}" has no address', _FULL_URL))
    return problems


def _ambiguous(links: list[Link]) -> list[Finding]:
    """Flag the same link text pointing to different places (an item's title tells apart)."""
    targets: dict[tuple[str, str], dict[str, Link]] = defaultdict(dict)
    for link in links:
        if link.attribute != "href" or link.element.tag != "a" or not link.text.strip():
            continue
        key = (link.text.casefold(), link.context)
        targets[key].setdefault(link.url.rstrip("/"), link)
    findings = []
    for (_text, _context), by_url in targets.items():
        if len(by_url) < 2:
            continue
        first, *others = by_url.values()
        elsewhere = ", ".join(f'"{o.url}" ({o.text_where})' for o in others)
        findings.append(
            Finding(
                "warning",
                "links",
                first.text_where,
                f'link text "{first.text}" leads to "{first.url}" here but to {elsewhere}',
                "give each link text that says where it goes",
            )
        )
    return findings


def _check_unsubscribe(email: Email, links: list[Link]) -> list[Finding]:
    """Error unless a reader can see and follow an unsubscribe link.

    Gmail and Yahoo require one in the body of bulk mail (besides RFC 8058's header), and so
    do the laws on marketing mail (CAN-SPAM, PECR); a layout can drop it or hide it.
    """
    settings = email.settings
    mailto = f"mailto:{settings.unsubscribe_mailto}" if settings.unsubscribe_mailto else None
    targets = tuple(t.casefold() for t in (settings.unsubscribe_url, mailto) if t)
    found = [
        link
        for link in links
        if link.attribute == "href"
        and link.element.tag == "a"
        and link.url.casefold().startswith(targets)
    ]
    if any(_visible(link) for link in found):
        return []
    what = "has no unsubscribe link" if not found else "hides its unsubscribe link"
    return [
        Finding(
            "error",
            "links",
            f'the footer in the HTML (layout "{email.layout}")',
            f"the email {what}: readers must be able to leave the list, and Gmail and Yahoo "
            "treat bulk mail without a visible one as spam",
            'keep <a href="{{ unsubscribe_url }}">Unsubscribe</a>, visible, in the layout',
        )
    ]


def _visible(link: Link) -> bool:
    """Say whether a link is shown with words a reader can see (not hidden, not 0 px)."""
    if not link.text.strip() or is_hidden(link.element):
        return False
    nodes = [link.element, *link.element.iterancestors()]
    styles = [style_of(node) for node in nodes]
    # The nearest font-size counts: MJML sets 0 on cells to kill the gaps between columns.
    if _zero(next((style["font-size"] for style in styles if "font-size" in style), "")):
        return False
    for node, style in zip(nodes, styles, strict=True):
        if node.get("hidden") is not None:
            return False
        if _zero(style.get("max-height", "")) and style.get("overflow") == "hidden":
            return False
    return True


def _zero(value: str) -> bool:
    """Say whether a CSS length is zero: 0, 0px, 0.0em, 0 !important."""
    return re.fullmatch(r"0+(\.0*)?\s*(px|em|rem|pt|%)?\s*(!important)?", value.strip()) is not None
