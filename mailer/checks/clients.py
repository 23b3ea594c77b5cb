"""Email clients: the HTML and CSS the email uses, against caniemail.com's support data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from lxml.etree import _Element

from mailer.checks.base import Email, Finding, parse_style

DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "caniemail.json"
# The clients a newsletter team asks about. The new Outlook for Windows renders with the
# Outlook.com engine, so caniemail's outlook-com results stand for it.
CLIENTS = {
    "outlook.windows": "Outlook for Windows",
    "outlook.outlook-com": "the new Outlook",
    "gmail.desktop-webmail": "Gmail (web)",
    "gmail.ios": "Gmail (iOS app)",
    "gmail.android": "Gmail (Android app)",
    "apple-mail.macos": "Apple Mail",
    "apple-mail.ios": "iOS Mail",
    "samsung-email.android": "Samsung Email",
}
# Features whose absence changes looks, never content or layout: rounded corners turn
# square, long words wrap later, a link opens in the same tab, a doctype is dropped. MJML
# uses several on purpose (its @media rules have Outlook ghost tables behind them). They are
# summed up in one line, so that the report stays short and the real gaps stand out.
COSMETIC = frozenset(
    {
        "css-at-media", "css-border-radius", "css-border-spacing", "css-border-collapse",
        "css-box-shadow", "css-text-shadow", "css-outline", "css-cursor", "css-transition",
        "css-animation", "css-word-spacing", "css-letter-spacing", "css-overflow-wrap",
        "css-word-wrap", "css-word-break", "css-hyphens", "css-white-space",
        "css-text-decoration-color", "css-text-decoration-style",
        "css-text-decoration-thickness", "css-text-underline-offset", "css-user-select",
        "css-accent-color", "css-caption-side", "css-empty-cells", "css-text-overflow",
        "html-target", "html-role", "html-aria-label", "html-aria-hidden",
        "html-aria-describedby", "html-aria-labelledby", "html-aria-live", "html-dir",
        "html-doctype",
        # Dark mode: a client without these shows the light design, or darkens it itself.
        "css-at-media-prefers-color-scheme", "css-color-scheme", "html-meta-color-scheme",
        "css-selector-attribute", "css-selector-child",
    }
)  # fmt: skip
_LONGHAND = re.compile(r"^(margin|padding|border)-(top|right|bottom|left)(-(color|style|width))?$")
_RADIUS = re.compile(r"^border-(top|bottom)-(left|right)-radius$")
_PROPERTY_GROUPS = {
    "gap": "css-gap", "row-gap": "css-gap", "column-gap": "css-gap",
    "left": "css-left-right-top-bottom", "right": "css-left-right-top-bottom",
    "top": "css-left-right-top-bottom", "bottom": "css-left-right-top-bottom",
    "columns": "css-column-layout-properties", "border-width": "css-border",
    "border-style": "css-border", "border-color": "css-border",
    "block-size": "css-block-inline-size", "inline-size": "css-block-inline-size",
}  # fmt: skip
_FUNCTIONS = {
    "calc": "css-unit-calc", "min": "css-function-min", "max": "css-function-max",
    "clamp": "css-function-clamp", "light-dark": "css-function-light-dark",
    "rgb": "css-rgb", "rgba": "css-rgba", "var": "css-variables",
    "linear-gradient": "css-linear-gradient", "radial-gradient": "css-radial-gradient",
    "conic-gradient": "css-conic-gradient", "lch": "css-modern-color",
    "oklch": "css-modern-color", "lab": "css-modern-color", "oklab": "css-modern-color",
}  # fmt: skip
_PAIRS = {
    ("display", "flex"): "css-display-flex", ("display", "grid"): "css-display-grid",
    ("display", "none"): "css-display-none", ("flex-direction", "column"): "css-flex-direction",
    ("flex-wrap", "wrap"): "css-flex-wrap",
}  # fmt: skip
_ELEMENTS = {"h1": "html-h1-h6", "h2": "html-h1-h6", "h3": "html-h1-h6", "h4": "html-h1-h6",
             "h5": "html-h1-h6", "h6": "html-h1-h6", "ul": "html-lists", "ol": "html-lists",
             "dl": "html-lists", "svg": "html-svg", "map": "html-image-maps"}  # fmt: skip
_SEMANTIC = {"article", "aside", "details", "figcaption", "figure", "footer", "header",
             "main", "mark", "nav", "section", "summary", "time"}  # fmt: skip
_IMAGE_TYPES = {"apng": "apng", "avif": "avif", "bmp": "bmp", "gif": "gif", "heic": "heif",
                "heif": "heif", "ico": "ico", "jpeg": "jpg", "jpg": "jpg", "png": "png",
                "svg": "svg", "tif": "tiff", "tiff": "tiff", "webp": "webp"}  # fmt: skip
_UNIT = re.compile(r"\d(px|em|rem|%|pt|vh|vw|vmin|vmax|ch|ex|cm|mm|in|pc)\b")
_CALL = re.compile(r"([a-z-]+)\(")
_RULE = re.compile(r"([^{}@;]+)\{([^{}]*)\}")
_AT_RULE = re.compile(r"@([a-z-]+)([^{;]*)")
_PSEUDO = re.compile(r"(::?)([a-z-]+)")


@cache
def support_data() -> dict[str, dict[str, Any]]:
    """Return caniemail's features by slug (the pinned snapshot in mailer/data)."""
    raw = json.loads(DATA_PATH.read_text(encoding="utf-8"))
    return {feature["slug"]: feature for feature in raw["data"]}


