"""Images from files in the newsletter folder: sent inside the message, shown everywhere."""

from __future__ import annotations

import base64
import os
import random
import re
import struct
import zlib
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailer.checks import check_issue
from mailer.compose import compose_issue
from mailer.errors import IssueError, SettingsError
from mailer.folder import load_settings
from mailer.issue import load_issue
from mailer.publish import build_archive
from mailer.render import render_issue
from tests.sending import ISSUE, cli, make_folder
from tests.smtp_servers import MakeServer
from tests.test_message import NOW, SAM, factory, parse

IMAGE_ISSUE = """subject: "Photos"
date: 2023-10-20
blocks:
  - type: text
    body: Our team.
  - type: image
    src: {src}
    alt: The five members of the team in the Civic Centre foyer
"""


def png(width: int, height: int, seed: int = 0) -> bytes:
    """Return a real PNG of width x height pixels (noise, so it does not compress away)."""
    noise = random.Random(seed)
    rows = b"".join(b"\x00" + noise.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def image_issue(folder: Path, src: str = "images/team.png", data: bytes | None = None) -> Path:
    if data is not None:
        (folder / "images").mkdir(exist_ok=True)
        (folder / src).write_bytes(data)
    path = folder / "issues" / "photos.yaml"
    path.write_text(IMAGE_ISSUE.format(src=src), encoding="utf-8")
    return path


def parts(message: EmailMessage) -> list[str]:
    """Return the MIME tree as content types, nested parts indented."""
    found = []

    def walk(part: EmailMessage, depth: int) -> None:
        found.append("  " * depth + part.get_content_type())
        if part.is_multipart():
            for child in part.iter_parts():
                assert isinstance(child, EmailMessage)
                walk(child, depth + 1)

    walk(message, 0)
    return found


def test_a_folder_image_travels_inside_the_message_with_its_content_id(newsletter: Path) -> None:
    data = png(320, 200)
    path = image_issue(newsletter, data=data)
    settings = load_settings(newsletter)
    rendered = render_issue(newsletter, load_issue(path), settings)
    (image,) = rendered.images
    html = "".join(piece for piece in rendered.html.pieces if isinstance(piece, str))
    assert f'src="cid:{image.content_id}"' in html and "images/team.png" not in html
    assert 'width="320"' in html  # a small image is shown at its own size, not stretched
    message = parse(factory(settings, rendered).build(SAM, now=NOW))
    assert parts(message) == [
        "multipart/alternative",
        "  text/plain",
        "  multipart/related",
        "    text/html",
        "    image/png",
    ]
    related = list(message.iter_parts())[1]
    assert isinstance(related, EmailMessage)
    html_part, image_part = related.iter_parts()
    assert isinstance(image_part, EmailMessage)
    assert image_part["Content-ID"] == f"<{image.content_id}>"
    assert image_part.get_content() == data
    assert image_part.get_content_disposition() == "inline"
    assert f"cid:{image.content_id}" in str(html_part.get_content())


def test_the_image_is_encoded_once_per_issue_not_per_recipient(
    newsletter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = image_issue(newsletter, data=png(600, 400))
    settings = load_settings(newsletter)
    rendered = render_issue(newsletter, load_issue(path), settings)
    calls: list[int] = []
    encode = base64.encodebytes

    def counting(data: bytes) -> bytes:
        calls.append(len(data))
        return encode(data)

    monkeypatch.setattr(base64, "encodebytes", counting)  # as mailer.mime.factory calls it
    built = factory(settings, rendered)
    assert len(calls) == 1
    messages = [built.build({**SAM, "email": f"p{n}@example.org"}, now=NOW) for n in range(50)]
    assert len(calls) == 1
    assert len({m.data.split(b"image/png", 1)[1] for m in messages}) == 1


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("../outside.png", "the file must be inside the newsletter folder"),
        ("/etc/passwd", "copy the file into the newsletter folder"),
        ('"C:\\\\Users\\\\kim\\\\team.png"', "copy the file into the newsletter folder"),
        ('"images\\\\team.png"', "write / between folders"),
    ],
)
def test_a_path_that_leaves_the_folder_is_refused_at_its_line(
    newsletter: Path, src: str, message: str
) -> None:
    path = image_issue(newsletter, src)
    with pytest.raises(IssueError) as caught:
        load_issue(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.where) == (7, "blocks[1].src")
    assert message in problem.message


