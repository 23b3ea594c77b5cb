"""Images from files in the newsletter folder, sent inside the message (RFC 2392 cid: links).

An image block's `src: images/team.jpg` (or `[brand] logo = "images/logo.png"`) is read
once per issue, its type told by its first bytes, and its HTML src becomes
`cid:<id>`: the message carries the file as a part of its own (multipart/related, with a
Content-ID; mailer.mime encodes it once per issue). The recipient's client shows it without
fetching anything, and with no image host that needs a login.

The cost: every message carries the image, so 10,000 recipients of a 300 KB photo are 3 GB
through the relay (`mailer check` warns over 300 KB). The preview shows the same image as a
data: URI, and compose and the web archive write the file beside the page.

A path must stay inside the folder: no absolute path, no `..`, and no symbolic link on the
way (a link could put any file the user can read into an email).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailer.errors import IssueError, Problem, SettingsError, shown_path
from mailer.folder import SETTINGS_FILE
from mailer.issue import LoadedIssue
from mailer.values import folder_path_problem, is_folder_path

COLUMN_WIDTH = 560  # the default layout's image column: 600 px less its padding
MAX_IMAGE_BYTES = 10_000_000  # a camera's photo is 3-8 MB: beyond this it is not a picture
_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


@dataclass(frozen=True)
class InlineImage:
    """One image file sent inside every message, referred to by its Content-ID."""

    content_id: str  # without <>: the HTML says cid:<content_id>
    filename: str
    content_type: str
    data: bytes = b""
    width: int | None = None  # pixels, when the header says

    @property
    def src(self) -> str:
        """Return the HTML src that shows this part (RFC 2392)."""
        return f"cid:{self.content_id}"

    def data_uri(self) -> str:
        """Return the image as a data: URI, for a preview page."""
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def read_image(folder: Path, src: str, domain: str) -> InlineImage:
    """Read an image file inside folder; raise ValueError saying what is wrong and what to do."""
    problem = folder_path_problem(src)
    if problem:
        raise ValueError(problem)
    path = folder
    for part in src.split("/"):
        if part in ("", "."):
            continue
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise ValueError(
                f'"{src}": no such file in {shown_path(folder)}; check the name (and its '
                "capitals), or put the image there"
            ) from None
        if stat.S_ISLNK(mode):
            raise ValueError(f'"{src}": a symbolic link; copy the image into the folder instead')
    if not stat.S_ISREG(mode):
        raise ValueError(f'"{src}": not a file')
    size = os.stat(path).st_size
    if size > MAX_IMAGE_BYTES:
        raise ValueError(
            f'"{src}" is {size / 1e6:.1f} MB; resize it (1200 px wide is plenty) and save it '
            "as a JPEG"
        )
    data = path.read_bytes()
    content_type = next((t for magic, t in _TYPES.items() if data.startswith(magic)), None)
    if content_type is None:
        raise ValueError(
            f'"{src}" is not a JPEG, PNG or GIF image (the only kinds every email client '
            "shows); save it as a JPEG"
        )
    digest = hashlib.sha256(data).hexdigest()[:20]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name).strip("-.") or "image"
    return InlineImage(f"{digest}.{name}@{domain}", name, content_type, data, _width(data))


def _width(data: bytes) -> int | None:
    """Return the image's width in pixels from its header (PNG, GIF, JPEG), or None."""
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        return int(struct.unpack(">I", data[16:20])[0])
    if data.startswith(b"GIF8") and len(data) >= 10:
        return int(struct.unpack("<H", data[6:8])[0])
    position = 2
    while data.startswith(b"\xff\xd8") and position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        length = int(struct.unpack(">H", data[position + 2 : position + 4])[0])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
            return int(struct.unpack(">H", data[position + 7 : position + 9])[0])
        position += 2 + length
    return None


def show_images(html: str, images: tuple[InlineImage, ...], links: dict[str, str]) -> str:
    """Return html with each image's cid: src replaced by links[content_id] (a file, a URI)."""
    for image in images:
        html = html.replace(f'"{image.src}"', f'"{links[image.content_id]}"')
    return html


def with_data_uris(html: str, images: tuple[InlineImage, ...]) -> str:
    """Return html showing its images from data: URIs (a preview page, never an email)."""
    return show_images(html, images, {i.content_id: i.data_uri() for i in images})


def image_files(stem: str, images: tuple[InlineImage, ...]) -> dict[str, bytes]:
    """Return where each image goes beside a page (<stem>.images/<name>), and its bytes."""
    return {file_name(stem, image): image.data for image in images}


def file_name(stem: str, image: InlineImage) -> str:
    """Return an image's file beside the page <stem>.html, relative to it."""
    return f"{stem}.images/{image.content_id.split('@')[0]}"


def with_image_files(html: str, stem: str, images: tuple[InlineImage, ...]) -> str:
    """Return html showing its images from files beside it (see image_files)."""
    return show_images(html, images, {i.content_id: file_name(stem, i) for i in images})


def embed_images(
    folder: Path,
    loaded: LoadedIssue,
    views: list[dict[str, Any]],
    brand: dict[str, Any],
    domain: str,
) -> tuple[InlineImage, ...]:
    """Read the issue's image files and the logo file; point their src at the message's parts.

    views and brand are changed in place. Raise IssueError naming each image block's line,
    or SettingsError for the logo.
    """
    found: dict[str, InlineImage] = {}
    problems = []
    for index, view in enumerate(views):
        if view["type"] != "image" or not is_folder_path(view["src"]):
            continue
        try:
            image = read_image(folder, view["src"], domain)
        except ValueError as err:
            line, column = loaded.source.mark(("blocks", index, "src")) or (None, None)
            where = f"blocks[{index}].src"
            problems.append(Problem(loaded.source.path, line, column, where, str(err)))
            continue
        found.setdefault(image.content_id, image)
        view["src"] = image.src
        if not view.get("width") and image.width:  # a small image is not stretched
            view["width"] = max(16, min(image.width, COLUMN_WIDTH))
    if problems:
        raise IssueError(f"{loaded.source.path}: {len(problems)} problem(s)", problems)
    logo = brand.get("logo")
    if isinstance(logo, str) and is_folder_path(logo):
        try:
            image = read_image(folder, logo, domain)
        except ValueError as err:
            raise SettingsError(f"{SETTINGS_FILE}: [brand] logo: {err}") from None
        found.setdefault(image.content_id, image)
        brand["logo"] = image.src
    return tuple(found.values())
