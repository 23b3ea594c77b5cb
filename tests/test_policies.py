"""The sending policy, one test each, judged by what a real SMTP server received and when.

Pacing, quotas across runs, retries, the failure brake, "failed is final", unsubscribe links
and the re-run guard: each test went red when its policy was broken on purpose in the code.
"""

from __future__ import annotations

import re
import signal
import subprocess
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from mailer.mime import read_unsubscribe_token
from tests.sending import (
    ISSUE,
    SECRET,
    addresses,
    cli,
    cli_process,
    deliveries,
    make_folder,
    write_recipients,
)
from tests.smtp_servers import MakeServer, SmtpServer, wait_until

STEM = Path(ISSUE).stem
FAST = "per_second = 10000\nretry_delay = 0.01\n"
JITTER = 0.05  # seconds a thread may wake late (or a reply come early) on a busy machine
STARTUP = 30.0  # seconds a `python -m mailer` process may take to render and connect


def arrivals(server: SmtpServer, verb: str, address: str | None = None) -> list[float]:
    """Return when each command with this verb (and address) reached the server."""
    return [
        a.at
        for a in server.recorder.arrivals
        if a.verb == verb and (address is None or a.address == address)
    ]


def gaps(times: list[float]) -> list[float]:
    """Return the time between each arrival and the next."""
    return [later - earlier for earlier, later in pairwise(times)]


def status() -> str:
    """Return what `mailer status` says about the sample issue."""
    code, out, err = cli("status", STEM)
    assert code == 0, err
    return out


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Interrupt the process as Ctrl+C would (if it still runs); return its stdout and stderr."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=STARTUP)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


class _Links(HTMLParser):
    """Collect the href of every link in an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def html_links(html: str) -> list[str]:
    """Return the links of an HTML part, entities decoded as a mail client would."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.hrefs


