"""The command line: wiring, exit codes, messages and hints."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mailer.cli import app

runner = CliRunner()
SAMPLE_NAME = "2023-10-20-ld-newsletter.yaml"


def invoke(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return the exit code, stdout and stderr."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_init_creates_a_folder_in_which_compose_works_at_once(isolated: Path) -> None:
    code, out, _err = invoke("init", "news")
    assert code == 0, out
    assert (isolated / "news" / "mailer.toml").is_file()
    assert (isolated / "news" / "recipients.example.csv").is_file()
    code, out, err = invoke("--dir", "news", "compose", f"issues/{SAMPLE_NAME}", "--no-open")
    assert code == 0, err
    html = (isolated / "news" / "build" / SAMPLE_NAME.replace(".yaml", ".html")).read_text()
    assert "Recognise, record, refer" in html
    assert "wrote" in out


def test_init_refuses_to_overwrite(isolated: Path) -> None:
    assert invoke("init", "news")[0] == 0
    code, _out, err = invoke("init", "news")
    assert code == 1
    assert "already has" in err and "Traceback" not in err


def test_compose_opens_the_preview_unless_told_not_to(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def fake_open(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", fake_open)
    invoke("init", ".")
    assert invoke("compose", f"issues/{SAMPLE_NAME}")[0] == 0
    assert opened == [(isolated / "build" / SAMPLE_NAME.replace(".yaml", ".preview.html")).as_uri()]
    assert invoke("compose", f"issues/{SAMPLE_NAME}", "--no-open")[0] == 0
    assert len(opened) == 1


def test_compose_writes_where_out_says(isolated: Path) -> None:
    invoke("init", ".")
    code, _out, err = invoke("compose", f"issues/{SAMPLE_NAME}", "--out", "proofs", "--no-open")
    assert code == 0, err
    stem = SAMPLE_NAME.removesuffix(".yaml")
    assert sorted(p.name for p in (isolated / "proofs").iterdir()) == [
        f"{stem}.html",
        f"{stem}.preview.html",
        f"{stem}.txt",
    ]


def test_a_broken_issue_exits_1_with_the_line_and_no_traceback(isolated: Path) -> None:
    invoke("init", ".")
    (isolated / "issues" / "bad.yaml").write_text(
        "subject: A\ndate: soon\nblocks: [{type: divider}]\n"
    )
    code, _out, err = invoke("compose", "issues/bad.yaml", "--no-open")
    assert code == 1
    assert 'issues/bad.yaml:2:7: date: not a date ("soon"); use YYYY-MM-DD' in err
    assert "Traceback" not in err
    assert not (isolated / "build").exists()


def test_validate_checks_every_file_and_writes_nothing(isolated: Path) -> None:
    invoke("init", ".")
    (isolated / "issues" / "bad.yaml").write_text("subject: A\nblocks: [{type: divider}]\n")
    code, out, err = invoke("validate", f"issues/{SAMPLE_NAME}", "issues/bad.yaml")
    assert code == 1
    assert f"issues/{SAMPLE_NAME}: valid" in out
    assert "issues/bad.yaml:1:1: date: required; add it" in err
    assert not (isolated / "build").exists()
    assert invoke("validate", f"issues/{SAMPLE_NAME}")[0] == 0


def test_a_missing_settings_file_says_what_to_do(isolated: Path) -> None:
    (isolated / "issues").mkdir()
    (isolated / "issues" / "a.yaml").write_text(
        "subject: A\ndate: 2023-10-20\nblocks: [{type: divider}]\n"
    )
    code, _out, err = invoke("compose", "issues/a.yaml", "--no-open")
    assert code == 1
    assert "mailer.toml: no settings file; run `mailer init`" in err


def test_a_bad_setting_names_the_file_and_line(isolated: Path) -> None:
    invoke("init", ".")
    settings = isolated / "mailer.toml"
    settings.write_text(
        settings.read_text().replace('timezone = "Europe/London"', 'timezone = "Mars/Base"')
    )
    code, _out, err = invoke("compose", f"issues/{SAMPLE_NAME}", "--no-open")
    assert code == 1
    assert 'mailer.toml:17: timezone: unknown time zone "Mars/Base"' in err


@pytest.mark.parametrize(
    ("line", "changed", "expected"),
    [
        (
            'list_id = "ld-newsletter.northfield-safeguarding.example"',
            'list_id = "L&D newsletter"',
            'list_id: "L&D newsletter" is not a list id',
        ),
        (
            'from = "learning@northfield-safeguarding.example"',
            'from = "zoë@northfield-safeguarding.example"',
            'from: "zoë@northfield-safeguarding.example" is not an email address',
        ),
    ],
)
def test_validate_and_compose_refuse_settings_send_would_refuse(
    isolated: Path, line: str, changed: str, expected: str
) -> None:
    invoke("init", ".")
    settings = isolated / "mailer.toml"
    assert line in settings.read_text()
    settings.write_text(settings.read_text().replace(line, changed))
    for command in (["validate"], ["compose", "--no-open"]):
        code, _out, err = invoke(*command, f"issues/{SAMPLE_NAME}")
        assert code == 1, command
        assert expected in err, command


def test_a_password_in_the_settings_file_is_refused(isolated: Path) -> None:
    invoke("init", ".")
    settings = isolated / "mailer.toml"
    settings.write_text(
        settings.read_text().replace('username = "newsletter"', 'password = "hunter2"')
    )
    code, _out, err = invoke("compose", f"issues/{SAMPLE_NAME}", "--no-open")
    assert code == 1
    assert "set MAILER_SMTP_PASSWORD" in err and "hunter2" not in err


def test_a_usage_error_exits_2() -> None:
    assert invoke("compose")[0] == 2
    assert invoke("no-such-command")[0] == 2


COMMANDS = sorted(typer.main.get_group(app).commands)


def test_every_command_of_the_contract_exists() -> None:
    assert set(COMMANDS) >= {
        "init",
        "validate",
        "compose",
        "send",
        "status",
        "send-due",
        "unsubscribe",
    }


@pytest.mark.parametrize("command", [*COMMANDS, "--help-of-app"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    code, out, _err = invoke(*([] if command == "--help-of-app" else [command]), "--help")
    assert code == 0
    assert "Example: mailer" in out


def test_check_is_clean_on_the_sample_and_exits_1_on_an_error(isolated: Path) -> None:
    invoke("init", ".")
    code, out, _err = invoke("check", f"issues/{SAMPLE_NAME}")
    assert code == 0, out
    assert "0 error(s)" in out
    issue = isolated / "issues" / SAMPLE_NAME
    issue.write_text(issue.read_text().replace("date: 2023-11-02", "date: 2023-10-02", 1))
    code, out, _err = invoke("check", f"issues/{SAMPLE_NAME}")
    assert code == 1
    assert f"error (dates): issues/{SAMPLE_NAME}:" in out
    code, out, _err = invoke("check", f"issues/{SAMPLE_NAME}", "--json")
    assert code == 1
    assert '"ok": false' in out


def test_compose_shows_check_errors_in_the_preview(isolated: Path) -> None:
    invoke("init", ".")
    issue = isolated / "issues" / SAMPLE_NAME
    issue.write_text(issue.read_text().replace("date: 2023-11-02", "date: 2023-10-02", 1))
    code, _out, err = invoke("compose", f"issues/{SAMPLE_NAME}", "--no-open")
    assert code == 0
    assert "error (dates)" in err
    preview = isolated / "build" / SAMPLE_NAME.replace(".yaml", ".preview.html")
    assert "error (dates)" in preview.read_text()


def test_archive_builds_the_site_of_due_issues(isolated: Path) -> None:
    invoke("init", ".")
    code, out, err = invoke("archive")
    assert code == 0, err
    stem = SAMPLE_NAME.removesuffix(".yaml")
    assert (isolated / "build" / "archive" / f"{stem}.html").is_file()
    assert (isolated / "build" / "archive" / "feed.xml").is_file()
    assert "wrote 1 issue(s)" in out
