"""`mailer serve-unsubscribe` over real HTTP: RFC 8058 POST, GET page, forgeries, replays, load."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mailer.folder import Newsletter
from mailer.inbox import make_server
from mailer.mime import MessageFactory, unsubscribe_token
from mailer.mime.tokens import _legacy_token
from mailer.recipients import load_suppressed, read_suppressions
from tests.sending import SECRET
from tests.test_message import NOW, SAM, parse, sample

LIST_ID = "ld-newsletter.northfield-safeguarding.example"
ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass
class Endpoint:
    """A running endpoint and the folder it writes to."""

    port: int
    newsletter: Newsletter

    def request(self, method: str, target: str, body: str | None = None) -> tuple[int, str]:
        """Send one request; return the status and the page."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        page = response.read().decode("utf-8")
        connection.close()
        return response.status, page

    def off(self) -> set[str]:
        """Return who is off the list now."""
        return load_suppressed(self.newsletter)


def target(address: str, token: str | None = None) -> str:
    """Return the path and query a message's one-click link has for this address."""
    return f"/newsletter/unsubscribe?token={token or unsubscribe_token(SECRET, LIST_ID, address)}"


@pytest.fixture
def endpoint(newsletter: Path) -> Iterator[Endpoint]:
    """Serve the newsletter folder's endpoint on a free loopback port."""
    folder = Newsletter(newsletter, environ={"MAILER_UNSUBSCRIBE_SECRET": SECRET})
    server = make_server(folder, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Endpoint(server.server_address[1], folder)
    finally:
        server.shutdown()
        server.server_close()


def test_a_one_click_post_unsubscribes_and_answers_200(endpoint: Endpoint) -> None:
    status, page = endpoint.request("POST", target("sam@example.org"), ONE_CLICK)
    assert status == 200 and "no more" in page
    assert endpoint.off() == {"sam@example.org"}
    [row] = read_suppressions(endpoint.newsletter.suppressed_path)
    assert (row.reason, row.source) == ("unsubscribe", "one-click")


def test_the_link_in_a_built_message_unsubscribes_its_recipient(
    endpoint: Endpoint, newsletter: Path
) -> None:
    config, rendered = sample(newsletter)
    made = MessageFactory.prepare(config, rendered, "x", unsubscribe_secret=SECRET)
    header = str(parse(made.build(SAM, now=NOW))["List-Unsubscribe"])
    found = re.search(r"<(https://[^>]+)>", header)
    assert found is not None and "sam" not in header.lower()  # opaque, in the URL and mailto
    url = urlsplit(found.group(1))
    status, _page = endpoint.request("POST", f"{url.path}?{url.query}", ONE_CLICK)
    assert status == 200
    assert endpoint.off() == {SAM["email"]}


def test_a_get_shows_a_button_that_posts_and_unsubscribes_nobody(endpoint: Endpoint) -> None:
    link = target("sam@example.org")
    status, page = endpoint.request("GET", link)
    assert status == 200
    assert '<form method="post"' in page and 'value="One-Click"' in page
    assert link.replace("&", "&amp;") in page
    assert "sam@example.org" not in page  # the page does not show whom the token names
    assert endpoint.off() == set()


@pytest.mark.parametrize(
    "token",
    [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        unsubscribe_token(SECRET, LIST_ID, "sam@example.org")[:-2],  # cut short
        unsubscribe_token("another-secret", LIST_ID, "sam@example.org"),
        unsubscribe_token(SECRET, "other.list.example", "sam@example.org"),
        "",
        "%00%ff",
    ],
)
def test_a_forged_token_is_refused_with_a_plain_page(endpoint: Endpoint, token: str) -> None:
    for method in ("GET", "POST"):
        status, page = endpoint.request(method, target("x", token) if token else "/?", ONE_CLICK)
        assert status == 400 and "not valid" in page
    assert endpoint.off() == set()
    assert not endpoint.newsletter.suppressed_path.exists()


def test_a_post_without_the_one_click_body_changes_nothing(endpoint: Endpoint) -> None:
    status, _page = endpoint.request("POST", target("sam@example.org"), "List-Unsubscribe=No")
    assert status == 400
    assert endpoint.off() == set()


def test_a_replayed_post_answers_200_and_adds_nothing(endpoint: Endpoint) -> None:
    for _ in range(3):
        status, _page = endpoint.request("POST", target("sam@example.org"), ONE_CLICK)
        assert status == 200
    assert len(read_suppressions(endpoint.newsletter.suppressed_path)) == 1


def test_an_older_link_with_email_and_hmac_token_still_works(endpoint: Endpoint) -> None:
    legacy = _legacy_token(SECRET, LIST_ID, "old@example.org")
    link = f"/u?email=old%40example.org&token={legacy}"
    assert endpoint.request("POST", link, ONE_CLICK)[0] == 200
    forged = f"/u?email=other%40example.org&token={legacy}"
    assert endpoint.request("POST", forged, ONE_CLICK)[0] == 400
    assert endpoint.off() == {"old@example.org"}


def test_concurrent_posts_are_all_recorded_once(endpoint: Endpoint) -> None:
    people = [f"reader{n}@example.org" for n in range(24)]
    statuses: list[int] = []

    def post(address: str) -> None:
        statuses.append(endpoint.request("POST", target(address), ONE_CLICK)[0])

    threads = [threading.Thread(target=post, args=(a,)) for a in people + people[:8]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200] * len(threads)
    assert endpoint.off() == set(people)
    rows = read_suppressions(endpoint.newsletter.suppressed_path)
    assert sorted(row.email for row in rows) == sorted(people)  # none lost, none twice


def test_while_a_send_holds_the_lock_the_request_is_queued_and_counts_at_once(
    endpoint: Endpoint,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from mailer.ledger import folder_lock\n"
         f"with folder_lock(Path({str(endpoint.newsletter.dir)!r})):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        status, _page = endpoint.request("POST", target("sam@example.org"), ONE_CLICK)
        assert status == 200
        assert endpoint.newsletter.suppress_queue_path.exists()
        assert not endpoint.newsletter.suppressed_path.exists()
        assert endpoint.off() == {"sam@example.org"}  # a send planned now skips sam already
    finally:
        holder.communicate("", timeout=10)
    status, _page = endpoint.request("POST", target("kim@example.org"), ONE_CLICK)
    assert status == 200
    assert not endpoint.newsletter.suppress_queue_path.exists()  # drained into the file
    rows = read_suppressions(endpoint.newsletter.suppressed_path)
    assert [row.email for row in rows] == ["sam@example.org", "kim@example.org"]
