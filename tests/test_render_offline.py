"""Rendering fetches nothing and reads nothing outside the layout folder."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from mailer.errors import TemplateError
from mailer.folder import load_settings
from mailer.issue import load_issue
from mailer.render import Personalised, render_sample
from mailer.schedule import Reporter, send_due
from tests.conftest import REPO_DIR
from tests.sending import SECRET as UNSUBSCRIBE_SECRET
from tests.sending import make_folder
from tests.smtp_servers import MakeServer

ISSUE = """subject: News
date: 2023-10-20
blocks:
  - type: text
    heading: Hello
    body: The body, and nothing from elsewhere.
"""
SECRET = "s3cr3t-from-outside-the-layout"


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = b"p { color: #abcdef; }"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def css_server() -> Iterator[tuple[str, list[str]]]:
    """Serve CSS on 127.0.0.1 and record every request; yield its base URL and the record."""
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def layout(newsletter: Path) -> Path:
    """Copy the default layout into the folder, to change it; write the issue."""
    (newsletter / "issues" / "issue.yaml").write_text(ISSUE, encoding="utf-8")
    target = newsletter / "layouts" / "default"
    shutil.copytree(REPO_DIR / "layouts" / "default", target)
    return target


def render(folder: Path) -> Personalised:
    """Render the folder's issue for a sample recipient."""
    loaded = load_issue(folder / "issues" / "issue.yaml", "issues/issue.yaml")
    return render_sample(folder, loaded, load_settings(folder))


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first old with new in a layout file."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("style", "url", "line"),
    [
        ('<mj-style inline="inline">', "{server}/inlined.css", 19),
        ("<mj-style>", "{server}/kept.css", 35),
        ("<mj-style>", "theme.css", 35),  # relative: cssutils reads it from the working folder
    ],
    ids=["inlined style", "kept style", "relative file"],
)
def test_an_import_in_the_layouts_css_is_refused_naming_the_file_and_nothing_is_fetched(
    layout: Path, css_server: tuple[str, list[str]], style: str, url: str, line: int
) -> None:
    server, requests = css_server
    Path("theme.css").write_text("p { color: #abcdef; }", encoding="utf-8")  # the cwd
    address = url.format(server=server)
    edit(layout / "base.mjml.j2", style, f'{style}\n      @import url("{address}");')
    fetched = address if address.startswith("http") else Path(address).resolve().as_uri()
    for _again in range(2):  # parsed CSS is cached (for --watch): the refusal is too
        try:
            render(layout.parent.parent)
            refused = "rendered"
        except TemplateError as err:
            refused = str(err)
        assert requests == []  # first: nothing was fetched
        assert refused == (
            f'layouts/default/base.mjml.j2:{line}: the layout\'s CSS imports "{fetched}": '
            "nothing is fetched while rendering, and most email clients ignore @import; put "
            "the rules in <mj-style> instead"
        )


BODY = '<mj-body background-color="#eef2f6" width="600px">'


@pytest.mark.parametrize(
    ("old", "new", "kept"),
    [
        (BODY, BODY + '<mj-raw><link rel="stylesheet" href="{server}/l.css"></mj-raw>', True),
        ("<mj-style>", "<mj-style>\n.x {{ background: url({server}/bg.png); }}", True),
        ("</mj-head>", '<mj-font name="Inter" href="{server}/font.css" /></mj-head>', False),
    ],
    ids=["link", "url in a style", "web font"],
)
def test_what_only_a_mail_client_would_fetch_is_not_fetched_while_rendering(
    layout: Path, css_server: tuple[str, list[str]], old: str, new: str, kept: bool
) -> None:
    server, requests = css_server
    edit(layout / "base.mjml.j2", old, new.format(server=server))
    email = render(layout.parent.parent)
    assert requests == []
    assert "The body, and nothing from elsewhere." in email.html
    assert (server in email.html) is kept  # then it is the mail client's business


def outside_file(tmp_path: Path) -> Path:
    """Write a file outside the newsletter folder that must never reach an email."""
    secret = tmp_path / "secret.mjml.j2"
    secret.write_text(
        f"<mj-section><mj-column><mj-text>{SECRET}</mj-text></mj-column></mj-section>\n",
        encoding="utf-8",
    )
    return secret


