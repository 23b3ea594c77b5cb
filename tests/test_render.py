"""Rendering: the pipeline once per issue, placeholders filled late, safe and repeatable."""

from __future__ import annotations

import contextlib
import html
import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from mailer.compose import compose_issue
from mailer.errors import TemplateError
from mailer.folder import load_settings
from mailer.issue import load_issue
from mailer.render import SAMPLE_RECIPIENT, Rendered, render_issue, sample_extras
from tests.conftest import REPO_DIR

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
GOLDEN_DIR = Path(__file__).parent / "golden"
EXTRAS = {"unsubscribe_url": "https://example.org/u?t=abc"}


def write_issue(folder: Path, text: str, name: str = "issue.yaml") -> Path:
    """Write an issue file into the newsletter's issues/ folder."""
    path = folder / "issues" / name
    path.write_text(text, encoding="utf-8")
    return path


def render(folder: Path, issue_path: Path) -> Rendered:
    """Render an issue with the folder's settings."""
    return render_issue(folder, load_issue(issue_path), load_settings(folder))


def copy_layout(folder: Path) -> Path:
    """Copy the default layout into the folder, to edit it."""
    target = folder / "layouts" / "default"
    shutil.copytree(REPO_DIR / "layouts" / "default", target)
    return target


PLACEHOLDER_ISSUE = """subject: "News for {{ recipient.first_name | default('you') }}"
date: 2023-10-20
blocks:
  - type: text
    body: |
      Dear {{ recipient.first_name | default("colleague") }},
      see [your record](https://example.org/me?who={{ recipient.first_name }}&team=1).
"""


def test_a_placeholder_in_an_href_and_in_text_is_escaped_in_html_and_raw_in_text(
    newsletter: Path,
) -> None:
    rendered = render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))
    name = 'Zoë "Z" <O\'Brien> & co'
    email = rendered.personalise({"email": "z@example.org", "first_name": name}, EXTRAS)
    escaped = html.escape(name, quote=True)
    assert f"Dear {escaped}," in email.html
    assert f'href="https://example.org/me?who={escaped}&amp;team=1"' in email.html
    assert f"Dear {name}," in email.text
    assert f"(https://example.org/me?who={name}&team=1)" in email.text
    assert email.subject == f"News for {name}"
    assert "MAILERPH" not in email.html + email.text


def test_an_empty_or_missing_value_falls_back_to_the_default(newsletter: Path) -> None:
    rendered = render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))
    for fields in ({"email": "a@example.org"}, {"email": "a@example.org", "first_name": ""}):
        email = rendered.personalise(fields, EXTRAS)
        assert "Dear colleague," in email.text
        assert email.subject == "News for you"


def test_a_recipient_value_is_data_never_a_template(newsletter: Path) -> None:
    rendered = render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))
    email = rendered.personalise(
        {"email": "a@example.org", "first_name": "{{ 7*7 }}{% if 1 %}x{% endif %}"}, EXTRAS
    )
    assert "Dear {{ 7*7 }}{% if 1 %}x{% endif %}," in email.text
    assert "49" not in email.text


def test_the_unsubscribe_link_is_filled_per_recipient(newsletter: Path) -> None:
    rendered = render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))
    email = rendered.personalise({"email": "a@example.org"}, EXTRAS)
    assert re.search(r'href="https://example.org/u\?t=abc"[^>]*>Unsubscribe</a>', email.html)
    assert "Unsubscribe: https://example.org/u?t=abc" in email.text


def test_the_same_input_gives_the_same_bytes(newsletter: Path) -> None:
    shutil.copy(SAMPLE, newsletter / "issues" / SAMPLE.name)
    first = render(newsletter, newsletter / "issues" / SAMPLE.name)
    second = render(newsletter, newsletter / "issues" / SAMPLE.name)
    one = first.personalise(SAMPLE_RECIPIENT, EXTRAS)
    two = second.personalise(SAMPLE_RECIPIENT, EXTRAS)
    assert (one.html, one.text) == (two.html, two.text)


def test_the_layout_cannot_reach_python_internals(newsletter: Path) -> None:
    layout = copy_layout(newsletter)
    base = layout / "base.mjml.j2"
    base.write_text(
        base.read_text().replace("<mj-body", "{{ settings.__class__.__mro__ }}<mj-body", 1)
    )
    with pytest.raises(TemplateError, match=r"base\.mjml\.j2:\d+: .*unsafe"):
        render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))