def test_per_second_spaces_messages_across_all_connections(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(6)
    make_folder(isolated, server, emails, limits="per_second = 5\nconnections = 2\n")
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert {r.connection for r in server.received} == {1, 2}, "both connections must send"
    starts = arrivals(server, "MAIL")
    assert len(starts) == 6
    assert min(gaps(starts)) >= 0.2 - JITTER, gaps(starts)
    assert starts[-1] - starts[0] >= 5 * 0.2 - JITTER / 2


def test_per_hour_stops_the_run_cleanly_with_the_rest_for_a_later_run(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(4)
    make_folder(isolated, server, emails, limits="per_second = 10000\nper_hour = 2\n")
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert re.search(r"per_hour quota reached: 2 left for the next run at \d\d:\d\d", out), out
    assert deliveries(server) == dict.fromkeys(emails[:2], 1)
    said = status()
    assert ": sending (" in said and "2 sent" in said and "2 pending" in said, said


def test_per_hour_holds_across_runs_in_the_same_hour(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(4)
    make_folder(isolated, server, emails, limits="per_second = 10000\nper_hour = 2\n")
    assert cli("send", ISSUE, "--yes")[0] == 0
    code, out, err = cli("send", ISSUE, "--yes")  # a re-run, in the same hour
    assert code == 0, err
    assert "2 left for the next run" in out
    assert len(server.received) == 2, "a re-run in the same hour went over per_hour"


def test_a_refused_message_gives_its_place_in_the_hour_back(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    refused, *good = addresses(3)
    server = make_smtp_server(reject={refused})
    make_folder(isolated, server, [refused, *good], limits="per_second = 10000\nper_hour = 2\n")
    process = cli_process(isolated, "send", ISSUE, "--yes")
    try:
        # Were the refusal counted, the second good address would wait an hour.
        assert wait_until(lambda: len(server.received) >= 2, timeout=STARTUP)
        assert wait_until(lambda: process.poll() is not None, timeout=5)
    finally:
        _out, err = stop(process)
    assert process.returncode == 3, err
    assert deliveries(server) == dict.fromkeys(good, 1)
    [refusal] = arrivals(server, "RCPT", refused)
    assert arrivals(server, "MAIL")[-1] - refusal < 1.0


def test_a_lasting_451_is_retried_with_growing_delays_then_deferred(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    deferred, good = addresses(2)
    server = make_smtp_server(defer={deferred: 99})
    make_folder(
        isolated,
        server,
        [deferred, good],
        limits="per_second = 10000\nretries = 2\nretry_delay = 0.2\n",
    )
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 3, err
    attempts = arrivals(server, "RCPT", deferred)
    assert len(attempts) == 3, "the first try and two retries"
    first, second = gaps(attempts)
    assert first >= 0.2 - JITTER / 2, first  # retry_delay * 2**0
    assert second >= 0.4 - JITTER / 2, second  # retry_delay * 2**1
    assert second - first >= 0.1, (first, second)
    assert deliveries(server) == {good: 1}
    assert f"{deferred}: deferred after 3 attempt(s): 451" in status()


def test_a_success_resets_the_count_of_failures_in_a_row(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(9)
    good = emails[2::3]
    refused = [e for e in emails if e not in good]  # two refused, then one good, three times
    server = make_smtp_server(reject=set(refused))
    make_folder(
        isolated, server, emails, limits="per_second = 10000\nmax_consecutive_failures = 3\n"
    )
    code, _out, err = cli("send", ISSUE, "--yes")
    assert deliveries(server) == dict.fromkeys(good, 1), err
    assert code == 3, err  # some failed; the run itself was not stopped (4)
    assert "failures in a row" not in err
    assert "3 sent, 6 failed" in status()


def test_a_failed_address_is_not_sent_to_again_on_a_rerun(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    sent, refused, deferred = addresses(3)
    emails = [sent, refused, deferred]
    limits = "per_second = 10000\nretries = 0\n"
    first = make_smtp_server(reject={refused}, defer={deferred: 99})
    make_folder(isolated, first, emails, limits=limits)
    assert cli("send", ISSUE, "--yes")[0] == 3
    assert deliveries(first) == {sent: 1}
    # The same folder, now sending through a server that takes everyone.
    second = make_smtp_server()
    make_folder(isolated, second, emails, limits=limits)
    code, _out, err = cli("send", ISSUE, "--yes")
    assert arrivals(second, "RCPT", refused) == [], "the failed address was tried again"
    assert deliveries(second) == {deferred: 1}, err
    assert code == 3, err  # the failed address keeps the issue incomplete
    assert f"{refused}: failed after 1 attempt(s): 550" in status()


def test_an_unsubscribe_url_with_a_query_gets_the_token_after_an_ampersand(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(2)
    make_folder(isolated, server, emails)
    settings = isolated / "mailer.toml"
    base = "https://example.org/unsub?list=staff"
    lines = settings.read_text(encoding="utf-8").splitlines()
    settings.write_text(
        "\n".join(
            f'unsubscribe_url = "{base}"' if line.startswith("unsubscribe_url") else line
            for line in lines
        ),
        encoding="utf-8",
    )
    code, _out, err = cli("send", ISSUE, "--yes")
    assert code == 0, err
    assert len(server.received) == 2
    for received in server.received:
        message = received.message
        [recipient] = received.recipients
        header = str(message["List-Unsubscribe"])
        [url] = [link for link in header.replace(" ", "").split(",") if "example.org" in link]
        url = url.strip("<>")
        assert url.startswith(base + "&"), url
        assert url.count("?") == 1, url
        query = parse_qs(urlsplit(url).query, strict_parsing=True)
        assert query["list"] == ["staff"] and recipient not in url, query
        [token] = query["token"]
        assert (
            read_unsubscribe_token(SECRET, "ld-newsletter.northfield-safeguarding.example", token)
            == recipient
        )
        body = message.get_body(("html",))
        assert body is not None
        html_urls = [link for link in html_links(body.get_content()) if link.startswith(base)]
        assert html_urls == [url]


def test_another_recipients_file_stops_the_rerun(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(3)
    deferred = emails[2]
    server = make_smtp_server(defer={deferred: 99})
    make_folder(isolated, server, emails, limits="per_second = 10000\nretries = 0\n")
    assert cli("send", ISSUE, "--yes")[0] == 3
    assert len(server.received) == 2
    server.recorder.faults.defer.clear()  # the server would now take everyone
    (isolated / "lists").mkdir()
    other = write_recipients(isolated / "lists", [*emails, *addresses(2, start=100)])
    before = len(server.recorder.arrivals)
    code, _out, err = cli("send", ISSUE, "--yes", "--recipients", str(other))
    assert len(server.recorder.arrivals) == before, "the server heard from the refused re-run"
    assert code == 1, err
    assert "recipients file" in err and str(other) in err, err
    assert "--allow-changes" in err
    # Naming the list the issue was first sent with is no change: the re-run finishes.
    code, _out, err = cli("send", ISSUE, "--yes", "--recipients", "recipients.csv")
    assert code == 0, err
    assert deliveries(server) == dict.fromkeys(emails, 1)
