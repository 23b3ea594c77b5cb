"""Inline the layout's CSS with premailer: fetch nothing, lose nothing, stay a sane size.

- premailer loads no <link> stylesheet (allow_network=False), but cssutils, which parses the
  CSS for it, fetches every @import with urllib and no timeout (a relative one from the
  current directory, as a file:// URL). Its parser gets a fetcher that refuses and records
  the address; an @import is then an error naming the layout file.
- libxml2 (lxml, under premailer) silently drops what lies past a text node over 10 MB or
  elements nested deeper than 255: the email would lose its end, footer and unsubscribe link
  included. The visible text is counted before and after, by Python's own HTML parser.
"""

from __future__ import annotations

import functools
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mailer.errors import TemplateError, shown_path
from mailer.render.layout import layout_files

DOCTYPE = "<!doctype html>\n"
# Gmail clips an email at 102 KB; a layout or an issue that makes megabytes is a mistake, and
# 5 MB stays far below libxml2's 10 MB text node.
MAX_HTML_BYTES = 5_000_000


def inline_css(html: str, directory: Path, issue: str) -> str:
    """Return html with the layout's CSS inlined; raise TemplateError if anything went wrong."""
    _check_size(html, directory, issue)
    refused: list[str] = []
    try:
        inlined = str(_premailer(html, refused).transform())
    except Exception as err:  # premailer raises many kinds; all mean the CSS is unusable
        raise TemplateError(f"{directory}: CSS inlining failed: {err}; check <mj-style>") from err
    if refused:
        raise TemplateError(
            f'{_where(directory, "@import")}: the layout\'s CSS imports "{refused[0]}": '
            "nothing is fetched while rendering, and most email clients ignore @import; "
            "put the rules in <mj-style> instead"
        )
    before, after = visible_length(html), visible_length(inlined)
    if after < before:
        raise TemplateError(
            f"{shown_path(directory)}: inlining the CSS lost {before - after} of the email's "
            f"{before} characters of text (libxml2 drops what follows a text over 10 MB or "
            "elements nested over 255 deep); flatten the layout or shorten the issue"
        )
    # premailer serialises from the root element and drops the doctype; without it clients
    # and browsers fall back to quirks mode.
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = DOCTYPE + inlined
    _check_size(inlined, directory, issue)
    return inlined


def visible_length(html: str) -> int:
    """Return how many non-space characters of text html holds outside <style> and <script>."""
    counter = _TextCounter()
    counter.feed(html)
    counter.close()
    return counter.count


class _TextCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.count = 0
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self.hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.count += sum(len(word) for word in data.split())


def _check_size(html: str, directory: Path, issue: str) -> None:
    size = len(html.encode("utf-8"))
    if size > MAX_HTML_BYTES:
        raise TemplateError(
            f'{issue}: the email\'s HTML is {size / 1_000_000:.1f} MB (layout "{directory.name}"), '
            f"over the {MAX_HTML_BYTES // 1_000_000} MB limit, and Gmail clips it after 102 KB; "
            "shorten the issue, or link to long documents"
        )


def _premailer(html: str, refused: list[str]) -> Any:
    import cssutils
    from premailer import Premailer  # imported late: `mailer --help` stays fast

    # premailer validates every inline style against cssutils' CSS profiles, which compiles
    # ~30 large regexes (0.15 s a run) for verdicts it then ignores: same output without them.
    cssutils.profile.removeProfile(all=True)

    class _Offline(Premailer):  # type: ignore[misc]  # premailer has no type hints
        def _parse_css_string(self, css_body: str, validate: bool = True) -> Any:
            # premailer's own parse uses cssutils' default fetcher (urllib, no timeout)
            sheet, asked = _parse_offline(css_body, validate)
            refused.extend(asked)
            return sheet

    return _Offline(
        html,
        allow_network=False,  # never fetch a linked stylesheet
        allow_loading_external_files=False,
        disable_link_rewrites=True,
        strip_important=False,  # media queries need !important to beat inline styles
        disable_basic_attributes=["width", "height"],  # keep <img width> in pixels
        keep_style_tags=True,
        disable_validation=True,  # see above
        align_floating_images=False,  # we float no images; it would parse every <img>
        cssutils_logging_level=logging.CRITICAL,
        method="html",
    )


@functools.lru_cache(maxsize=64)  # as premailer caches its own parses: --watch renders again
def _parse_offline(css_body: str, validate: bool) -> tuple[Any, tuple[str, ...]]:
    """Parse CSS with a fetcher that refuses; return the sheet and the addresses refused."""
    import cssutils

    asked: list[str] = []

    def refuse(url: str) -> None:
        asked.append(url)  # returning no text: cssutils leaves the @import unresolved

    sheet = cssutils.CSSParser(fetcher=refuse, validate=validate).parseString(css_body)
    return sheet, tuple(asked)


def _where(directory: Path, text: str) -> str:
    """Return file:line of the first layout line holding text, else the layout folder."""
    wanted = re.compile(re.escape(text), re.IGNORECASE)
    for path in layout_files(directory):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(lines, 1):
            if wanted.search(line):
                return f"{shown_path(path)}:{number}"
    return shown_path(directory)
