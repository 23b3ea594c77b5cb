"""The command line as people type it: --version, --dir after the command, quotes in YAML."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer import __version__
from mailer.cli import app
from mailer.cli.app import global_options_first
from mailer.folder import load_settings
from mailer.issue import load_issue
from mailer.render import render_issue
from tests.conftest import REPO_DIR

runner = CliRunner()
SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version_prints_the_version() -> None:
    code, out, _err = invoke("--version")
    assert (code, out) == (0, f"mailer {__version__}\n")


@pytest.mark.parametrize(
    "args",
    [
        ["--dir", "news", "validate", "issues/x.yaml"],
        ["validate", "issues/x.yaml", "--dir", "news"],
        ["validate", "--dir=news", "issues/x.yaml"],
        ["validate", "-q", "issues/x.yaml", "--dir", "news"],
    ],
)
def test_dir_works_before_and_after_the_command(isolated: Path, args: list[str]) -> None:
    (isolated / "news" / "issues").mkdir(parents=True)
    shutil.copy(REPO_DIR / "mailer.toml", isolated / "news" / "mailer.toml")
    shutil.copy(SAMPLE, isolated / "news" / "issues" / "x.yaml")
    code, out, err = invoke(*args)
    assert code == 0, err
    assert "valid (11 blocks)" in out or "-q" in args


def test_only_mailers_own_options_move_and_nothing_after_a_double_dash() -> None:
    assert global_options_first(["send", "x.yaml", "--test", "a@b.example", "-v"]) == [
        "-v",
        "send",
        "x.yaml",
        "--test",
        "a@b.example",
    ]
    kept = ["--dir", "send", "compose", "x"]
    assert global_options_first(kept) == kept
    assert global_options_first(["unsubscribe", "--", "--dir"]) == ["unsubscribe", "--", "--dir"]


QUOTED = """subject: "Issue 12"
date: 2023-10-20
blocks:
  - type: text
    heading: "Hello {{ recipient.first_name | default("colleague") }}"
    body: Welcome.
"""


def test_double_quotes_inside_a_double_quoted_value_say_what_to_write(newsletter: Path) -> None:
    (newsletter / "issues" / "x.yaml").write_text(QUOTED, encoding="utf-8")
    code, _out, err = invoke("validate", "issues/x.yaml")
    assert code == 1
    assert "issues/x.yaml:5:14: this value is in double quotes" in err
    fix = """heading: 'Hello {{ recipient.first_name | default("colleague") }}'"""
    assert f"write it as:  {fix}" in err
    assert "block end" not in err and "Traceback" not in err
    # What it says to write works.
    fixed = QUOTED.replace(
        '"Hello {{ recipient.first_name | default("colleague") }}"',
        """'Hello {{ recipient.first_name | default("colleague") }}'""",
    )
    (newsletter / "issues" / "x.yaml").write_text(fixed, encoding="utf-8")
    assert invoke("validate", "issues/x.yaml")[0] == 0


def test_an_apostrophe_inside_single_quotes_says_to_use_double_quotes(newsletter: Path) -> None:
    (newsletter / "issues" / "x.yaml").write_text(
        "subject: 'It's here'\ndate: 2023-10-20\nblocks:\n  - type: divider\n", encoding="utf-8"
    )
    code, _out, err = invoke("validate", "issues/x.yaml")
    assert code == 1
    assert """issues/x.yaml:1:10: this value is in single quotes""" in err
    assert """write it as:  subject: "It's here\"""" in err


HEADINGS = """subject: "Issue 12"
date: 2023-10-20
blocks:
  - type: text
    heading: 'Hello {{ recipient.first_name | default("colleague") }}, and welcome'
    body: |
      ## Good news for {{ recipient.first_name | default("you") }}

      Text.
"""


def test_the_text_part_keeps_headings_as_written_around_the_readers_name(
    newsletter: Path,
) -> None:
    path = newsletter / "issues" / "x.yaml"
    path.write_text(HEADINGS, encoding="utf-8")
    rendered = render_issue(newsletter, load_issue(path), load_settings(newsletter))
    text = rendered.personalise({"email": "s@x.example", "first_name": "Seán"}, {}).text
    assert "\nHello Seán, and welcome\n=======" in text
    assert "\nGood news for Seán\n-------" in text
    assert "HELLO" not in text and "SEÁN" not in text
