"""Contrast: every visible text's colour on its background, links told apart from text."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from lxml.etree import _Element

from mailer.checks.base import Email, Finding, style_of, text_of
from mailer.checks.colour import (
    BLACK,
    LINK_BLUE,
    RGB,
    WHITE,
    blend,
    contrast,
    darker_for,
    hex_of,
    parse_colour,
)
from mailer.checks.links import link_text

AA_NORMAL = 4.5
AA_LARGE = 3.0  # 24 px, or 18.66 px (14 pt) bold: WCAG 2.1 SC 1.4.3
LINK_FROM_TEXT = 3.0  # a link without underline must differ from its text (WCAG G183)
_HEADING_EM = {"h1": 2.0, "h2": 1.5, "h3": 1.17, "h4": 1.0, "h5": 0.83, "h6": 0.67, "small": 0.83}
_BOLD_TAGS = {"b", "strong", "th", "h1", "h2", "h3", "h4", "h5", "h6"}
_SIZE = re.compile(r"^([\d.]+)(px|pt|em|rem|%)?$")


@dataclass(frozen=True)
class _Look:
    """What CSS gives an element: its text colour, background, size and weight."""

    colour: RGB
    background: RGB
    size: float
    bold: bool


@dataclass
class _Failure:
    fg: str
    bg: str
    ratio: float
    needed: float
    element: _Element
    count: int = 1


def check_contrast(email: Email) -> list[Finding]:
    """Check each visible text against WCAG AA, and the brand colours on their own."""
    failures: dict[tuple[str, str], _Failure] = {}
    findings: list[Finding] = []
    body = email.root.find("body")
    if body is not None:
        _walk(email, body, _Look(BLACK, WHITE, 16.0, False), failures, findings)
    reported = {(f.fg, f.bg) for f in failures.values()}
    findings[:0] = [_contrast_finding(email, f) for f in failures.values()]
    brand = email.settings.brand
    pairs = [
        (brand.primary_colour, "#ffffff", "links and headings on white"),
        (brand.accent_colour, "#ffffff", "dates on white"),
        ("#ffffff", brand.primary_colour, "white text on the header and buttons"),
    ]
    for fg, bg, use in pairs:
        fg_rgb, bg_rgb = _rgb(fg), _rgb(bg)
        ratio = contrast(fg_rgb, bg_rgb)
        if ratio < AA_NORMAL and (hex_of(fg_rgb), hex_of(bg_rgb)) not in reported:
            failure = _Failure(hex_of(fg_rgb), hex_of(bg_rgb), ratio, AA_NORMAL, body or email.root)
            finding = _contrast_finding(email, failure)
            findings.append(replace(finding, message=f"{finding.message} ({use})"))
    return findings


def _rgb(value: str) -> RGB:
    parsed = parse_colour(value)
    return parsed[0] if parsed else WHITE


def _walk(
    email: Email,
    element: _Element,
    parent: _Look,
    failures: dict[tuple[str, str], _Failure],
    findings: list[Finding],
) -> None:
    style = style_of(element)
    if style.get("display", "").startswith("none") or style.get("visibility") == "hidden":
        return
    if style.get("opacity", "").strip() in ("0", "0.0") or element.tag in ("style", "script"):
        return
    look = _look(element, style, parent)
    if look.size > 1 and _has_own_text(element):
        large = look.size >= 24 or (look.bold and look.size >= 18.66)
        needed = AA_LARGE if large else AA_NORMAL
        ratio = contrast(look.colour, look.background)
        if ratio < needed:
            key = (hex_of(look.colour), hex_of(look.background))
            if key in failures:
                failures[key].count += 1
                failures[key].needed = max(failures[key].needed, needed)
            else:
                failures[key] = _Failure(key[0], key[1], ratio, needed, element)
    if element.tag == "a" and element.get("href"):
        finding = _blends_in(email, element, style, look, parent)
        if finding is not None:
            findings.append(finding)
    for child in element:
        if isinstance(child.tag, str):
            _walk(email, child, look, failures, findings)


def _look(element: _Element, style: dict[str, str], parent: _Look) -> _Look:
    tag = str(element.tag)
    own = parse_colour(style.get("color") or element.get("color"))
    colour = LINK_BLUE if tag == "a" else parent.colour
    if own is not None:
        colour = blend(own[0], own[1], parent.background)
    background = parent.background
    fill = parse_colour(
        style.get("background-color") or style.get("background") or element.get("bgcolor")
    )
    if fill is not None:
        background = blend(fill[0], fill[1], parent.background)
    size = _font_size(style.get("font-size"), parent.size, _HEADING_EM.get(tag))
    weight = style.get("font-weight", "").strip()
    bold = parent.bold or tag in _BOLD_TAGS
    if weight:
        bold = weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 700)
    return _Look(colour, background, size, bold)


def _font_size(value: str | None, inherited: float, default_em: float | None) -> float:
    match = _SIZE.match((value or "").strip().lower().removesuffix("!important").strip())
    if match is None:
        return inherited * default_em if default_em else inherited
    number, unit = float(match.group(1)), match.group(2) or "px"
    return {"px": number, "pt": number * 4 / 3, "em": number * inherited,
            "rem": number * 16, "%": number * inherited / 100}[unit]  # fmt: skip


def _has_own_text(element: _Element) -> bool:
    if element.text and element.text.strip():
        return True
    return any(child.tail and child.tail.strip() for child in element)


def _contrast_finding(email: Email, failure: _Failure) -> Finding:
    brand = email.settings.brand
    keys = {
        brand.primary_colour.lower(): "brand.primary_colour",
        brand.accent_colour.lower(): "brand.accent_colour",
    }
    key = keys.get(failure.fg) or keys.get(failure.bg)
    sample = f'"{text_of(failure.element)[:40]}"' if failure.element.tag != "body" else ""
    more = f" and {failure.count - 1} more places" if failure.count > 1 else ""
    message = (
        f"text {failure.fg} on {failure.bg} has a contrast of {failure.ratio:.2f}:1; WCAG AA "
        f"needs {failure.needed:g}:1" + (f" (e.g. {sample}{more})" if sample else "")
    )
    if key is None:
        hint = "darken the text colour or change the background in the layout's CSS"
        return Finding("error", "accessibility", email.in_layout(failure.element), message, hint)
    colour = _rgb(failure.fg if key == keys.get(failure.fg) else failure.bg)
    suggestion = hex_of(darker_for(colour, WHITE, AA_NORMAL))
    hint = f'set {key} in mailer.toml to a darker colour, e.g. "{suggestion}"'
    return Finding("error", "accessibility", f"mailer.toml: {key}", message, hint)


def _blends_in(
    email: Email, element: _Element, style: dict[str, str], look: _Look, parent: _Look
) -> Finding | None:
    """Flag a link inside text that is neither underlined nor 3:1 from the text around it."""
    decoration = style.get("text-decoration") or style.get("text-decoration-line") or "underline"
    if "underline" in decoration or "border-bottom" in style:
        return None
    if any("underline" in style_of(c).get("text-decoration", "") for c in element.iter()):
        return None
    holder = element.getparent()
    if holder is None or not _text_outside(holder, element):
        return None  # a button or a link on its own line stands out by its place
    ratio = contrast(look.colour, parent.colour)
    if ratio >= LINK_FROM_TEXT:
        return None
    text = link_text(element)
    source = email.origins.link(element.get("href", ""), text)
    where = source.text_loc if source else email.in_layout(element)
    return Finding(
        "warning",
        "accessibility",
        where,
        f'link "{text}" is not underlined and its colour is only {ratio:.2f}:1 from the '
        "text around it: readers who cannot tell colours apart will not see it",
        "underline links in text (text-decoration: underline) in the layout's CSS",
    )


def _text_outside(holder: _Element, link: _Element) -> bool:
    outside = (holder.text or "") + "".join(
        (child.tail or "") + ("" if child is link else text_of(child)) for child in holder
    )
    return bool(outside.strip(" \n\t\u00b7|-\u2013\u2014,.;:()"))
