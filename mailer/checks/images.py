"""Images sent inside the message: each recipient's copy carries every one of them."""

from __future__ import annotations

from mailer.checks.base import Finding
from mailer.render import InlineImage

HEAVY_BYTES = 300_000  # a photo saved for the web: 1200 px wide at JPEG quality 80
WIDE_PIXELS = 1200  # twice the 600 px column: sharp on every screen


def check_images(images: tuple[InlineImage, ...]) -> list[Finding]:
    """Warn about image files so big that every message grows with them."""
    findings = []
    for image in images:
        where = f'the image file "{image.filename}"'
        if len(image.data) > HEAVY_BYTES:
            findings.append(
                Finding(
                    "warning",
                    "images",
                    where,
                    f"is {len(image.data) / 1000:.0f} KB, and every recipient's message "
                    "carries it (10,000 recipients: "
                    f"{len(image.data) * 10_000 / 1e9:.1f} GB through your mail server)",
                    f"resize it to {WIDE_PIXELS} px wide and save it as a JPEG "
                    "(Photos or Paint: Resize, then Save As JPEG)",
                )
            )
        elif image.width and image.width > 2 * WIDE_PIXELS:
            findings.append(
                Finding(
                    "warning",
                    "images",
                    where,
                    f"is {image.width} px wide; the email shows it at most 600 px wide",
                    f"resize it to {WIDE_PIXELS} px wide",
                )
            )
    return findings
