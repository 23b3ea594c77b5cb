"""`mailer init`: questions at a terminal, options for scripts, providers' figures, the layout."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mailer.cli.init
from mailer.checks import check_example_values
from mailer.cli import app
from mailer.compose import compose_issue
from mailer.folder import load_settings
from tests.conftest import REPO_DIR

SAMPLE = "issues/2023-10-20-ld-newsletter.yaml"
ANSWERS = [
    "--name", "Staff News",
    "--organisation", "Riverside Council",
    "--address", "Town Hall, Riverside RV1 1AA",
    "--from", "news@riverside.gov.uk",
]  # fmt: skip


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("provider", "host", "port", "security", "limits", "source"),
    [
        ("office365", "smtp.office365.com", 587, "starttls",
         {"per_minute": 30, "per_day": 10000, "connections": 3}, "Exchange Online limits"),
        ("google", "smtp.gmail.com", 587, "starttls", {"per_day": 2000},
         "Gmail sending limits in Google Workspace"),
        ("ses", "email-smtp.eu-west-2.amazonaws.com", 587, "starttls",
         {"per_second": 1.0, "per_day": 200}, "Amazon SES Developer Guide"),
        ("postfix", "localhost", 25, "none", {"per_day": None, "per_minute": None},
         "Postfix on this machine"),
    ],
)  # fmt: skip
def test_a_provider_writes_its_server_and_documented_limits(
    isolated: Path,
    provider: str,
    host: str,
    port: int,
    security: str,
    limits: dict[str, object],
    source: str,
) -> None:
    code, _out, err = invoke("init", "news", "--provider", provider, *ANSWERS, "--no-website")
    assert code == 0, err
    settings = load_settings(isolated / "news", environ={})
    assert (settings.smtp.host, settings.smtp.effective_port, settings.smtp.security) == (
        host,
        port,
        security,
    )
    for key, value in limits.items():
        assert getattr(settings.limits, key) == value, key
    text = (isolated / "news" / "mailer.toml").read_text(encoding="utf-8")
    assert source in text
    assert settings.smtp.username == (None if provider == "postfix" else settings.smtp.username)
    if provider in ("office365", "google"):
        assert settings.smtp.username == "news@riverside.gov.uk"
    # OAuth (auth = "xoauth2") is offered for Microsoft 365 only, commented out so that the
    # file loads with or without [smtp] auth in this version of mailer.
    assert ('# auth = "xoauth2"' in text) == (provider == "office365")
    assert "\nauth =" not in text


def test_the_answers_go_in_and_no_website_means_unsubscribe_by_mail(isolated: Path) -> None:
    code, out, err = invoke("init", "news", *ANSWERS, "--no-website")
    assert code == 0, err
    settings = load_settings(isolated / "news", environ={})
    assert (settings.name, settings.organisation, settings.from_name) == (
        "Staff News",
        "Riverside Council",
        "Staff News",
    )
    assert settings.unsubscribe_url is None and settings.archive_url is None
    assert settings.unsubscribe_mailto == settings.reply_to == "news@riverside.gov.uk"
    assert settings.list_id == "staff-news.riverside.gov.uk"
    assert check_example_values(settings) == []
    assert "copied the default layout to news/layouts/default" in out


def test_a_website_gives_the_unsubscribe_page_and_the_archive(isolated: Path) -> None:
    code, _out, err = invoke(
        "init", "news", *ANSWERS, "--website", "https://riverside.gov.uk/news/"
    )
    assert code == 0, err
    settings = load_settings(isolated / "news", environ={})
    assert settings.unsubscribe_url == "https://riverside.gov.uk/news/unsubscribe"
    assert settings.archive_url == "https://riverside.gov.uk/news/archive/"


def test_without_a_terminal_nothing_is_asked_and_the_examples_stay(isolated: Path) -> None:
    code, out, err = invoke("init", "news")
    assert code == 0, err
    assert "?" not in out and ":" not in out.split("\n")[0]  # no question was printed
    skeleton = tomllib.loads((REPO_DIR / "mailer.toml").read_text(encoding="utf-8"))
    settings = load_settings(isolated / "news", environ={})
    assert settings.organisation == skeleton["organisation"]
    assert check_example_values(settings)  # `mailer check` says so


def test_a_bad_option_is_a_usage_error_naming_it(isolated: Path) -> None:
    for args, expected in [
        (("--from", "bob@"), '--from: "bob@" is not an email address'),
        (("--website", "riverside.gov.uk"), "--website: "),
        (("--provider", "yahoo"), "--provider: use one of office365, google, ses"),
        (("--website", "https://x.org", "--no-website"), "--website or --no-website"),
    ]:
        code, _out, err = invoke("init", "news", *args)
        assert code == 2 and expected in err, err
    assert not (isolated / "news").exists()


def test_at_a_terminal_it_asks_and_asks_again_after_a_wrong_answer(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mailer.cli.init, "_interactive", lambda: True)
    answers = [
        "Staff News",
        "Riverside Council",
        "Town Hall, Riverside RV1 1AA",
        "not an address",
        "news@riverside.gov.uk",
        "",  # no website
        "office365",
    ]
    code, out, err = invoke("init", "news", input="\n".join(answers) + "\n")
    assert code == 0, err
    assert "Send from which address" in out and '"not an address" is not an email' in err
    settings = load_settings(isolated / "news", environ={})
    assert settings.smtp.host == "smtp.office365.com" and settings.unsubscribe_url is None
    assert check_example_values(settings) == []


def test_the_copied_layout_is_the_one_used(isolated: Path) -> None:
    assert invoke("init", "news", *ANSWERS, "--no-website")[0] == 0
    base = isolated / "news" / "layouts" / "default" / "base.mjml.j2"
    text = base.read_text(encoding="utf-8")
    assert "as a member of staff or a partner" in text
    base.write_text(text.replace("as a member of staff or a partner", "as a Riverside volunteer"))
    composed = compose_issue(isolated / "news", isolated / "news" / SAMPLE, isolated / "out")
    html = composed.html_path.read_text(encoding="utf-8")
    assert "as a Riverside volunteer" in html and "Riverside Council" in html


def test_init_asks_in_a_real_terminal(isolated: Path) -> None:
    """A pseudo-terminal, as a person's: the questions appear and the answers are taken."""
    main, secondary = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer", "init", "news", "--provider", "postfix"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "PYTHONPATH": str(REPO_DIR)},
    )
    os.close(secondary)
    answers = ["Staff News", "Riverside Council", "Town Hall", "news@riverside.gov.uk", ""]
    seen = b""
    deadline = time.monotonic() + 60
    try:
        for answer in answers:
            while b"? " not in seen.rsplit(b"\n", 1)[-1] and not seen.endswith(b": "):
                assert time.monotonic() < deadline, seen
                if select.select([main], [], [], 1)[0]:
                    seen += os.read(main, 4096)
            os.write(main, answer.encode() + b"\n")
            seen += b"\n"
        while process.poll() is None or select.select([main], [], [], 0.2)[0]:
            assert time.monotonic() < deadline, seen
            try:
                if select.select([main], [], [], 0.2)[0]:
                    seen += os.read(main, 4096)
            except OSError:
                break
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        os.close(main)
    assert process.returncode == 0, seen
    assert b"The newsletter's name" in seen and b"Which mail service" not in seen
    settings = load_settings(isolated / "news", environ={})
    assert (settings.name, settings.smtp.host) == ("Staff News", "localhost")
