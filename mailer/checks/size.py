"""Size: the HTML part as sent, against Gmail's clipping at about 102 KB."""

from __future__ import annotations

from collections import Counter

from lxml import html as lxml_html
from lxml.etree import _Element

from mailer.checks.base import Email, Finding, is_hidden, text_of
from mailer.mime import encode_part

KB = 1024
WARN_BYTES = 90 * KB
# Gmail shows "[Message clipped] View entire message" past ~102 KB of HTML as received,
# i.e. after the transfer encoding, and hides the rest: the unsubscribe link with it.
CLIP_BYTES = 102 * KB
LAYOUT = -1  # the part of the HTML no block accounts for: header, footer, spacing


def check_size(email: Email) -> list[Finding]:
    """Warn from 90 KB and fail above 102 KB, naming the largest blocks."""
    size = len(encode_part(email.html))
    if size < WARN_BYTES:
        return []
    parts = block_sizes(email)
    largest = [(block, part) for block, part in parts.most_common() if part > 0][:3]
    named = [_name(email, block, part) for block, part in largest]
    biggest_block = next((block for block, _part in largest if block != LAYOUT), None)
    where = f"blocks[{biggest_block}]" if biggest_block is not None else "the HTML part"
    hint = (
        f"the largest parts: {'; '.join(named)}; shorten them, or move long text to a web page "
        "and link to it"
    )
    if size > CLIP_BYTES:
        message = (
            f"the HTML part is {_kb(size)} KB as sent; Gmail clips messages over 102 KB and "
            "hides the rest, the unsubscribe link included"
        )
        return [Finding("error", "size", where, message, hint)]
    message = f"the HTML part is {_kb(size)} KB as sent, close to Gmail's clipping at 102 KB"
    return [Finding("warning", "size", where, message, hint)]


def block_sizes(email: Email) -> Counter[int]:
    """Return roughly how many bytes (as sent) each block takes; LAYOUT for the rest."""
    sizes: Counter[int] = Counter()
    body = email.root.find("body")
    if body is None:
        return sizes
    container = _container(email, body)
    block = LAYOUT
    pending = 0  # comments (Outlook's ghost tables) belong to the element after them
    for child in container:
        part = len(encode_part(lxml_html.tostring(child, encoding="unicode", with_tail=True)))
        if not isinstance(child.tag, str):
            pending += part
            continue
        matched = _blocks_in(email, child)
        later = sorted(b for b in matched if b >= block)
        owner = later[0] if later else LAYOUT
        if not matched and _is_divider(email, block + 1):
            owner = block + 1  # a divider has nothing to recognise it by but its place
        if owner != LAYOUT:
            block = owner
        sizes[owner] += part + pending
        pending = 0
    sizes[LAYOUT] += pending
    return sizes


def _container(email: Email, node: _Element) -> _Element:
    """Descend to the element whose children are the blocks' sections."""
    covered = _blocks_in(email, node)
    while len(covered) > 1:
        kids = [k for k in node if isinstance(k.tag, str) and not is_hidden(k)]
        matched = [k for k in kids if _blocks_in(email, k)]
        if len(matched) != 1 or _blocks_in(email, matched[0]) != covered:
            break
        node = matched[0]
    return node


def _blocks_in(email: Email, element: _Element) -> set[int]:
    """Return the blocks whose links, images, headings or text appear in the element."""
    if is_hidden(element):
        return set()
    origins = email.origins
    urls = {u for el in element.iter() if isinstance(el.tag, str) for u in _urls(el)}
    text = text_of(element)
    found = {s.block for s in origins.links if any(s.url.fullmatch(u) for u in urls)}
    found |= {s.block for s in origins.images if any(s.text.fullmatch(u) for u in urls)}
    for source in (*origins.headings, *origins.snippets):
        if source.block not in found and source.text.search(text):
            found.add(source.block)
    return found


def _is_divider(email: Email, index: int) -> bool:
    types = email.origins.block_types
    return 0 <= index < len(types) and types[index] == "divider"


def _urls(element: _Element) -> list[str]:
    return [v for v in (element.get("href"), element.get("src")) if v]


def _name(email: Email, block: int, size: int) -> str:
    if block == LAYOUT:
        return f"the layout (header, footer, spacing) {_kb(size)} KB"
    return f"{email.origins.block_loc(block)} {_kb(size)} KB"


def _kb(size: int) -> str:
    return f"{size / KB:.1f}"
