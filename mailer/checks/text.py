"""Text part: present, free of markup and CSS, and carrying every link of the HTML part."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from mailer.checks.base import Email, Finding, Severity
from mailer.checks.links import Link
from mailer.issue import TOKEN

_TAGS = (
    "a|b|i|u|em|strong|p|br|hr|div|span|table|tr|td|th|tbody|thead|img|ul|ol|li|h[1-6]|"
    "style|script|head|body|html|font|center|blockquote|pre|code|small|sup|sub|meta|link|mj-[a-z-]+"
)
_TAG = re.compile(rf"</?({_TAGS})(\s[^<>]*)?/?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-f]+|[a-z]{2,8});", re.IGNORECASE)
# Bounded repeats: a text part may hold a 10,000-letter "word", and open ones backtrack.
_CSS = re.compile(
    r"[\w.#:-]{1,60}\s*\{[^{}\n]{0,200}:[^{}\n]{0,200}\}|\bstyle=\"|@media\b"
    r"|\b(color|background(-color)?|margin|padding|font(-[a-z]+)?|border(-[a-z]+)?|width"
    r"|height|display|line-height|text-[a-z]+)\s*:\s*[^;\n]{1,60};"
)
_TEMPLATE = re.compile(r"\{\{|\}\}|\{%|%\}")
_HINT = "the text part is written from the issue: check the issue's Markdown, or report a bug"


def check_text(email: Email, links: list[Link]) -> list[Finding]:
    """Check the text part is there, plain, and has every web and mailto link of the HTML."""
    text = email.text
    if not text.strip():
        return [
            Finding(
                "error",
                "text",
                "the text part",
                "the text part is empty: some clients and many spam filters rely on it",
                _HINT,
            )
        ]
    findings = []
    # Markup, entities and CSS may be the writer's own words ("width: 5m; height: 3m;", a
    # code span showing <br>): a warning. Template syntax or a token left over is a bug.
    leftovers: list[tuple[str, re.Pattern[str], Severity]] = [
        ("HTML markup", _TAG, "warning"),
        ("an HTML entity", _ENTITY, "warning"),
        ("CSS", _CSS, "warning"),
        ("a template tag", _TEMPLATE, "error"),
        ("a placeholder token", TOKEN, "error"),
    ]
    for what, pattern, severity in leftovers:
        match = pattern.search(text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            findings.append(
                Finding(
                    severity,
                    "text",
                    f"the text part, line {line}",
                    f'the text part contains {what}: "{match.group(0)[:60]}"',
                    _HINT,
                )
            )
    findings += _missing_links(text, links)
    return findings


def _missing_links(text: str, links: list[Link]) -> list[Finding]:
    shown = unquote(text)
    findings = []
    seen: set[str] = set()
    for link in links:
        if link.attribute != "href" or link.url in seen:
            continue
        seen.add(link.url)
        scheme = urlsplit(link.url).scheme.lower()
        if scheme not in ("http", "https", "mailto"):
            continue
        wanted = (
            link.url.split("?", 1)[0].removeprefix("mailto:") if scheme == "mailto" else link.url
        )
        if wanted in text or unquote(wanted) in shown:
            continue
        findings.append(
            Finding(
                "warning",
                "text",
                link.where,
                f'the link "{link.url}" ("{link.text[:40]}") is missing from the text part',
                "the text part is written from the issue, not the layout: put the link in the "
                "issue, or accept that text-only readers will not see it",
            )
        )
    return findings
