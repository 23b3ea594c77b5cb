"""Publishing the archive: into a web root (publish_dir), by a command (publish_command).

A send publishes before it returns, so every link in the email leads to a published file; a
failed publish is reported like a failed send (exit 3: the mail went out) and retried.
"""

from __future__ import annotations

import re
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from mailer.folder import load_settings
from mailer.publish import PUBLISHED_FILE
from mailer.publish.publisher import copy_archive
from tests.sending import ISSUE, SECRET, addresses, cli, deliveries, make_folder
from tests.smtp_servers import MakeServer
from tests.unattended import SEND_AT, set_archive, tick, web_root

STEM = Path(ISSUE).stem
FAIL = (
    "import sys; print('rsync: connection unexpectedly closed', file=sys.stderr); "
    "print('rsync error: error in rsync protocol data stream (code 12)', file=sys.stderr); "
    "sys.exit(12)"
)


def command(*words: str) -> str:
    """Return a publish_command setting (a TOML array) that runs this Python code."""
    quoted = ", ".join(f'"{w}"' for w in (sys.executable, *words))
    return f"publish_command = [{quoted}]"


def links(text: str) -> list[str]:
    """Return the URLs of a text part's view-in-browser and Add to calendar lines."""
    return re.findall(r"(?:View this email in your browser|Add to calendar): (\S+)", text)


