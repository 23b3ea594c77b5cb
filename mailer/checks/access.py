"""Accessibility: the language, images' alt text, heading order (contrast: contrast.py)."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from lxml.etree import _Element

from mailer.checks.base import Email, Finding, Severity, is_hidden, text_of
from mailer.checks.contrast import check_contrast

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_FILE_NAME = re.compile(
    r"^[\w\s.()-]*\.(png|jpe?g|gif|webp|svg|bmp|tiff?|avif|heic)$|^(img|dsc|image|photo)[_-]?\d+$",
    re.IGNORECASE,
)
# Alt text that tells a reader who cannot see the image nothing about it.
_GENERIC_ALT = {"image", "photo", "picture", "img", "graphic", "banner", "logo", "icon"}


def check_accessibility(email: Email) -> list[Finding]:
    """Check lang, alt text, heading order, contrast and links that blend into text."""
    return [
        *_check_lang(email),
        *_check_images(email),
        *_check_headings(email),
        *check_contrast(email),
    ]


def _check_lang(email: Email) -> list[Finding]:
    lang = (email.root.get("lang") or "").strip()
    if _LANGUAGE.match(lang) and lang.lower() != "und":
        return []
    shown = f'lang="{lang}"' if lang else "no lang attribute"
    return [
        Finding(
            "error",
            "accessibility",
            f'<html> in the HTML (layout "{email.layout}")',
            f"the email has {shown}: screen readers cannot pick the right voice",
            'set language in mailer.toml (e.g. "en-GB") and keep '
            '<mjml lang="{{ settings.language }}"> in the layout',
        )
    ]


def _check_images(email: Email) -> list[Finding]:
    findings = []
    for image in email.elements("img"):
        if image.get("role") == "presentation" or image.get("aria-hidden") == "true":
            continue
        src = image.get("src", "")
        source = email.origins.image(src)
        if source is None:
            where = email.in_layout(image)
        else:  # an image block's alt is beside its src; a Markdown image is in the body
            where = source.loc.removesuffix(".src") + (
                ".alt" if source.loc.endswith(".src") else ""
            )
        alt = image.get("alt")
        problem = _alt_problem(alt, src, linked=_in_link(image))
        if problem is not None:
            severity, message = problem
            findings.append(
                Finding(
                    severity,
                    "accessibility",
                    where,
                    f'image "{src}" {message}',
                    "describe what the image shows, in a short sentence (alt text); "
                    'for a purely decorative image, give it alt="" and role="presentation"',
                )
            )
    return findings


def _alt_problem(alt: str | None, src: str, *, linked: bool) -> tuple[Severity, str] | None:
    if alt is None:
        return "error", "has no alt text: screen readers read out its address instead"
    text = alt.strip()
    if not text:
        what = "is a link without text" if linked else "has empty alt text"
        return "error", f"{what}; readers with images off see nothing"
    name = unquote(urlsplit(src).path.rsplit("/", 1)[-1])
    if _FILE_NAME.match(text) or (name and text.casefold() == name.casefold()):
        return "error", f'has a file name as alt text ("{text}")'
    if text.casefold().strip(".") in _GENERIC_ALT:
        return "warning", f'has alt text that says nothing about it ("{text}")'
    return None


def _in_link(element: _Element) -> bool:
    return any(a.tag == "a" and a.get("href") for a in element.iterancestors())


def _check_headings(email: Email) -> list[Finding]:
    findings = []
    previous = 0
    for heading in email.elements("h1", "h2", "h3", "h4", "h5", "h6"):
        if is_hidden(heading):
            continue
        level = int(str(heading.tag)[1])
        text = text_of(heading)
        if previous and level > previous + 1:
            source = email.origins.heading(text)
            where = source.loc if source else email.in_layout(heading)
            findings.append(
                Finding(
                    "warning",
                    "accessibility",
                    where,
                    f'heading "{text}" (h{level}) follows an h{previous}: a level is skipped',
                    "use one more # than the heading above it in Markdown (## under a block "
                    "heading), or fix the heading levels in the layout",
                )
            )
        previous = level
    return findings
