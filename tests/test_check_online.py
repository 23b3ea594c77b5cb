"""mailer check --online: links fetched from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from mailer.checks import check_issue
from mailer.checks.online import fetch

SLOW_SECONDS = 5.0  # released at teardown: costs nothing
TIMEOUT = 0.4


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answer by path, and count every request the checker makes."""

    seen: ClassVar[Counter[tuple[str, str]]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()
    stop: ClassVar[threading.Event] = threading.Event()
    routes: ClassVar[dict[str, tuple[int, str | None]]] = {
        "/ok": (200, None),
        "/missing": (404, None),
        "/old": (301, "/middle"),
        "/middle": (302, "/final"),
        "/final": (200, None),
    }

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def _answer(self, *, with_body: bool) -> None:
        with self.lock:
            self.seen[(self.command, self.path)] += 1
        if self.path == "/slow":
            self.stop.wait(SLOW_SECONDS)  # past the checker's timeout
        if self.path == "/no-head" and not with_body:
            status, location = 405, None  # HEAD refused; GET works
        else:
            status, location = self.routes.get(self.path, (200, None))
        with contextlib.suppress(OSError):  # the checker may have given up on /slow
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            if with_body:
                self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    """Serve _Handler on a free port of 127.0.0.1; yield its base URL."""
    _Handler.seen.clear()
    _Handler.stop.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _Handler.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def closed_port() -> int:
    """Return a port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_issue(folder: Path, base: str) -> Path:
    """Write an issue linking to every route, /ok twice."""
    links = [
        ("Our page", f"{base}/ok"),
        ("The audit form", f"{base}/missing"),
        ("The old guidance", f"{base}/old"),
        ("The strict server", f"{base}/no-head"),
        ("The slow server", f"{base}/slow"),
        ("The gone server", f"http://127.0.0.1:{closed_port()}/x"),
    ]
    items = "".join(f"          - text: {text}\n            url: {url}\n" for text, url in links)
    # The layout's own links (archive, unsubscribe) go to the local server too: no DNS.
    settings = folder / "mailer.toml"
    text = settings.read_text(encoding="utf-8").replace(
        "https://northfield-safeguarding.example/newsletter/archive/", f"{base}/archive/"
    )
    settings.write_text(text.replace("unsubscribe_url =", "# unsubscribe_url ="), "utf-8")
    path = folder / "issues" / "online.yaml"
    path.write_text(
        'subject: "Online"\ndate: 2023-10-20\nblocks:\n'
        f"  - type: button\n    text: Visit our page\n    url: {base}/ok\n"
        f"  - type: news\n    items:\n      - title: Links\n        links:\n{items}",
        encoding="utf-8",
    )
    return path


def test_each_distinct_link_is_fetched_once_and_broken_ones_reported(
    newsletter: Path, server: str
) -> None:
    started = time.perf_counter()
    findings = check_issue(
        newsletter, write_issue(newsletter, server), online=True, timeout=TIMEOUT
    )
    elapsed = time.perf_counter() - started
    online = [f for f in findings if f.check == "links" and "not encrypted" not in f.message]
    found = {f.where.split(": ", 1)[1]: (f.severity, f.message) for f in online}
    assert set(found) == {
        "blocks[1].items[0].links[1].url",
        "blocks[1].items[0].links[2].url",
        "blocks[1].items[0].links[4].url",
        "blocks[1].items[0].links[5].url",
    }
    assert found["blocks[1].items[0].links[1].url"] == (
        "error",
        f'"{server}/missing" is broken: it answered 404 Not Found',
    )
    assert found["blocks[1].items[0].links[2].url"] == (
        "warning",
        f'"{server}/old" redirects: 301 {server}/middle -> 302 {server}/final',
    )
    assert found["blocks[1].items[0].links[4].url"][0] == "warning"
    assert f"no answer within {TIMEOUT:g} s" in found["blocks[1].items[0].links[4].url"][1]
    assert found["blocks[1].items[0].links[5].url"][0] == "error"
    assert "cannot be reached" in found["blocks[1].items[0].links[5].url"][1]
    assert _Handler.seen == Counter(
        {
            ("HEAD", "/ok"): 1,  # linked twice, fetched once
            ("HEAD", "/missing"): 1,
            ("HEAD", "/old"): 1,
            ("HEAD", "/middle"): 1,
            ("HEAD", "/final"): 1,
            ("HEAD", "/no-head"): 1,
            ("GET", "/no-head"): 1,
            ("HEAD", "/slow"): 1,
        }
    )
    assert elapsed < SLOW_SECONDS  # the slow server was left behind, the rest in parallel


def test_without_online_nothing_is_fetched(newsletter: Path, server: str) -> None:
    check_issue(newsletter, write_issue(newsletter, server))
    assert not _Handler.seen


def test_fetch_reports_every_hop_and_a_refused_head(server: str) -> None:
    chain = fetch(f"{server}/old", timeout=TIMEOUT)
    assert (chain.status, chain.redirects) == (
        200,
        ((301, f"{server}/middle"), (302, f"{server}/final")),
    )
    strict = fetch(f"{server}/no-head", timeout=TIMEOUT)
    assert (strict.status, strict.redirects, strict.error) == (200, (), None)
