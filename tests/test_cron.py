"""The crontab line that `mailer schedule --cron` prints, run as cron would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.sending import SECRET, addresses, cli_process, deliveries, make_folder
from tests.smtp_servers import MakeServer, SmtpServer, wait_until

ISSUE_NAME = "issues/due-now.yaml"


def due_issue(folder: Path, server: SmtpServer, emails: list[str]) -> Path:
    """Make a newsletter folder with one issue that fell due a minute ago."""
    make_folder(folder, server, emails)
    (folder / "issues" / "2023-10-20-ld-newsletter.yaml").unlink()
    now = datetime.now(UTC)
    (folder / ISSUE_NAME).write_text(
        f'subject: "Due now"\ndate: {now:%Y-%m-%d}\n'
        f"send_at: {(now - timedelta(minutes=1)).isoformat(timespec='seconds')}\n"
        "blocks:\n  - type: text\n    body: Hello {{ recipient.first_name }}.\n",
        encoding="utf-8",
    )
    return folder


def crontab(folder: Path) -> tuple[dict[str, str], str]:
    """Return the variables and the command of the crontab lines mailer prints."""
    mailer = Path(sys.executable).with_name("mailer")
    printed = subprocess.run(
        [str(mailer), "--dir", str(folder), "schedule", "--cron"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    variables: dict[str, str] = {}
    command = ""
    for line in printed.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("*/"):
            command = line.split(None, 5)[5]
        else:
            name, _, _value = line.partition("=")
            variables[name] = {"MAILER_UNSUBSCRIBE_SECRET": SECRET}.get(name, "unused")
    assert command.startswith(str(mailer)), printed
    return variables, command


def run_as_cron(
    variables: dict[str, str], command: str, home: Path
) -> subprocess.CompletedProcess[str]:
    """Run the command with cron's minimal environment, from another working directory."""
    cron_env = {"SHELL": "/bin/sh", "PATH": "/usr/bin:/bin", "HOME": str(home), "LOGNAME": "root"}
    return subprocess.run(
        [
            "env",
            "-i",
            *(f"{k}={v}" for k, v in {**cron_env, **variables}.items()),
            "/bin/sh",
            "-c",
            command,
        ],
        cwd="/",
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_the_printed_crontab_line_sends_once_logs_and_then_stays_silent(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    server = make_smtp_server()
    emails = addresses(4)
    folder = due_issue(isolated, server, emails)
    variables, command = crontab(folder)
    first = run_as_cron(variables, command, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("due-now: sent 4 now, 4 in all"), first.stdout
    assert first.stderr == ""
    assert deliveries(server) == dict.fromkeys(emails, 1)
    second = run_as_cron(variables, command, tmp_path)
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert len(server.received) == 4
    log = (folder / ".mailer" / "log").read_text(encoding="utf-8")
    assert log.count("send-due: started") == 2
    assert "due-now: sent 4 now" in log
    assert SECRET not in log


@pytest.mark.slow
def test_overlapping_runs_send_once_and_the_second_exits_75_quietly(
    isolated: Path, make_smtp_server: MakeServer
) -> None:
    server = make_smtp_server(data_delay=0.05)
    emails = addresses(40)
    folder = due_issue(isolated, server, emails)
    first = cli_process(folder, "send-due")
    try:
        assert wait_until(lambda: len(server.received) >= 1, timeout=30)
        second = cli_process(folder, "send-due")
        out, err = second.communicate(timeout=60)
        assert (second.returncode, out, err) == (75, "", "")
    finally:
        first_out, first_err = first.communicate(timeout=60)
    assert first.returncode == 0, first_err
    assert first_out.startswith("due-now: sent 40 now")
    assert deliveries(server) == dict.fromkeys(emails, 1)
    assert "another send is already running" in (folder / ".mailer" / "log").read_text()


def test_a_refused_login_in_cron_is_logged_without_the_password(
    isolated: Path, make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    server = make_smtp_server(tls="starttls", logins={"news": "right"}, refuse_login=True)
    folder = due_issue(isolated, server, addresses(2))
    settings = folder / "mailer.toml"
    settings.write_text(
        settings.read_text().replace("timeout = 5\n", 'timeout = 5\nusername = "news"\n')
    )
    variables, command = crontab(folder)
    assert "MAILER_SMTP_PASSWORD" in variables
    variables["MAILER_SMTP_PASSWORD"] = "Pa55-in-crontab"
    done = run_as_cron(variables, command, tmp_path)
    assert done.returncode == 4
    assert "login refused" in done.stdout + done.stderr
    log = (folder / ".mailer" / "log").read_text(encoding="utf-8")
    assert "login refused" in log
    assert "Pa55-in-crontab" not in log + done.stdout + done.stderr
    assert os.environ.get("MAILER_SMTP_PASSWORD") is None