def test_a_missing_file_a_link_out_and_a_non_image_name_the_line(
    newsletter: Path, tmp_path: Path
) -> None:
    settings = load_settings(newsletter)
    (newsletter / "images").mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(10, 10))
    os.symlink(secret, newsletter / "images" / "link.png")
    (newsletter / "images" / "notes.png").write_text("not a picture", encoding="utf-8")
    for src, expected in [
        ("images/missing.png", "no such file"),
        ("images/link.png", "a symbolic link"),
        ("images/notes.png", "is not a JPEG, PNG or GIF image"),
    ]:
        path = image_issue(newsletter, src)
        with pytest.raises(IssueError) as caught:
            render_issue(newsletter, load_issue(path), settings)
        (problem,) = caught.value.problems
        assert "issues/photos.yaml:7:10: blocks[1].src: " in str(problem)
        assert expected in problem.message


def test_the_logo_can_be_a_file_in_the_folder(newsletter: Path) -> None:
    text = (newsletter / "mailer.toml").read_text(encoding="utf-8")
    text = text.replace("# logo = ", 'logo = "images/logo.png"\n# logo = ', 1)
    (newsletter / "mailer.toml").write_text(text, encoding="utf-8")
    path = image_issue(newsletter, "https://example.org/team.png")
    with pytest.raises(SettingsError, match=r"mailer.toml: \[brand\] logo: .*no such file"):
        render_issue(newsletter, load_issue(path), load_settings(newsletter))
    (newsletter / "images").mkdir()
    (newsletter / "images" / "logo.png").write_bytes(png(160, 40))
    rendered = render_issue(newsletter, load_issue(path), load_settings(newsletter))
    (logo,) = rendered.images
    assert logo.filename == "logo.png"
    assert f'src="cid:{logo.content_id}"' in "".join(
        p for p in rendered.html.pieces if isinstance(p, str)
    )


def test_compose_the_preview_and_the_archive_show_the_image(newsletter: Path) -> None:
    data = png(200, 100)
    path = image_issue(newsletter, data=data)
    composed = compose_issue(newsletter, path, newsletter / "build")
    html = composed.html_path.read_text(encoding="utf-8")
    (src,) = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert src.startswith("photos.images/") and (newsletter / "build" / src).read_bytes() == data
    preview = composed.preview_path.read_text(encoding="utf-8")
    assert "data:image/png;base64," in preview and "cid:" not in preview
    out = newsletter / "site"
    build_archive(newsletter, out, include_all=True, now=datetime(2023, 10, 21, tzinfo=UTC))
    page = (out / "photos.html").read_text(encoding="utf-8")
    (src,) = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert (out / src).read_bytes() == data


def test_a_heavy_image_gets_a_warning_with_the_cost(newsletter: Path) -> None:
    path = image_issue(newsletter, data=png(500, 300))  # noise: ~450 KB
    findings = [f for f in check_issue(newsletter, path) if f.check == "images"]
    (finding,) = findings
    assert 'the image file "team.png"' in finding.where
    assert "every recipient's message carries it" in finding.message


def test_a_real_send_delivers_the_image_part(isolated: Path, make_smtp_server: MakeServer) -> None:
    server = make_smtp_server()
    make_folder(isolated, server, ["kim@example.org"])
    text = (isolated / ISSUE).read_text(encoding="utf-8")
    text = text.replace(
        "https://northfield-safeguarding.example/newsletter/img/team-photo.jpg",
        "images/team.png",
    )
    (isolated / ISSUE).write_text(text, encoding="utf-8")
    (isolated / "images").mkdir()
    (isolated / "images" / "team.png").write_bytes(png(560, 300))
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    (received,) = server.received
    images = [p for p in received.message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"]
