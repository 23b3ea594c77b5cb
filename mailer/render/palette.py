"""The default layout's dark-mode colours, made from the brand's colours.

A brand colour chosen for white paper (a dark blue, #1d4e89) is unreadable on a dark
background; its dark-mode version is the same hue mixed with white until it reaches WCAG AA
contrast (4.5:1) on the dark card.
"""

from __future__ import annotations

from collections.abc import Mapping

DARK_PAGE = "#10161c"
DARK_CARD = "#1b232b"
DARK_TEXT = "#e3e8ee"  # 13:1 on the card
DARK_MUTED = "#a9b4c0"  # 7:1 on the page
AA = 4.5


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _luminance(colour: str) -> float:
    """Return the WCAG 2 relative luminance of #rrggbb."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    """Return the WCAG contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable_on(colour: str, background: str, ratio: float = AA) -> str:
    """Return colour mixed with as little white as gives ratio on background."""
    red, green, blue = _rgb(colour)
    for step in range(21):
        mix = step / 20
        tint = "#" + "".join(
            f"{round(value + (255 - value) * mix):02x}" for value in (red, green, blue)
        )
        if contrast(tint, background) >= ratio:
            return tint
    return "#ffffff"


def dark_palette(brand: Mapping[str, object]) -> dict[str, str]:
    """Return the dark-mode colours the default layout uses, from the [brand] colours."""
    primary, accent = str(brand["primary_colour"]), str(brand["accent_colour"])
    return {
        "page": DARK_PAGE,
        "card": DARK_CARD,
        "text": DARK_TEXT,
        "muted": DARK_MUTED,
        "primary": readable_on(primary, DARK_CARD),
        "accent": readable_on(accent, DARK_CARD),
        "callout": "#2a2118",
        "rule": "#3a4652",
    }
