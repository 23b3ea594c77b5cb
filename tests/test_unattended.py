"""A week of cron, as a new user runs it: the printed crontab line in cron's bare environment,
a real web root for the archive, the editor's inbox; and the words schedule and status share.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from mailer.folder import load_settings
from tests.sending import ISSUE, addresses, cli, deliveries, make_folder
from tests.smtp_servers import MakeServer
from tests.test_cron import crontab, due_issue, run_as_cron
from tests.unattended import EDITOR, body, set_archive, set_top, to_editor, web_root


def test_cron_sends_publishes_and_tells_the_editor_once_from_a_bare_environment(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    server = make_smtp_server()
    emails = addresses(3)
    folder = due_issue(isolated, server, emails)
    set_top(folder, f'notify = ["{EDITOR}"]')
    root = tmp_path / "www"
    (root / "newsletter").mkdir(parents=True)
    with web_root(root) as base:
        archive_url = f"{base}/newsletter/"
        set_archive(folder, f'publish_dir = "{root / "newsletter"}"', archive_url=archive_url)
        variables, command = crontab(folder)
        first = run_as_cron(variables, command, tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines()[0].startswith("due-now: sent 3 now, 3 in all")
        assert first.stdout.splitlines()[1].startswith(f"published to {root / 'newsletter'} (")
        assert first.stderr == ""
        assert deliveries(server) == {**dict.fromkeys(emails, 1), EDITOR: 1}
        (report,) = to_editor(server)
        assert report["Subject"] == "[L&D Newsletter] due-now: sent to 3 of 3"
        assert f"Archive: {archive_url}due-now.html" in body(report)
        for received in server.received:  # every archive link of every message resolves
            if received.recipients == (EDITOR,):
                continue
            html = received.message.get_body(("html",))
            assert html is not None
            hrefs = re.findall(r'href="([^"]+)"', html.get_content())
            assert f"{archive_url}due-now.html" in hrefs  # view in browser
            for url in [h for h in hrefs if h.startswith(archive_url)]:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200, url
        for _ in range(2):  # later ticks: silent, nothing sent, nobody told again
            again = run_as_cron(variables, command, tmp_path)
            assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert len(server.received) == 4
    log = (folder / ".mailer" / "log").read_text(encoding="utf-8")
    assert f"told {EDITOR}: due-now: sent to 3 of 3" in log


def test_schedule_and_status_say_partly_sent_for_an_issue_some_did_not_get(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    emails = addresses(4)
    server = make_smtp_server(reject={emails[0]})
    folder = make_folder(isolated, server, emails)
    assert cli("send", ISSUE, "--yes")[0] == 3
    code, out, _err = cli("schedule")
    header, row = out.splitlines()
    assert header.split() == ["ISSUE", "SEND", "AT", "STATE", "DETAILS"]
    assert re.search(r" partly sent +3 sent, 1 failed$", row), row
    code, out, _err = cli("status")
    assert code == 0
    stem = Path(ISSUE).stem
    assert f"{stem}: partly sent (finished, but some failed or may not have it" in out
    assert load_settings(folder).recipients.file == Path("recipients.csv")


def test_a_finished_send_run_again_says_everyone_has_it_and_asks_nothing(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server()
    emails = addresses(2)
    make_folder(isolated, server, emails)
    assert cli("send", ISSUE, "--yes")[0] == 0
    code, out, err = cli("send", ISSUE)  # no --yes, and no terminal: nothing to ask
    assert (code, err) == (0, "")
    assert out == (
        "2023-10-20-ld-newsletter: everyone on the list already has this issue; nothing was sent\n"
    )
    assert deliveries(server) == dict.fromkeys(emails, 1)
    code, out, err = cli("schedule")
    assert " sent " in out.splitlines()[1]


def test_the_first_form_of_the_recipients_setting_still_names_the_list(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    folder = make_folder(isolated, make_smtp_server(), addresses(1))
    path = folder / "mailer.toml"
    text = path.read_text(encoding="utf-8").replace('[recipients]\nfile = "recipients.csv"\n', "")
    path.write_text('recipients = "staff.csv"\n' + text, encoding="utf-8")
    settings = load_settings(folder)
    assert settings.recipients.file == Path("staff.csv")
    assert settings.recipients.skip_invalid is False