def support(feature: dict[str, Any], client: str) -> tuple[str, list[str]]:
    """Return y, a (partial), n or u for a client's latest test, and the notes it cites."""
    family, platform = client.split(".", 1)
    results = feature["stats"].get(family, {}).get(platform)
    if not results:
        return "u", []
    latest = str(list(results.values())[-1])  # the file lists tests oldest first
    notes = feature.get("notes_by_num") or {}
    cited = [str(notes[n]) for n in re.findall(r"#(\d+)", latest) if n in notes]
    return latest[:1], cited


def check_clients(email: Email) -> list[Finding]:
    """Report, as warnings, the features used that a listed client does not support."""
    features = support_data()
    findings = []
    minor: dict[str, list[str]] = {}
    for slug, element in detect_features(email).items():
        feature = features.get(slug)
        if feature is None:
            continue
        verdicts = {name: support(feature, client) for client, name in CLIENTS.items()}
        missing = [name for name, (level, _notes) in verdicts.items() if level == "n"]
        if not missing:
            continue
        if slug in COSMETIC:
            for name in missing:
                minor.setdefault(name, []).append(str(feature["title"]))
            continue
        notes = dict.fromkeys(note for name in missing for note in verdicts[name][1])
        said = f"caniemail notes: {' '.join(notes)} " if notes else ""
        findings.append(
            Finding(
                "warning",
                "clients",
                email.in_layout(element),
                f"{feature['title']} is not supported in {', '.join(missing)}",
                f"check that the email still reads well there; {said}see {feature['url']}",
            )
        )
    if minor:
        findings.append(_minor_summary(email, minor))
    return findings