def test_a_symlinked_template_is_refused_naming_it(layout: Path, tmp_path: Path) -> None:
    partial = layout / "blocks" / "text.mjml.j2"
    partial.unlink()
    partial.symlink_to(outside_file(tmp_path))
    with pytest.raises(TemplateError) as caught:
        render(layout.parent.parent)
    assert str(caught.value) == (
        "layouts/default/blocks/text.mjml.j2: a symbolic link; a layout's files must be regular "
        "files inside layouts/default: copy the file in instead"
    )


def test_a_symlinked_folder_in_the_layout_is_refused(layout: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.move(layout / "blocks", elsewhere)
    (elsewhere / "text.mjml.j2").write_text(outside_file(tmp_path).read_text(), encoding="utf-8")
    (layout / "blocks").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(TemplateError, match=r"^layouts/default/blocks: a symbolic link; "):
        render(layout.parent.parent)


def test_a_symlinked_base_template_is_refused(layout: Path, tmp_path: Path) -> None:
    base = layout / "base.mjml.j2"
    real = tmp_path / "base.mjml.j2"
    shutil.move(base, real)
    base.symlink_to(real)
    with pytest.raises(TemplateError, match=r"^layouts/default/base.mjml.j2: a symbolic link; "):
        render(layout.parent.parent)


def test_a_symlinked_layout_folder_is_refused(layout: Path, tmp_path: Path) -> None:
    shutil.move(layout, tmp_path / "shared-layout")
    layout.symlink_to(tmp_path / "shared-layout", target_is_directory=True)
    with pytest.raises(TemplateError, match=r"/layouts/default: a symbolic link; a layout must"):
        render(layout.parent.parent)


def test_a_fifo_in_the_layout_is_refused_without_waiting(layout: Path) -> None:
    partial = layout / "blocks" / "text.mjml.j2"
    partial.unlink()
    os.mkfifo(partial)
    with pytest.raises(TemplateError, match=r"blocks/text.mjml.j2: not a regular file"):
        render(layout.parent.parent)


@pytest.mark.parametrize(
    "tag",
    [
        '{% include "../../../secret.mjml.j2" %}',
        '<mj-include path="{secret}" />',
    ],
    ids=["jinja include upwards", "mjml include"],
)
def test_an_include_cannot_reach_outside_the_layout(layout: Path, tmp_path: Path, tag: str) -> None:
    secret = outside_file(layout.parent.parent.parent)  # beside the newsletter folder
    edit(
        layout / "base.mjml.j2",
        "{% for block",
        tag.replace("{secret}", str(secret)) + "{% for block",
    )
    with pytest.raises(TemplateError, match=r"not found|unable to load included template"):
        render(layout.parent.parent)


def test_send_due_holds_an_issue_whose_layout_imports_css_instead_of_hanging(
    isolated: Path,
    css_server: tuple[str, list[str]],
    make_smtp_server: MakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reported: the fetch had no timeout, send-due hung holding the lock, and every later
    # cron run exited 75 without a word.
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", UNSUBSCRIBE_SECRET)
    server, requests = css_server
    smtp = make_smtp_server()
    make_folder(isolated, smtp, ["a@example.org"])
    shutil.copytree(REPO_DIR / "layouts" / "default", isolated / "layouts" / "default")
    style = '<mj-style inline="inline">'
    edit(isolated / "layouts/default/base.mjml.j2", style, f"{style}@import url({server}/x.css);")
    printed: list[str] = []
    out = Reporter(said=printed.append, failed=printed.append, noted=printed.append)
    send_at = datetime(2023, 10, 20, 8, 1, tzinfo=UTC)  # the sample's, a minute later
    result = send_due(isolated, load_settings(isolated), send_at, out)
    assert (result.exit_code, requests, smtp.received) == (1, [], [])
    assert printed[0].startswith(
        "issues/2023-10-20-ld-newsletter.yaml: not sent, held back: "
        "layouts/default/base.mjml.j2:18: the layout's CSS imports"
    )