def test_a_syntax_error_in_a_partial_names_its_file_and_line(newsletter: Path) -> None:
    layout = copy_layout(newsletter)
    partial = layout / "blocks" / "text.mjml.j2"
    partial.write_text("<mj-section>\n  {% if block.heading %}\n</mj-section>\n")
    with pytest.raises(TemplateError, match=r"blocks/text\.mjml\.j2:\d+: Unexpected end"):
        render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))


def test_an_undefined_name_in_the_layout_names_its_file_and_line(newsletter: Path) -> None:
    layout = copy_layout(newsletter)
    partial = layout / "blocks" / "text.mjml.j2"
    partial.write_text(
        "<mj-section>\n<mj-column>\n<mj-text>{{ block.colour }}</mj-text>\n"
        "</mj-column>\n</mj-section>\n"
    )
    with pytest.raises(TemplateError, match=r"blocks/text\.mjml\.j2:3: .*colour"):
        render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))


def test_an_unknown_layout_is_a_clear_error(newsletter: Path) -> None:
    issue = write_issue(newsletter, "layout: fancy\n" + PLACEHOLDER_ISSUE)
    with pytest.raises(TemplateError, match=r'no layout "fancy"'):
        render(newsletter, issue)


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"p { color: red; }")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def css_server() -> Iterator[tuple[str, list[str]]]:
    """Serve CSS on 127.0.0.1 and record every request."""
    _CountingHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x.css", _CountingHandler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_rendering_fetches_nothing_over_the_network(
    newsletter: Path, css_server: tuple[str, list[str]]
) -> None:
    url, requests = css_server
    layout = copy_layout(newsletter)
    base = layout / "base.mjml.j2"
    base.write_text(
        base.read_text().replace(
            "<mj-attributes>",
            f'<mj-raw><link rel="stylesheet" href="{url}"></mj-raw>\n<mj-attributes>',
        )
    )
    with contextlib.suppress(TemplateError):  # refusing the stylesheet is fine; fetching is not
        render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))
    assert requests == []


def test_premailer_keeps_important_in_media_queries_and_pixel_widths(newsletter: Path) -> None:
    issue = write_issue(
        newsletter,
        PLACEHOLDER_ISSUE + "  - type: image\n    src: https://example.org/a.png\n"
        "    alt: A chart\n    width: 240\n",
    )
    email = render(newsletter, issue).personalise(SAMPLE_RECIPIENT, EXTRAS)
    assert "padding-left: 16px !important" in email.html
    assert 'width="240"' in email.html
    assert 'width="100%"' not in email.html.split("A chart")[0].rsplit("<img", 1)[-1]


def _golden(name: str, actual: str, update: bool) -> None:
    path = GOLDEN_DIR / name
    if update:
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} changed: review it, then run pytest --update-golden"


def test_the_sample_issue_matches_its_golden_html_and_text(
    newsletter: Path, update_golden: bool
) -> None:
    shutil.copy(SAMPLE, newsletter / "issues" / SAMPLE.name)
    composed = compose_issue(newsletter, newsletter / "issues" / SAMPLE.name, newsletter / "build")
    _golden("sample.html", composed.html_path.read_text(encoding="utf-8"), update_golden)
    _golden("sample.txt", composed.text_path.read_text(encoding="utf-8"), update_golden)


def test_sample_extras_prefer_the_https_unsubscribe_url(newsletter: Path) -> None:
    settings = load_settings(newsletter)
    assert sample_extras(settings) == {"unsubscribe_url": settings.unsubscribe_url}


def test_a_layout_cannot_read_the_smtp_password_or_the_unsubscribe_secret(
    newsletter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", "hunter2-password")
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", "the-secret-that-no-layout-may-ever-read")
    layout = copy_layout(newsletter)
    base = layout / "base.mjml.j2"
    for leak in (
        "{{ settings.smtp.password.get_secret_value() }}",
        "{{ settings.unsubscribe_secret.get_secret_value() }}",
    ):
        base.write_text(
            (REPO_DIR / "layouts" / "default" / "base.mjml.j2")
            .read_text()
            .replace("</mj-body>", f"<mj-raw>{leak}</mj-raw></mj-body>", 1)
        )
        with pytest.raises(TemplateError, match=r"base\.mjml\.j2:\d+: .*(smtp|unsubscribe_secret)"):
            render(newsletter, write_issue(newsletter, PLACEHOLDER_ISSUE))