def _minor_summary(email: Email, minor: dict[str, list[str]]) -> Finding:
    """Sum up the cosmetic gaps in one finding, clients with the same gaps together."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for client in CLIENTS.values():
        if client in minor:
            groups.setdefault(tuple(sorted(minor[client])), []).append(client)
    parts = [f"{', '.join(clients)}: {', '.join(titles)}" for titles, clients in groups.items()]
    return Finding(
        "warning",
        "clients",
        f'the HTML (layout "{email.layout}")',
        "cosmetic CSS and HTML some clients ignore (the content stays the same): "
        + "; ".join(parts),
        "nothing to do unless the design depends on them; see https://www.caniemail.com",
    )


def detect_features(email: Email) -> dict[str, _Element]:
    """Return each caniemail feature the visible HTML uses, with its first element."""
    found: dict[str, _Element] = {}
    if email.html.lstrip()[:15].lower() == "<!doctype html>":
        found["html-doctype"] = email.root
    stack = [email.root]
    while stack:
        element = stack.pop()
        if not isinstance(element.tag, str):
            found.setdefault("html-comments", element)
            continue
        if element.tag != "head" and _hides(element):
            continue  # the preheader: what hides it matters only where it shows
        for slug in _element_features(element):
            found.setdefault(slug, element)
        stack.extend(reversed(list(element)))
    return found


def _hides(element: _Element) -> bool:
    return parse_style(element.get("style")).get("display", "").startswith("none")


def _element_features(element: _Element) -> Iterator[str]:
    tag = str(element.tag).lower()
    if tag in _SEMANTIC:
        yield "html-semantics"
    yield _ELEMENTS.get(tag, f"html-{tag}")
    if tag in ("input", "button"):
        yield f"html-{tag}-{element.get('type', 'text').lower()}"
    for attribute in element.attrib:
        name = str(attribute).lower()
        yield "html-srcset" if name in ("srcset", "sizes") else f"html-{name}"
    href = element.get("href", "")
    if tag == "a" and href.startswith("mailto:"):
        yield "html-mailto-links"
    if tag == "a" and href.startswith("#"):
        yield "html-anchor-links"
    if tag == "meta" and element.get("name", "").lower() == "color-scheme":
        yield "html-meta-color-scheme"
    if tag == "img":
        yield from _image_features(element.get("src", ""))
    for name, value in parse_style(element.get("style")).items():
        yield from declaration_features(name, value)
    if tag == "style":
        yield from stylesheet_features(element.text or "")


def _image_features(src: str) -> Iterator[str]:
    if src.startswith("data:"):
        yield "image-base64"
    extension = src.split("?", 1)[0].split("#", 1)[0].rsplit(".", 1)[-1].lower()
    if extension in _IMAGE_TYPES:
        yield f"image-{_IMAGE_TYPES[extension]}"


def declaration_features(name: str, value: str) -> Iterator[str]:
    """Yield the features one CSS declaration uses."""
    name, value = name.strip().lower(), value.strip().lower()
    if name.startswith(("-", "mso-")):
        return  # vendor properties aim at one client on purpose
    longhand = _LONGHAND.match(name)
    if name in _PROPERTY_GROUPS:
        yield _PROPERTY_GROUPS[name]
    elif longhand:
        yield f"css-{longhand.group(1)}"
    elif _RADIUS.match(name):
        yield "css-border-radius"
    else:
        yield f"css-{name}"
    if "!important" in value:
        yield "css-important"
    for function in _CALL.findall(value):
        if function in _FUNCTIONS:
            yield _FUNCTIONS[function]
    for unit in _UNIT.findall(value):
        yield "css-unit-percent" if unit == "%" else f"css-unit-{unit}"
    if (name, value.removesuffix("!important").strip()) in _PAIRS:
        yield _PAIRS[(name, value.removesuffix("!important").strip())]


def stylesheet_features(css: str) -> Iterator[str]:
    """Yield the features a <style> element uses: at-rules, selectors, declarations."""
    if "/*" in css:
        yield "css-comments"
        css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    for at_rule, prelude in _AT_RULE.findall(css):
        yield f"css-at-{at_rule}"
        for media_feature in re.findall(r"\(\s*([a-z-]+)", prelude):
            yield f"css-at-media-{media_feature.removeprefix('any-')}"
    for selectors, body in _RULE.findall(css):
        yield from selector_features(selectors.strip())
        for name, value in parse_style(body).items():
            yield from declaration_features(name, value)


def selector_features(group: str) -> Iterator[str]:
    """Yield the selector features a rule's selector list uses."""
    selectors = [s.strip() for s in group.split(",") if s.strip()]
    if len(selectors) > 1:
        yield "css-selector-grouping"
    for selector in selectors:
        for colons, name in _PSEUDO.findall(selector):
            kind = "element" if colons == "::" else "class"
            yield f"css-pseudo-{kind}-{name}"
        plain = re.sub(r"::?[a-z-]+(\([^)]*\))?", "", selector)
        checks = {
            "css-selector-class": r"\.[\w-]",
            "css-selector-id": r"#[\w-]",
            "css-selector-attribute": r"\[(?!class|id\b)",
            "css-selector-universal": r"\*",
            "css-selector-child": r">",
            "css-selector-adjacent-sibling": r"\+",
            "css-selector-general-sibling": r"~",
            "css-selector-chaining": r"\.[\w-]+\.[\w-]",
            "css-selector-type": r"(^|[\s>+~])[a-z]",
        }
        for slug, pattern in checks.items():
            if re.search(pattern, plain):
                yield slug
        if re.search(r"[\w\])*]\s+[\w.#\[*:]", re.sub(r"\s*([>+~])\s*", r"\1", plain)):
            yield "css-selector-descendant"