def test_a_send_publishes_into_a_web_root_and_every_link_in_the_email_resolves(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    server = make_smtp_server()
    emails = addresses(2)
    folder = make_folder(isolated, server, emails)
    root = tmp_path / "www"
    (root / "news").mkdir(parents=True)
    (root / "index.html").write_text("the organisation's own home page", encoding="utf-8")
    with web_root(root) as base:
        set_archive(folder, f'publish_dir = "{root / "news"}"', archive_url=f"{base}/news/")
        code, out, err = cli("send", ISSUE, "--yes")
        assert code == 0, err
        assert f"published to {root / 'news'} (" in out
        assert deliveries(server) == dict.fromkeys(emails, 1)
        for received in server.received:
            text = received.message.get_body(("plain",))
            assert text is not None
            found = links(text.get_content())
            assert len(found) == 10 and found[0] == f"{base}/news/{STEM}.html"
            for url in found:  # the page and nine .ics files, as a reader's click fetches them
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200, url
                    data = response.read()
                assert data.startswith(b"BEGIN:VCALENDAR" if url.endswith(".ics") else b"<!doctype")
    assert (root / "index.html").read_text(encoding="utf-8") == "the organisation's own home page"
    assert not list(root.rglob("*.mailer-part"))


def test_a_file_mailer_did_not_put_there_stops_the_publish_and_is_left_alone(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    folder = make_folder(isolated, make_smtp_server(), addresses(1))
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("not ours", encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\n", encoding="utf-8")
    set_archive(folder, f'publish_dir = "{root}"')
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 3, out  # the mail went out: not 1 ("nothing was sent")
    assert "1 file(s) there that mailer did not put there would be replaced: index.html" in err
    assert "the issue was sent; its archive links wait for a publish" in err
    assert (root / "index.html").read_text(encoding="utf-8") == "not ours"
    assert sorted(p.name for p in root.iterdir()) == ["index.html", "robots.txt"]  # nothing
    (root / "index.html").unlink()  # the editor moves it away; `mailer archive` publishes
    code, out, err = cli("archive")
    assert code == 0, err
    assert f"published to {root} (" in out
    assert (root / "robots.txt").read_text(encoding="utf-8") == "User-agent: *\n"
    assert {p.name for p in root.iterdir()} >= {"index.html", "feed.xml", f"{STEM}.html"}


def test_a_republish_replaces_files_whole_and_removes_only_its_own(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    folder = make_folder(isolated, make_smtp_server(), addresses(1))
    root = tmp_path / "www"
    root.mkdir()
    set_archive(folder, f'publish_dir = "{root}"')
    assert cli("archive")[0] == 0
    listed = (root / PUBLISHED_FILE).read_text(encoding="utf-8").splitlines()[1:]
    assert f"{STEM}.html" in listed and "calendar/" + f"{STEM}-1-0.ics" in listed
    page = root / f"{STEM}.html"
    calendar = root / "calendar" / f"{STEM}-1-0.ics"
    untouched = calendar.stat().st_mtime_ns
    time.sleep(0.01)
    assert copy_archive(folder / "build" / "archive", root) == (0, 0)  # nothing changed
    assert calendar.stat().st_mtime_ns == untouched  # so nothing was rewritten
    before = page.read_bytes()
    issue = folder / ISSUE
    issue.write_text(issue.read_text(encoding="utf-8").replace("issue 12", "issue 12b"), "utf-8")
    (root / "calendar" / "theirs.ics").write_text("someone else's", encoding="utf-8")
    with page.open("rb") as reader:  # a web server in the middle of sending the old page
        assert cli("archive")[0] == 0
        assert reader.read() == before  # replaced by a rename: the old file stayed whole
    assert b"issue 12b" in page.read_bytes()
    issue.unlink()  # the issue is gone from the archive: its files go, nobody else's
    assert cli("archive")[0] == 0
    assert not page.exists() and not calendar.exists()
    assert (root / "calendar" / "theirs.ics").read_text(encoding="utf-8") == "someone else's"


def test_archive_all_does_not_publish_issues_not_yet_sent(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    folder = make_folder(isolated, make_smtp_server(), addresses(1))
    set_archive(folder, f'publish_dir = "{tmp_path}"')
    code, _out, err = cli("archive", "--all")
    assert code == 0
    assert "not published: --all includes issues not yet sent" in err
    assert list(tmp_path.iterdir()) == [folder]


def test_a_publish_dir_that_does_not_exist_is_not_created(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    folder = make_folder(isolated, make_smtp_server(), addresses(1))
    share = tmp_path / "mnt" / "share"  # a share that is not mounted
    set_archive(folder, f'publish_dir = "{share}"')
    code, _out, err = cli("archive")
    assert code == 3
    assert f"{share} ([archive] publish_dir): no such folder; create it (or mount" in err
    assert not share.exists()


def test_a_failing_publish_command_shows_its_errors_and_the_next_run_publishes_again(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_UNSUBSCRIBE_SECRET", SECRET)
    server = make_smtp_server()
    folder = make_folder(isolated, server, addresses(2))
    set_archive(folder, command("-c", FAIL))
    first = tick(folder, SEND_AT + timedelta(minutes=1))
    assert first.code == 3 and first.printed[0].startswith(f"{STEM}: sent 2 now")
    (failure,) = first.printed[1:]
    assert "failed with exit code 12; run it by hand in" in failure
    assert "rsync error: error in rsync protocol data stream (code 12)" in failure
    assert len(server.received) == 2
    # Fixed: the next tick publishes, though it sends nothing; then nothing more to do.
    out_file = tmp_path / "published-from.txt"
    script = f"import sys, pathlib; pathlib.Path({str(out_file)!r}).write_text(sys.argv[1])"
    text = (folder / "mailer.toml").read_text(encoding="utf-8")
    fixed = re.sub(r"(?m)^publish_command = .*$", command("-c", script, "{archive_dir}"), text)
    (folder / "mailer.toml").write_text(fixed, encoding="utf-8")
    later = tick(folder, SEND_AT + timedelta(minutes=6))
    assert later.code == 0 and later.printed[0].startswith("published by ")
    assert out_file.read_text(encoding="utf-8") == str(folder / "build" / "archive")
    assert tick(folder, SEND_AT + timedelta(minutes=11)).printed == []
    assert len(server.received) == 2


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ('publish_command = ["/nowhere/rsync", "-a"]', '"/nowhere/rsync" not found (PATH='),
        (command("-c", "import time; time.sleep(30)"), "still running after 1 s, so it was"),
    ],
    ids=["not found", "timeout"],
)
def test_a_command_that_cannot_run_or_hangs_is_a_failed_publish_saying_what_to_do(
    isolated: Path, make_smtp_server: MakeServer, setting: str, said: str
) -> None:
    folder = make_folder(isolated, make_smtp_server(), addresses(1))
    set_archive(folder, setting, "publish_timeout = 1")
    started = time.monotonic()
    code, _out, err = cli("archive")
    assert code == 3 and said in err, err
    assert time.monotonic() - started < 15


def test_the_command_runs_without_a_shell_and_without_mailer_secrets(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    folder = make_folder(isolated, make_smtp_server(), addresses(1))
    seen = tmp_path / "seen.txt"
    script = (
        "import os, sys, pathlib; pathlib.Path(sys.argv[1]).write_text(repr(sys.argv[2:]) + "
        "' ' + ','.join(k for k in os.environ if k.startswith('MAILER_')))"
    )
    set_archive(folder, command("-c", script, str(seen), "$HOME; touch x", "{archive_dir}"))
    code, _out, err = cli("archive", env={"MAILER_SMTP_PASSWORD": "s3cret-pass"})
    assert code == 0, err
    args, _, variables = seen.read_text(encoding="utf-8").rpartition(" ")
    assert args == repr(["$HOME; touch x", str(folder / "build" / "archive")])
    assert variables == ""  # no MAILER_* secret reaches the command


def test_a_command_given_as_one_line_is_split_into_words_and_an_empty_one_refused(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    folder = make_folder(isolated, make_smtp_server(), addresses(1))
    set_archive(folder, "publish_command = \"rsync -a 'build/archive/' web:/srv/news/\"")
    assert load_settings(folder).archive.publish_command == [
        "rsync",
        "-a",
        "build/archive/",
        "web:/srv/news/",
    ]
    text = (folder / "mailer.toml").read_text(encoding="utf-8")
    (folder / "mailer.toml").write_text(
        re.sub(r"(?m)^publish_command = .*$", "publish_command = []", text), "utf-8"
    )
    code, _out, err = cli("archive")
    assert code == 1 and "archive.publish_command: empty; remove it" in err
