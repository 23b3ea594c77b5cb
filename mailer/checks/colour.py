"""Colours as CSS writes them, and WCAG 2.1 contrast between them."""

from __future__ import annotations

import re

RGB = tuple[float, float, float]
WHITE: RGB = (255.0, 255.0, 255.0)
BLACK: RGB = (0.0, 0.0, 0.0)
LINK_BLUE: RGB = (0.0, 0.0, 238.0)  # what clients show an unstyled link in

# The CSS basic colour keywords and a few common extras; other names are left unjudged.
_NAMED = {
    "black": "000000", "silver": "c0c0c0", "gray": "808080", "grey": "808080",
    "white": "ffffff", "maroon": "800000", "red": "ff0000", "purple": "800080",
    "fuchsia": "ff00ff", "green": "008000", "lime": "00ff00", "olive": "808000",
    "yellow": "ffff00", "navy": "000080", "blue": "0000ff", "teal": "008080",
    "aqua": "00ffff", "orange": "ffa500", "darkgray": "a9a9a9", "darkgrey": "a9a9a9",
    "lightgray": "d3d3d3", "lightgrey": "d3d3d3", "whitesmoke": "f5f5f5",
}  # fmt: skip
_HEX = re.compile(r"#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})\b")
_FUNCTION = re.compile(r"rgba?\(([^)]*)\)")
_WORD = re.compile(r"\b([a-z]+)\b")
_URL = re.compile(r"url\([^)]*\)")


def parse_colour(value: str | None) -> tuple[RGB, float] | None:
    """Return (rgb, alpha) for the first colour in a CSS value, or None."""
    if not value:
        return None
    text = _URL.sub(" ", value.strip().lower())  # "red.png" in a background image is no colour
    if "transparent" in text.split():
        return (0.0, 0.0, 0.0), 0.0
    match = _HEX.search(text)
    if match:
        digits = match.group(1)
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        alpha = channels[3] / 255 if len(channels) == 4 else 1.0
        return (float(channels[0]), float(channels[1]), float(channels[2])), alpha
    function = _FUNCTION.search(text)
    if function:
        return _parse_function(function.group(1))
    for word in _WORD.findall(text):
        if word in _NAMED:
            return parse_colour("#" + _NAMED[word])
    return None


def _parse_function(arguments: str) -> tuple[RGB, float] | None:
    parts = [p for p in re.split(r"[\s,/]+", arguments.strip()) if p]
    if len(parts) < 3:
        return None
    try:
        rgb = [float(p[:-1]) * 2.55 if p.endswith("%") else float(p) for p in parts[:3]]
        alpha = 1.0
        if len(parts) > 3:
            alpha = float(parts[3][:-1]) / 100 if parts[3].endswith("%") else float(parts[3])
    except ValueError:
        return None
    return (rgb[0], rgb[1], rgb[2]), max(0.0, min(alpha, 1.0))


def blend(colour: RGB, alpha: float, under: RGB) -> RGB:
    """Return a translucent colour as it shows over another."""
    r, g, b = (alpha * c + (1 - alpha) * u for c, u in zip(colour, under, strict=True))
    return r, g, b


def luminance(colour: RGB) -> float:
    """Return WCAG 2.1 relative luminance."""

    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: RGB, other: RGB) -> float:
    """Return the WCAG contrast ratio, 1 to 21."""
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def hex_of(colour: RGB) -> str:
    """Return #rrggbb."""
    return "#" + "".join(f"{round(max(0.0, min(c, 255.0))):02x}" for c in colour)


def darker_for(colour: RGB, against: RGB, needed: float) -> RGB:
    """Return the colour darkened just enough to reach the needed contrast against a light one."""
    candidate = colour
    for _step in range(100):
        if contrast(candidate, against) >= needed:
            return candidate
        r, g, b = (c * 0.95 for c in candidate)
        candidate = (r, g, b)
    return BLACK
